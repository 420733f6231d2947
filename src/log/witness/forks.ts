/**
 * Fork evidence: when a log offers a checkpoint of the size the witness holds with another root, both
 * signed by the log's key, the witness keeps both notes in `forks/<origin hash>-<pair id>.txt` (0600,
 * atomic), so an operator can show them to anyone: the pair proves the fork by itself. Only that kind
 * is kept: a smaller tree or a failing proof is something anyone can send (old checkpoints are public,
 * proofs are unsigned), so the witness refuses those without keeping or accusing anything. The pair id
 * is a hash of the two checkpoints, so the same pair offered again (a replay, a retrying log) is kept
 * once; at most MAX_FORK_FILES_PER_LOG pairs are kept per log. Layout: docs/log-format.md, "Witness
 * protocol".
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { base64 } from '@scure/base';
import { toHex, utf8 } from '../../util/bytes.js';
import { ensurePrivateDir, writeFileAtomic } from '../../util/files.js';
import { type Checkpoint, checkpointLabel, peekCheckpoint } from '../checkpoint.js';
import type { WitnessPaths } from './datadir.js';
import { originHash } from './state.js';

/** At most this many evidence files are kept per log; a later new pair is still refused (and logged, rate-limited). */
export const MAX_FORK_FILES_PER_LOG = 100;

/** Why a checkpoint is a fork of the held one: the only kind a witness accuses a log of. */
export type ForkKind =
  /** Same size as the held checkpoint, another root hash, both signed by the log. */
  'same_size_different_root';

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

/** What keepForkEvidence did: `kept` a new file, found the pair `already` kept, or kept nothing (`full`). */
export interface KeptEvidence {
  status: 'kept' | 'already' | 'full';
  /** `forks/<file>` relative to the witness directory, or a sentence when not kept. */
  evidence: string;
}

const KIND_TEXT: Record<ForkKind, string> = {
  same_size_different_root: 'two checkpoints of one size with different roots, both signed by the log',
};

/** The one-line description of a fork, naming both checkpoints (what the error line and the answer say). */
export function describeFork(kind: ForkKind, held: Checkpoint, offered: Checkpoint): string {
  return `log ${held.origin} forked (${kind}): it signed ${checkpointLabel(offered)} but this witness co-signed ${checkpointLabel(held)}`;
}

/**
 * Writes the evidence of a fork, unless this pair is already kept or the log has MAX_FORK_FILES_PER_LOG
 * files. The pair's file name is fixed, so a replay costs one stat; only a new pair lists the directory.
 */
export function keepForkEvidence(paths: WitnessPaths, e: ForkEvidence, now = new Date(), maxPerLog = MAX_FORK_FILES_PER_LOG): KeptEvidence {
  ensurePrivateDir(paths.forks);
  const heldCp = peekCheckpoint(e.held);
  const offeredCp = peekCheckpoint(e.offered);
  const pair = toHex(sha256(utf8.encode(`${heldCp.origin}\n${checkpointLabel(heldCp)}\n${checkpointLabel(offeredCp)}\n${e.kind}`))).slice(0, 16);
  const prefix = originHash(e.origin).slice(0, 16);
  const name = `${prefix}-${pair}.txt`;
  if (existsSync(join(paths.forks, name))) return { status: 'already', evidence: `forks/${name}` };
  const ofLog = readdirSync(paths.forks).filter((n) => n.startsWith(`${prefix}-`) && n.endsWith('.txt')).length;
  if (ofLog >= maxPerLog) return { status: 'full', evidence: `forks/ (not kept: ${ofLog} evidence files of this log already)` };
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
  return { status: 'kept', evidence: `forks/${name}` };
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
