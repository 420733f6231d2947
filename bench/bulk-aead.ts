/**
 * Bulk XChaCha20-Poly1305: the envelope (noble HChaCha20 + node:crypto ChaCha20-Poly1305) against
 * noble's xchacha20poly1305 and against node's raw chacha20-poly1305 (no subkey, no framing, one
 * update call), all measured in the same run. Target (DESIGN.md "Performance targets"): >= 1 GB/s on
 * bulk data. The contenders take turns for ROUNDS rounds and each prints its median, since the 2-core
 * machines are shared. MB is 10^6 bytes of plaintext per second.
 *
 * At 64 MiB each call's fresh output is fresh mmap'd memory, and its page faults (the "floor" line)
 * cost about as much as the cipher. With GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1073741824:
 * glibc.malloc.trim_threshold=4294967296 malloc reuses the memory and the 64 MiB figures double.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { cpus } from 'node:os';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { openEnvelope, parseEnvelope, sealEnvelope } from '../src/crypto/envelope.js';
import { randomBytes } from '../src/crypto/random.js';
import { SEALED_CHUNK, STREAM_CHUNK, StreamOpener, StreamSealer } from '../src/crypto/stream.js';

const ROUNDS = 3;
const OPTS = { magic: 'BNCH', versions: [1], what: 'bench envelope' } as const;

/**
 * Seconds per call, wall clock and process CPU (user + system), over calls until the time budget and
 * the minimum count are both met. The CPU figure is steadier when other work shares the machine.
 */
function perOp(fn: () => unknown, budgetMs: number, minIters: number): { wall: number; cpu: number } {
  let iters = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < budgetMs || iters < minIters) {
    fn();
    iters++;
    elapsed = performance.now() - start;
  }
  const cpu = process.cpuUsage(cpu0);
  return { wall: elapsed / 1000 / iters, cpu: (cpu.user + cpu.system) / 1e6 / iters };
}

interface Contender {
  who: string;
  fn: () => unknown;
}

const median = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1]!;

/** Median figures per contender over interleaved rounds after one warm-up call each; the first is ours. */
function race(op: string, bytes: number, contenders: Contender[]): void {
  const big = bytes >= 1 << 24;
  for (const c of contenders) c.fn();
  const wall = contenders.map(() => [] as number[]);
  const cpu = contenders.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS; r++) {
    contenders.forEach((c, i) => {
      const t = perOp(c.fn, big ? 400 : 200, 1);
      wall[i]!.push(t.wall);
      cpu[i]!.push(t.cpu);
    });
  }
  const perSec = wall.map((w) => 1 / median(w));
  const cpuPerSec = cpu.map((c) => 1 / median(c));
  const mb = bytes >= 1 << 16;
  const fig = (ops: number) => (mb ? (ops * bytes / 1e6).toFixed(0) : Math.round(ops).toLocaleString('en-US'));
  contenders.forEach((c, i) => {
    const ratio = i === 0 ? ''.padEnd(19) : `   ours/peer ${(perSec[0]! / perSec[i]!).toFixed(2).padStart(5)}x`;
    console.log(`${op.padEnd(12)} ${c.who.padEnd(27)} ${fig(perSec[i]!).padStart(7)} ${mb ? 'MB/s ' : 'ops/s'}${ratio}   (cpu time: ${fig(cpuPerSec[i]!)})`);
  });
}

function nodeSeal(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array[] {
  const c = createCipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 });
  c.setAAD(aad, { plaintextLength: pt.length });
  return [c.update(pt), c.final(), c.getAuthTag()];
}

function nodeOpen(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, ct: Uint8Array, tag: Uint8Array): Uint8Array[] {
  const d = createDecipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 });
  d.setAAD(aad, { plaintextLength: ct.length });
  d.setAuthTag(tag);
  return [d.update(ct), d.final()];
}

function size(label: string, bytes: number, withOpen: boolean): void {
  const key = randomBytes(32);
  const pt = randomBytes(bytes);
  const header = randomBytes(32);
  const sealed = sealEnvelope({ magic: OPTS.magic, version: 1, header, key, plaintext: pt });
  const env = parseEnvelope(sealed, OPTS);
  const noble = () => xchacha20poly1305(key, env.nonce, env.aad);
  if (!Buffer.from(noble().encrypt(pt)).equals(env.ciphertext)) throw new Error('bench self-check failed: envelope differs from noble');
  const iv = env.nonce.subarray(0, 12);
  const [nodeCt, , nodeTag] = nodeSeal(key, iv, env.aad, pt);
  race(`seal ${label}`, bytes, [
    { who: 'lifeboat envelope', fn: () => sealEnvelope({ magic: OPTS.magic, version: 1, header, key, plaintext: pt }) },
    { who: 'noble xchacha20poly1305', fn: () => noble().encrypt(pt) },
    { who: 'node chacha20-poly1305 raw', fn: () => nodeSeal(key, iv, env.aad, pt) },
  ]);
  if (!withOpen) return;
  race(`open ${label}`, bytes, [
    { who: 'lifeboat envelope', fn: () => openEnvelope(env, key) },
    { who: 'noble xchacha20poly1305', fn: () => noble().decrypt(env.ciphertext) },
    { who: 'node chacha20-poly1305 raw', fn: () => nodeOpen(key, iv, env.aad, nodeCt!, nodeTag!) },
  ]);
}

/**
 * The streaming bulk envelope (src/crypto/stream.ts: STREAM, 64 KiB chunks, one reused plaintext and
 * one reused sealed buffer) against node's raw chacha20-poly1305 streamed over the same 64 KiB pieces
 * with one cipher (no per-chunk key setup, tag or copy), both taking `total` bytes from one reused
 * 64 KiB plaintext buffer and dropping their output: no fresh memory on either side. Open reads a
 * sealed 64 MiB payload held in memory, `total / 64 MiB` times over. Goal (issue 17): >= 1.5 GB/s and
 * >= 50% of native.
 */
function streamed(label: string, total: number): void {
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const piece = randomBytes(STREAM_CHUNK);
  const pieces = total / STREAM_CHUNK;
  race(`seal ${label}`, total, [
    {
      who: 'lifeboat STREAM',
      fn: () => {
        const s = new StreamSealer(key, () => {});
        for (let i = 0; i < pieces; i++) s.push(piece);
        s.finish();
      },
    },
    {
      who: 'node chacha20-poly1305 raw',
      fn: () => {
        const c = createCipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 });
        for (let i = 0; i < pieces; i++) c.update(piece);
        c.final();
        c.getAuthTag();
      },
    },
  ]);
  // A 64 MiB sealed payload to open, and node's own ciphertext of the same bytes with its tag.
  const payload = 64 << 20;
  const sealed = new Uint8Array((payload / STREAM_CHUNK) * SEALED_CHUNK);
  let at = 0;
  const s = new StreamSealer(key, (c) => {
    sealed.set(c, at);
    at += c.length;
  });
  for (let i = 0; i < payload / STREAM_CHUNK; i++) s.push(piece);
  s.finish();
  const [ct, , tag] = nodeSeal(key, iv, new Uint8Array(0), new Uint8Array(payload));
  const rounds = total / payload;
  race(`open ${label}`, total, [
    {
      who: 'lifeboat STREAM',
      fn: () => {
        for (let r = 0; r < rounds; r++) {
          const o = new StreamOpener(key, () => {});
          for (let i = 0; i < sealed.length; i += SEALED_CHUNK) o.push(sealed.subarray(i, i + SEALED_CHUNK));
          o.finish();
        }
      },
    },
    {
      who: 'node chacha20-poly1305 raw',
      fn: () => {
        for (let r = 0; r < rounds; r++) {
          const d = createDecipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 });
          d.setAuthTag(tag!);
          for (let i = 0; i < ct!.length; i += STREAM_CHUNK) d.update(ct!.subarray(i, i + STREAM_CHUNK));
          d.final();
        }
      },
    },
  ]);
}

/** Prints seal and open figures for 64 MiB, 1 MiB and 64 B: the envelope, noble and raw node, with ratios. */
export async function benchBulkAead(): Promise<void> {
  console.log(`bulk XChaCha20-Poly1305: lifeboat envelope vs noble vs raw node chacha20-poly1305 (node ${process.version}, ${cpus().length} cpus, median of ${ROUNDS} interleaved rounds)`);
  size('64 MiB', 64 << 20, true);
  const fresh = 64 << 20;
  const floor = perOp(() => new Uint8Array(fresh).fill(1), 400, 2);
  const [w, c] = [floor.wall, floor.cpu].map((t) => (fresh / t / 1e6).toFixed(0));
  console.log(`${'floor 64 MiB'.padEnd(12)} ${'new Uint8Array(n).fill(1)'.padEnd(27)} ${w!.padStart(7)} MB/s ${''.padEnd(19)}   (cpu time: ${c}; page faults of a fresh output, paid by every contender)`);
  size('1 MiB', 1 << 20, true);
  size('64 B', 64, true);
  console.log('streamed (src/crypto/stream.ts) vs raw node over the same 64 KiB pieces; MB = 10^6 bytes; goal >= 1500 MB/s and >= 0.50x native');
  streamed('64 MiB str', 64 << 20);
  streamed('1 GiB str', 1 << 30);
}

if (import.meta.url === `file://${process.argv[1]}`) await benchBulkAead();
