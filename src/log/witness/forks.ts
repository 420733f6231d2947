/**
 * Fork evidence: when a log offers a checkpoint that cannot extend the one the witness holds, the
 * witness keeps both signed notes in `forks/<origin hash>-<UTC time>-<pair id>.txt` (0600, atomic), so
 * an operator can show them to anyone: two checkpoints of one size with different roots, both signed by
 * the log, prove the fork by themselves. The pair id is a hash of the two checkpoint texts, so the same
 * pair offered again (a replay, a retrying log) is kept once. Layout: docs/log-format.md, "Witness
 * protocol".
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { base64 } from '@scure/base';
import { toHex, utf8 } from '../../util/bytes.js';
import { ensurePrivateDir, writeFileAtomic } from '../../util/files.js';
import { type Checkpoint, checkpointLabel, peekCheckpoint } from '../checkpoint.js';
import type { WitnessPaths } from './datadir.js';
import { originHash } from './state.js';

/** At most this many evidence files are kept; later forks are still refused and logged. */
export const MAX_FORK_FILES = 10_000;

/** Why a checkpoint is a fork of the held one. */
export type ForkKind =
  /** Same size as the held checkpoint, another root hash. */
  | 'same_size_different_root'
  /** A smaller tree than the held one: the log went back. */
  | 'smaller_tree'
  /** A larger tree whose consistency proof from the held checkpoint leads to another root. */
  | 'proof_failed';

export interface ForkEvidence {
  kind: ForkKind;
  origin: string;
  /** The held checkpoint's note (the log's signature and this witness's co-signature). */
  held: string;
  /** The offered checkpoint's note as received. */
  offered: string;
  /** The request's old size and proof, kept as sent. */
  oldSize: number;
  proof: Uint8Array[];
}

/** A kept fork, as `log witness forks` lists it. */
export interface ForkRecord {
  file: string;
  kind: string;
  origin: string;
  held: string;
  offered: string;
  detectedAt: string;
}

const KIND_TEXT: Record<ForkKind, string> = {
  same_size_different_root: 'two checkpoints of one size with different roots, both signed by the log',
  smaller_tree: 'a smaller tree offered after the witness co-signed a larger one',
  proof_failed: 'a larger tree whose consistency proof from the held checkpoint does not verify',
};

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** The one-line description of a fork, naming both checkpoints (what the error line and the answer say). */
export function describeFork(kind: ForkKind, held: Checkpoint, offered: Checkpoint): string {
  return `log ${held.origin} forked (${kind}): it signed ${checkpointLabel(offered)} but this witness co-signed ${checkpointLabel(held)}`;
}

/**
 * Writes the evidence of a fork, unless this pair is already kept. Returns the file's path relative to
 * the witness directory (`forks/…`).
 */
export function keepForkEvidence(paths: WitnessPaths, e: ForkEvidence, now = new Date()): string {
  ensurePrivateDir(paths.forks);
  const heldCp = peekCheckpoint(e.held);
  const offeredCp = peekCheckpoint(e.offered);
  const pair = toHex(sha256(utf8.encode(`${heldCp.origin}\n${checkpointLabel(heldCp)}\n${checkpointLabel(offeredCp)}\n${e.kind}`))).slice(0, 16);
  const prefix = originHash(e.origin).slice(0, 16);
  const kept = readdirSync(paths.forks);
  const existing = kept.find((n) => n.startsWith(`${prefix}-`) && n.endsWith(`-${pair}.txt`));
  if (existing) return `forks/${existing}`;
  // Replayed old checkpoints are public: bound the disk a sender can fill (the error line still names both).
  if (kept.length >= MAX_FORK_FILES) return `forks/ (not kept: ${kept.length} evidence files already)`;
  const name = `${prefix}-${stamp(now)}-${pair}.txt`;
  const text = [
    'lifeboat log witness: fork evidence',
    `kind: ${e.kind}`,
    `origin: ${e.origin}`,
    `detected_at: ${now.toISOString()}`,
    `held: ${checkpointLabel(heldCp)}`,
    `offered: ${checkpointLabel(offeredCp)}`,
    `why: ${KIND_TEXT[e.kind]}`,
    `request_old_size: ${e.oldSize}`,
    `request_proof: ${e.proof.map((h) => base64.encode(h)).join(' ') || '-'}`,
    '',
    '----- held checkpoint (co-signed by this witness) -----',
    e.held.trimEnd(),
    '----- offered checkpoint (signed by the log, refused) -----',
    e.offered.trimEnd(),
    '',
  ].join('\n');
  writeFileAtomic(join(paths.forks, name), text);
  return `forks/${name}`;
}

/** Every kept fork, oldest first (unreadable files are skipped). */
export function listForks(paths: WitnessPaths): ForkRecord[] {
  let names: string[];
  try {
    names = readdirSync(paths.forks).filter((n) => n.endsWith('.txt') && !n.startsWith('.'));
  } catch {
    return [];
  }
  const out: ForkRecord[] = [];
  for (const name of names) {
    try {
      const head = readFileSync(join(paths.forks, name), 'utf8').split('\n\n')[0]!;
      const field = (k: string): string => /^([a-z_]+): (.*)$/m.exec(head.split('\n').find((l) => l.startsWith(`${k}: `)) ?? '')?.[2] ?? '';
      out.push({ file: `forks/${name}`, kind: field('kind'), origin: field('origin'), held: field('held'), offered: field('offered'), detectedAt: field('detected_at') });
    } catch {
      /* skip an unreadable file */
    }
  }
  return out.sort((a, b) => (a.detectedAt < b.detectedAt ? -1 : a.detectedAt > b.detectedAt ? 1 : 0));
}
