/**
 * The README's tour as two runs (test/readme-tour.test.ts, test/readme-tour-log.test.ts), each in a
 * bash of its own after the tour's first block (the CLI, a fresh directory, `url`, `start`, `stop`):
 * the blocks of one run use only what that first block and the blocks before them in the same run
 * defined, so the two run side by side. Every sh block of the README is in one run or skip-marked.
 */
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { blocksUnder, type ShBlock, shBlocks } from './doc-tour.js';

export const README = 'README.md';

/** The README's blocks: the tour's first block, and the blocks of each run in README order. */
export function readmeRuns(): { setup: ShBlock; vaultAndKeyNodes: ShBlock[]; logAndKeyShares: ShBlock[]; skipped: ShBlock[] } {
  const all = shBlocks(README);
  const [setup, vault] = blocksUnder(all, 'A short tour');
  assert.ok(setup && vault && blocksUnder(all, 'A short tour').length === 2, 'the tour starts with two blocks: the setup, then the vault');
  const vaultAndKeyNodes = [
    vault,
    ...blocksUnder(all, 'Key nodes: three nodes'),
    ...blocksUnder(all, 'Continuous backups'),
    ...blocksUnder(all, 'Backups under an Ethereum wallet'),
    ...blocksUnder(all, 'Emergency recovery'),
  ];
  const logAndKeyShares = [...blocksUnder(all, 'Public backup log'), ...blocksUnder(all, 'Key shares under 24 words'), ...blocksUnder(all, 'Running over TLS')];
  const skipped = all.filter((b) => b.skip !== undefined);
  const covered = new Set([setup, ...vaultAndKeyNodes, ...logAndKeyShares, ...skipped]);
  const stray = all.filter((b) => !covered.has(b));
  assert.deepEqual(stray.map((b) => `${README}:${b.line} (${b.heading})`), [], 'every sh block of the README runs in a tour test or is skip-marked with a reason');
  for (const b of [setup, ...vaultAndKeyNodes, ...logAndKeyShares]) assert.equal(b.skip, undefined, `${README}:${b.line} is skip-marked but part of the tour`);
  return { setup, vaultAndKeyNodes, logAndKeyShares, skipped };
}

/** The 128-hex-digit lines of a block's output (the signatures `lifeboat sign` prints), in order. */
export function signatures(stdout: string): string[] {
  return stdout.split('\n').filter((l) => /^[0-9a-f]{128}$/.test(l));
}

/** Asserts an Ed25519 signature (hex) verifies for `message` under the group key (hex). */
export function assertSigned(signature: string | undefined, message: string, groupKey: string | undefined, what: string): void {
  assert.ok(signature, `${what}: no signature printed`);
  assert.match(groupKey ?? '', /^[0-9a-f]{64}$/, `${what}: group key`);
  assert.ok(ed25519.verify(Buffer.from(signature, 'hex'), new TextEncoder().encode(message), Buffer.from(groupKey!, 'hex')), `${what}: the signature verifies under ${groupKey}`);
}
