/**
 * Issue 9 point 6: a log killed with SIGKILL during sequencing, at random instants, while adds run
 * (20 kills; 200 with SLOW=1), restarted each time. Asserts that every acknowledged entry is in the
 * log at its acknowledged index (read back through the tiles, verified against the final checkpoint),
 * that entries whose add was cut off get one index when sent again, and that no two checkpoints ever
 * seen (add answers, and GET /checkpoint polled throughout) have one size and two roots; every one of
 * them is in fact a prefix of the final tree. After every round each tile and entry bundle file is
 * hashed: none ever changes once written. And some kills do land between a batch's commit and its
 * publication (a restart finds a batch committed but not published), so that recovery path is exercised.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { generateIdentity } from '../src/identity.js';
import { openCheckpoint } from '../src/log/checkpoint.js';
import { verifyInclusionDoc } from '../src/log/inclusion.js';
import { leafHash, rangeHash } from '../src/log/merkle.js';
import { parseVerifierKey } from '../src/log/note.js';
import { addEntry } from '../src/log/server/client.js';
import { initLog } from '../src/log/server/serve.js';
import { openLogStore } from '../src/log/store/index.js';
import { ctEqual, toB64, toHex } from '../src/util/bytes.js';
import { type RunningCli, startCli } from './helpers/cli.js';
import { readWholeLog, testEntry } from './helpers/logserver.js';
import { trackedTempDir } from './helpers/tmp.js';

const KILLS = process.env.SLOW === '1' ? 200 : 20;
const ADDERS = 4;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every tile and entry bundle file under public/tile with the SHA-256 of its bytes (temporary files left by a kill aside). */
function tileHashes(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const root = join(dir, 'public', 'tile');
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(root, p), createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(root);
  return out;
}

describe('log faults: SIGKILL during sequencing', () => {
  it(`never loses an acknowledged entry nor signs two roots for one size (${KILLS} kills)`, { timeout: KILLS * 20_000 }, async (t) => {
    const dir = join(trackedTempDir('lifeboat-log-faults-'), 'log');
    const origin = 'faults.lifeboat.example/log';
    const { verifierKey, store: storeUrl } = await initLog(dir, { origin });
    const verifier = parseVerifierKey(verifierKey);
    const alice = generateIdentity('operator');
    const store = await openLogStore(storeUrl);
    await store.enrolSubmitter({ name: 'alice', signingKey: alice.signingPublicKey, boxKey: alice.boxPublicKey, enrolledAt: Date.now() });
    await store.close();

    const acked = new Map<string, { index: number; entry: Uint8Array }>(); // by leaf hash hex
    const unacked = new Map<string, Uint8Array>();
    const roots = new Map<number, string>(); // every checkpoint seen: size -> root
    const see = (note: string, where: string): void => {
      const c = openCheckpoint(note, verifier).checkpoint;
      const root = toB64(c.rootHash);
      const known = roots.get(c.size);
      assert.ok(known === undefined || known === root, `${where}: two roots for size ${c.size}: ${known} and ${root}`);
      roots.set(c.size, root);
    };
    const record = (entry: Uint8Array, doc: Awaited<ReturnType<typeof addEntry>>): void => {
      verifyInclusionDoc(doc, verifier);
      assert.ok(ctEqual(doc.leafHash, leafHash(entry)));
      see(doc.checkpoint, 'an add answer');
      const key = toHex(doc.leafHash);
      const prev = acked.get(key);
      assert.ok(prev === undefined || prev.index === doc.index, `entry acknowledged at ${prev?.index} and at ${doc.index}`);
      acked.set(key, { index: doc.index, entry });
      unacked.delete(key);
    };

    let serial = 0;
    let republished = 0;
    // Every other kill is aimed at the window between a batch's commit and its publication: the test
    // reads the store's head (read-only, WAL) until it shows size > published_size, then kills at once.
    const head = new Database(join(dir, 'log.sqlite'), { readonly: true, fileMustExist: true }).prepare('select size, published_size as published from log_head');
    const inWindow = (): boolean => {
      try {
        const h = head.get() as { size: number; published: number } | undefined;
        return h !== undefined && h.size > h.published;
      } catch {
        return false; // busy: look again
      }
    };
    let aimed = false;
    const serve = () => startCli(['log', 'serve', '--data-dir', dir, '--interval', '30ms', '--log-level', 'silent', '--json'], { timeoutMs: 60_000 });
    const round = async (server: RunningCli): Promise<void> => {
      let stop = false;
      const adder = async (): Promise<void> => {
        while (!stop) {
          // entries cut off by an earlier kill are sent again first: they must get one index
          const retry = unacked.size > 0 ? [...unacked.values()][0]! : undefined;
          const entry = retry ?? testEntry(alice, `entry ${serial++} ${Math.random()}`);
          unacked.set(toHex(leafHash(entry)), entry);
          try {
            record(entry, await addEntry(server.url, entry, { timeoutMs: 20_000 }));
          } catch (err) {
            if (err instanceof assert.AssertionError) throw err;
            await sleep(5);
          }
        }
      };
      const poller = async (): Promise<void> => {
        while (!stop) {
          try {
            const res = await fetch(`${server.url}/checkpoint`);
            if (res.status === 200) see(await res.text(), 'GET /checkpoint');
          } catch (err) {
            if (err instanceof assert.AssertionError) throw err;
          }
          await sleep(10);
        }
      };
      const workers = [...Array.from({ length: ADDERS }, () => adder()), poller()];
      const start = acked.size;
      for (let t = 0; acked.size === start && t < 2000; t++) await sleep(5);
      if (aimed) {
        const until = Date.now() + 2000;
        while (!inWindow() && Date.now() < until) await new Promise((r) => setImmediate(r));
      } else await sleep(Math.random() * 250);
      server.child.kill('SIGKILL');
      await server.exited;
      if (server.stderr().includes('committed before a restart')) republished++;
      stop = true;
      await Promise.all(workers);
    };

    const tiles = new Map<string, string>();
    const checkTiles = (when: string): void => {
      for (const [path, hash] of tileHashes(dir)) {
        const was = tiles.get(path);
        assert.ok(was === undefined || was === hash, `${when}: tile/${path} changed after it was written`);
        tiles.set(path, hash);
      }
    };
    for (let k = 0; k < KILLS; k++) {
      aimed = k % 2 === 1;
      await round(await serve());
      checkTiles(`after kill ${k + 1}`);
    }
    const last = await serve();
    // every add cut off by a kill, sent again: each gets one index (the one it got before the kill, if it was taken)
    await Promise.all([...unacked.values()].map(async (entry) => record(entry, await addEntry(last.url, entry))));

    if (last.stderr().includes('committed before a restart')) republished++;
    t.diagnostic(`${acked.size} adds acknowledged; ${republished} of ${KILLS} restarts found a batch committed but not published`);
    const { checkpoint, note, entries } = await readWholeLog(last.url, verifierKey);
    see(note, 'the final checkpoint');
    await last.stop('SIGTERM');
    checkTiles('at the end');
    const temps: string[] = [];
    const walkTemps = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walkTemps(join(d, e.name));
        else if (e.name.endsWith('.tmp')) temps.push(relative(dir, join(d, e.name)));
      }
    };
    walkTemps(join(dir, 'public'));
    assert.deepEqual(temps, [], 'a start removes the temporary files a kill left in public/');
    assert.ok(tiles.size > 0);
    assert.ok(republished > 0, `no kill landed between a commit and its publication in ${KILLS} rounds`);
    assert.ok(acked.size >= KILLS, `at least one add acknowledged per round (${acked.size})`);
    for (const { index, entry } of acked.values()) {
      assert.ok(index < checkpoint.size, `acknowledged index ${index} is in the final tree of ${checkpoint.size}`);
      assert.ok(ctEqual(entries[index]!, entry), `entry ${index} is the one acknowledged`);
    }
    const unique = new Set(entries.map((e) => toHex(leafHash(e))));
    assert.equal(unique.size, entries.length, 'no entry sequenced twice');
    const hashes = entries.map(leafHash);
    for (const [size, root] of roots) {
      assert.ok(size <= checkpoint.size, `a checkpoint of size ${size} beyond the final ${checkpoint.size}`);
      assert.equal(toB64(rangeHash(hashes, 0, size)), root, `the checkpoint of size ${size} is a prefix of the final tree`);
    }
  });
});
