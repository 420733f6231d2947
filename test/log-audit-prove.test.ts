/**
 * `lifeboat log prove` and `log verify-proof` against a log written by test/helpers/log-fixture.ts:
 * a round trip from a directory and over HTTP, a proof against an older audited checkpoint, altered
 * documents, witness quorums, and bad arguments.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CliResult, runCli } from './helpers/cli.js';
import { LogFixture, RECORD_TYPES, fixtureEntry, fixtureKeys, serveDir } from './helpers/log-fixture.js';
import { trackedTempDir } from './helpers/tmp.js';
import { encodePublicIdentity } from '../src/identity.js';
import { peekCheckpoint } from '../src/log/checkpoint.js';
import { parseInclusionDoc } from '../src/log/inclusion.js';
import { leafHash } from '../src/log/merkle.js';

const tmp = trackedTempDir('lifeboat-log-prove-');
let n = 0;
const fresh = (name: string): string => join(tmp, `${name}-${n++}`);
const cli = (args: string[], input?: string): Promise<CliResult> => runCli(['log', ...args], { input, timeoutMs: 60_000 });
const errType = (r: CliResult): [number | null, string | undefined] => [r.code, /\((\w+)\)\n/.exec(r.stderr)?.[1]];

interface Verified {
  ok: boolean;
  origin: string;
  index: number;
  tree_size: number;
  root_hash: string;
  leaf_hash: string;
  submitter: string;
  fingerprint: string;
  record_type: string;
  timestamp: string;
}

describe('log prove and verify-proof', () => {
  const keys = fixtureKeys({ witnesses: 2, submitters: 3 });
  const log = new LogFixture(fresh('log'), keys, 1);
  let server: Awaited<ReturnType<typeof serveDir>>;
  let docFile: string;
  let doc: Record<string, unknown>;

  before(async () => {
    await log.append(600);
    server = await serveDir(log.dir);
    docFile = join(fresh('doc'), 'proof.json');
    const r = await cli(['prove', '--from-dir', log.dir, '--log-key', keys.logKey, '--index', '517', '--out', docFile]);
    assert.equal(r.code, 0, r.stderr);
    doc = JSON.parse(readFileSync(docFile, 'utf8')) as Record<string, unknown>;
  });
  after(() => server.close());

  it('prove prints the document with the entry; verify-proof checks it and names index, size, root, submitter and record type', async () => {
    assert.equal(doc.index, 517);
    assert.equal(doc.tree_size, 600);
    assert.equal(doc.checkpoint, log.note);
    assert.equal(doc.entry, Buffer.from(fixtureEntry(keys, 517)).toString('base64'));
    const [viaHttp, verified, text, stdin] = await Promise.all([
      cli(['prove', '--log', server.url, '--log-key', keys.logKey, '--index', '517']),
      cli(['verify-proof', docFile, '--log-key', keys.logKey, '--json']),
      cli(['verify-proof', docFile, '--log-key', keys.logKey]),
      cli(['verify-proof', '-', '--log-key', keys.logKey, '--json'], JSON.stringify(doc)),
    ]);
    assert.equal(viaHttp.code, 0, viaHttp.stderr);
    assert.deepEqual(JSON.parse(viaHttp.stdout), doc);
    assert.equal(verified.code, 0, verified.stderr);
    const v = JSON.parse(verified.stdout) as Verified;
    const cp = peekCheckpoint(log.note);
    assert.deepEqual(
      [v.ok, v.origin, v.index, v.tree_size, v.root_hash, v.leaf_hash, v.submitter, v.record_type],
      [true, keys.origin, 517, 600, Buffer.from(cp.rootHash).toString('base64'), Buffer.from(leafHash(fixtureEntry(keys, 517))).toString('base64'), encodePublicIdentity(keys.submitters[517 % 3]!.id), RECORD_TYPES[517 % 2]!],
    );
    assert.equal(v.timestamp, new Date(1_700_000_000_000 + 517_000).toISOString());
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^entry 517 is in log\.example\.test\/audit at tree size 600$/m);
    assert.equal(stdin.code, 0, stdin.stderr);
    assert.deepEqual(JSON.parse(stdin.stdout), v);
  });

  it('an altered document is refused: a proof hash, the index, the entry, the checkpoint; too few witnesses', async () => {
    const variant = (change: (d: Record<string, unknown>) => void): string => {
      const d = structuredClone(doc);
      change(d);
      const file = `${fresh('bad')}.json`;
      writeFileSync(file, JSON.stringify(d));
      return file;
    };
    const flipB64 = (s: string): string => {
      const b = Buffer.from(s, 'base64');
      b[0]! ^= 1;
      return b.toString('base64');
    };
    const other = fixtureEntry(keys, 518);
    const files = [
      variant((d) => ((d.proof as string[])[2] = flipB64((d.proof as string[])[2]!))),
      variant((d) => (d.index = 516)),
      variant((d) => {
        d.entry = Buffer.from(other).toString('base64');
        d.leaf_hash = Buffer.from(leafHash(other)).toString('base64');
      }),
      variant((d) => (d.entry = Buffer.from(other).toString('base64'))),
      variant((d) => (d.checkpoint = (d.checkpoint as string).replace('\n600\n', '\n601\n'))),
      variant((d) => (d.version = 2)),
    ];
    const rs = await Promise.all([
      ...files.map((f) => cli(['verify-proof', f, '--log-key', keys.logKey])),
      cli(['verify-proof', docFile, '--log-key', keys.logKey, ...keys.witnesses.flatMap((w) => ['--witness', w.vkey])]),
      cli(['verify-proof', docFile, '--log-key', keys.logKey, ...keys.witnesses.flatMap((w) => ['--witness', w.vkey]), '--quorum', '1']),
    ]);
    assert.deepEqual(rs.map(errType), [
      [1, 'proof_invalid'],
      [1, 'proof_invalid'],
      [1, 'proof_invalid'],
      [1, 'malformed'],
      [1, 'malformed'],
      [1, 'unsupported_version'],
      [1, 'witness_quorum_not_met'],
      [0, undefined],
    ]);
    // the checkpoint's text changed under its signature: a forged checkpoint, refused for safety
    const forged = variant((d) => {
      d.checkpoint = (d.checkpoint as string).replace('\n600\n', '\n601\n');
      d.tree_size = 601;
    });
    assert.deepEqual(errType(await cli(['verify-proof', forged, '--log-key', keys.logKey])), [3, 'note_signature_invalid']);
  });

  it('an entry its submitter did not sign, proven in the log, is refused for safety by verify-proof', async () => {
    const f = new LogFixture(fresh('bad-entry-log'), keys);
    const bad = fixtureEntry(keys, 3);
    bad[bad.length - 70]! ^= 1;
    await f.append([fixtureEntry(keys, 0), fixtureEntry(keys, 1), bad]);
    const file = join(fresh('doc'), 'bad.json');
    const p = await cli(['prove', '--from-dir', f.dir, '--log-key', keys.logKey, '--index', '2', '--out', file]);
    assert.equal(p.code, 0, p.stderr);
    assert.deepEqual(errType(await cli(['verify-proof', file, '--log-key', keys.logKey])), [3, 'log_entry_invalid']);
  });

  it('--size proves against the checkpoint an earlier audit kept, consistent with the current one', async () => {
    const g = new LogFixture(fresh('grow'), keys);
    await g.append(300);
    const state = join(fresh('state'), 's.json');
    assert.equal((await cli(['audit', '--quiet', '--from-dir', g.dir, '--log-key', keys.logKey, '--state', state])).code, 0);
    const old = g.note;
    await g.append(300);
    const [atOld, atNow, none] = await Promise.all([
      cli(['prove', '--from-dir', g.dir, '--log-key', keys.logKey, '--index', '299', '--size', '300', '--state', state]),
      cli(['prove', '--from-dir', g.dir, '--log-key', keys.logKey, '--index', '299', '--size', '600', '--state', state]),
      cli(['prove', '--from-dir', g.dir, '--log-key', keys.logKey, '--index', '299', '--size', '400', '--state', state]),
    ]);
    assert.equal(atOld.code, 0, atOld.stderr);
    const d = parseInclusionDoc(atOld.stdout);
    assert.deepEqual([d.checkpoint, d.index], [old, 299]);
    assert.equal((await cli(['verify-proof', '-', '--log-key', keys.logKey], atOld.stdout)).code, 0);
    assert.equal(parseInclusionDoc(atNow.stdout).checkpoint, g.note);
    assert.deepEqual(errType(none), [1, 'checkpoint_not_available']);
  });

  it('bad arguments: an index beyond the tree, no source, no index, a missing file', async () => {
    const rs = await Promise.all([
      cli(['prove', '--from-dir', log.dir, '--log-key', keys.logKey, '--index', '600']),
      cli(['prove', '--log-key', keys.logKey, '--index', '1']),
      cli(['prove', '--from-dir', log.dir, '--log-key', keys.logKey]),
      cli(['prove', '--from-dir', log.dir, '--log-key', keys.logKey, '--index', '-1']),
      cli(['verify-proof', join(tmp, 'no-such-file'), '--log-key', keys.logKey]),
      cli(['verify-proof', docFile]),
      cli(['verify-proof', '-', '--log-key', keys.logKey], 'not json'),
    ]);
    assert.deepEqual(rs.map(errType), [
      [1, 'index_out_of_range'],
      [2, 'usage'], // neither --log nor --from-dir: a missing one of several options
      [2, 'usage'],
      [2, 'usage'],
      [1, 'file_not_found'],
      [2, 'usage'],
      [1, 'malformed'],
    ]);
  });
});
