/**
 * The public log's audit (docs/log.md, "Auditing"), measured against its floor in the same run:
 *   - `audit` of a log of N entries (default 100,000; a public/ directory written once into a temp
 *     dir by test/helpers/log-fixture.ts), from the directory and over loopback HTTP (a static file
 *     server), beside the time to read and SHA-256 the same bytes (every tile and entry bundle): the
 *     issue's goal is within 3x of it. Printed too, so the figure can be read: the time to verify N
 *     Ed25519 signatures with node's native implementation, which no audit that checks every entry's
 *     signature can go below.
 *   - an inclusion proof from tiles (`log prove`'s work: checkpoint, tiles, bundle, proof): p50 and
 *     p99 over random entries, from the directory and over HTTP.
 *
 *   BENCH_LOG_AUDIT_N=100000   entries
 *   BENCH_LOG_PROOFS=300       proofs timed per source
 */
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditLog } from '../src/log/audit/audit.js';
import { proveEntry } from '../src/log/audit/prove.js';
import { dirLogSource, httpLogSource, type LogSource } from '../src/log/audit/source.js';
import { parseEntryBundle } from '../src/log/tiles.js';
import { parseVerifierKey } from '../src/log/note.js';
import { concatBytes, toB64u, utf8 } from '../src/util/bytes.js';
import { LogFixture, fixtureKeys, serveDir } from '../test/helpers/log-fixture.js';

const N = Number(process.env.BENCH_LOG_AUDIT_N ?? 100_000);
const PROOFS = Number(process.env.BENCH_LOG_PROOFS ?? 300);
const GOAL = 3;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

async function seconds(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const ms = (s: number): string => `${(s * 1000).toFixed(s < 0.01 ? 2 : 1)} ms`;

async function proofTimes(source: LogSource, logKey: string, size: number): Promise<number[]> {
  const logVerifier = parseVerifierKey(logKey);
  await proveEntry({ source, logVerifier, index: 0 }); // warm-up
  const out: number[] = [];
  for (let i = 0; i < PROOFS; i++) {
    const index = Math.floor(Math.random() * size);
    out.push(await seconds(() => proveEntry({ source, logVerifier, index })));
  }
  return out;
}

export async function benchLogAudit(): Promise<void> {
  console.log(`public log audit of ${N.toLocaleString('en-US')} entries (node ${process.version}, ${cpus().length} cpus)`);
  const tmp = mkdtempSync(join(tmpdir(), 'lifeboat-bench-log-audit-'));
  try {
    const keys = fixtureKeys({ submitters: 3 });
    const log = new LogFixture(join(tmp, 'public'), keys);
    const written = await seconds(async () => {
      for (let done = 0; done < N; done += 10_000) await log.append(Math.min(10_000, N - done));
    });
    const all = files(join(log.dir, 'tile'));
    const bytes = all.reduce((n, f) => n + statSync(f).size, 0);
    console.log(`  fixture: ${all.length.toLocaleString('en-US')} tile and bundle files, ${(bytes / 1e6).toFixed(1)} MB, written in ${written.toFixed(1)} s`);

    // the floor: read and SHA-256 the same bytes (every tile and bundle the log has)
    const floor = await seconds(() => {
      for (const f of all) createHash('sha256').update(readFileSync(f)).digest();
    });
    // what checking every signature alone costs, with the same native Ed25519 the audit uses
    const signed = all.filter((f) => f.includes(`${join('tile', 'entries')}`) && !f.includes('.p'));
    const entries = signed.flatMap((f) => parseEntryBundle(new Uint8Array(readFileSync(f))));
    const prefix = utf8.encode('lifeboat:log-entry\0');
    const keyObjs = new Map<string, ReturnType<typeof createPublicKey>>();
    const sigFloor =
      (await seconds(() => {
        for (const e of entries) {
          const n = e[5]!;
          const pk = e.subarray(6 + n, 6 + n + 32);
          const id = toB64u(pk);
          let k = keyObjs.get(id);
          if (!k) keyObjs.set(id, (k = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: id }, format: 'jwk' })));
          if (!nodeVerify(null, concatBytes(prefix, e.subarray(0, -64)), k, e.subarray(-64))) throw new Error('bench self-check: bad signature');
        }
      })) *
      (N / Math.max(1, entries.length));

    const logVerifier = parseVerifierKey(keys.logKey);
    let checked = 0;
    const fromDir = await seconds(async () => {
      const r = await auditLog({ source: dirLogSource(log.dir), logVerifier });
      if (r.badEntryCount !== 0 || r.summary.entries !== N) throw new Error('bench self-check: the audit failed');
      checked = r.entriesChecked;
    });
    const server = await serveDir(log.dir);
    let overHttp = 0;
    let httpProofs: number[] = [];
    try {
      overHttp = await seconds(() => auditLog({ source: httpLogSource(server.url), logVerifier }));
      httpProofs = await proofTimes(httpLogSource(server.url), keys.logKey, N);
    } finally {
      await server.close();
    }
    const dirProofs = await proofTimes(dirLogSource(log.dir), keys.logKey, N);

    const line = (what: string, s: number, extra = ''): void => console.log(`  ${what.padEnd(44)} ${s.toFixed(2).padStart(7)} s   ${Math.round(N / s).toLocaleString('en-US').padStart(9)} entries/s${extra}`);
    line('floor: read + SHA-256 every tile and bundle', floor);
    line('ed25519 verify of every entry (native)', sigFloor, `   ${(sigFloor / floor).toFixed(1)}x the hashing floor`);
    const verdict = (s: number): string => `   ${(s / floor).toFixed(1)}x the floor (goal <= ${GOAL}x: ${s / floor <= GOAL ? 'met' : 'NOT met'}); ${(s / (floor + sigFloor)).toFixed(2)}x hashing + signatures`;
    line(`audit from the directory (${checked.toLocaleString('en-US')} entries)`, fromDir, verdict(fromDir));
    line('audit over HTTP (static server, loopback)', overHttp, verdict(overHttp));
    console.log(`  inclusion proof from tiles, from the directory   p50 ${ms(pct(dirProofs, 50))}   p99 ${ms(pct(dirProofs, 99))}   (${PROOFS} random entries, checkpoint verified each time)`);
    console.log(`  inclusion proof from tiles, over HTTP            p50 ${ms(pct(httpProofs, 50))}   p99 ${ms(pct(httpProofs, 99))}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// run alone: node --import tsx bench/log-audit.bench.ts
if (import.meta.url === `file://${process.argv[1]}`) await benchLogAudit();
