/**
 * The recovery vault under attack and under bad luck, with real processes (issue 8, points 1-4):
 * a compromised holder serving a re-signed manifest, a stale holder, a rolled-back primary vault file,
 * and an init that fails half way. Each is refused by name, or ends with nothing lost.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { type RunningServer, runCli, type RunResult, startServer } from '../src/drill/proc.js';
import { encodePublicIdentity, generateIdentity, identityFingerprint, loadIdentity } from '../src/identity.js';
import { parseManifest, signManifest } from '../src/recovery/manifest.js';
import { readManifestFile } from '../src/recovery/sources.js';
import { confirmHolder } from '../src/recovery/holders.js';
import { toB64 } from '../src/util/bytes.js';
import { makeScheme } from './helpers/holder.js';
import { trackedTempDir } from './helpers/tmp.js';

const tmp = trackedTempDir('lb-attack-');
const outputs: string[] = [];

async function cli(args: string[], opts: { input?: string; secretFd?: boolean } = {}): Promise<RunResult> {
  const r = await runCli(args, { ...opts, timeoutMs: 60_000 });
  outputs.push(r.stdout, r.stderr);
  return r;
}

function ok(r: RunResult): RunResult {
  assert.equal(r.code, 0, `expected success, got ${r.code}: ${r.stderr}`);
  return r;
}

/** A refusal: non-zero exit and the err_type named on stderr. */
function refused(r: RunResult, code: string): void {
  assert.notEqual(r.code, 0, `expected ${code}, got success: ${r.stdout}`);
  assert.match(r.stderr, new RegExp(`lifeboat: error: .*\\(${code}\\)`));
}

function fresh(name: string): string {
  return join(tmp, `${name}-${randomBytes(4).toString('hex')}`);
}

interface Holder {
  dir: string;
  fingerprint: string;
  server?: RunningServer;
  port?: number;
  spec: string;
}

interface Fleet {
  primary: string;
  primaryFp: string;
  operatorKey: string;
  operatorId: string;
  holders: Holder[];
  offline: string;
}

async function startHolder(h: Holder): Promise<void> {
  h.server = await startServer(['holder', 'serve', '--data-dir', h.dir, '--listen', `127.0.0.1:${h.port ?? 0}`, '--json']);
  h.port = Number(new URL(h.server.url).port);
  h.spec = `${h.server.url}#${h.fingerprint}`;
}

/**
 * A primary, an operator and two holders, split 2-of-3 with one offline share, and secret `a` in the
 * vault. `specOf` may give the manifest another address for a holder (a proxy in front of it).
 */
async function fleet(name: string, specOf: (h: Holder) => Promise<string> = async (h) => h.spec): Promise<Fleet> {
  const base = fresh(name);
  const primary = join(base, 'primary');
  const operatorKey = join(base, 'operator.json');
  const p = JSON.parse(ok(await cli(['primary', 'init', '--data-dir', primary, '--json'])).stdout) as { identity: string; fingerprint: string };
  const op = JSON.parse(ok(await cli(['operator', 'keygen', '--out', operatorKey, '--json'])).stdout) as { identity: string };
  const holders: Holder[] = [];
  for (const n of ['h1', 'h2']) {
    const dir = join(base, n);
    const h = JSON.parse(ok(await cli(['holder', 'init', '--data-dir', dir, '--primary', p.identity, '--operator', op.identity, '--json'])).stdout) as { fingerprint: string };
    const holder: Holder = { dir, fingerprint: h.fingerprint, spec: '' };
    await startHolder(holder);
    holders.push(holder);
  }
  const specs = [await specOf(holders[0]!), await specOf(holders[1]!)];
  const init = ok(await cli(['recovery', 'init', '--data-dir', primary, '--holder', specs[0]!, '--holder', specs[1]!, '--secret-fd', '3', '--json'], { secretFd: true }));
  assert.equal((JSON.parse(init.stdout) as { primary_fingerprint: string }).primary_fingerprint, p.fingerprint, 'init names the primary fingerprint for the paper');
  ok(await cli(['vault', 'put', 'a', '--data-dir', primary], { input: 'secret-a' }));
  return { primary, primaryFp: p.fingerprint, operatorKey, operatorId: op.identity, holders, offline: init.secret.trim() };
}

function reconstructArgs(f: Fleet, dataDir: string, extra: string[]): string[] {
  return ['recovery', 'reconstruct', '--data-dir', dataDir, '--operator-key', f.operatorKey, '--json', ...extra];
}

function nothingWritten(dataDir: string): void {
  const files = existsSync(dataDir) ? readdirSync(dataDir) : [];
  assert.ok(!files.includes('vault.lbv') && !files.includes('master.key') && !files.includes('recovery-manifest.json'), `files written: ${files.join(', ')}`);
}

/** A proxy in front of a holder that answers manifest requests with `manifest` and passes the rest on. */
async function manifestSwapProxy(upstream: string, manifest: unknown): Promise<{ url: string; close(): void }> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      if (req.method === 'GET' && /\/manifest$/.test(req.url ?? '')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(manifest));
        return;
      }
      const up = await fetch(`${upstream}${req.url}`, { method: req.method, headers: req.headers as Record<string, string>, body: chunks.length ? Buffer.concat(chunks) : undefined });
      res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' }).end(Buffer.from(await up.arrayBuffer()));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => server.close() };
}

/**
 * A proxy in front of a holder that, once `lie` is set, claims a vault generation `by` above what it
 * holds in its scheme list, while still serving its real (authentic, older) copy.
 */
async function generationLiarProxy(upstream: string, by: number): Promise<{ url: string; lie: boolean; corrupt: boolean; close(): void }> {
  const proxy = { url: '', lie: false, corrupt: false, close: () => server.close() };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const up = await fetch(`${upstream}${req.url}`, { method: req.method, headers: req.headers as Record<string, string>, body: chunks.length ? Buffer.concat(chunks) : undefined });
      let body = Buffer.from(await up.arrayBuffer());
      if (proxy.lie && req.method === 'GET' && /\/schemes$/.test(req.url ?? '') && up.status === 200) {
        const list = JSON.parse(body.toString('utf8')) as { vault_generation: number | null }[];
        body = Buffer.from(JSON.stringify(list.map((s) => ({ ...s, vault_generation: s.vault_generation === null ? null : s.vault_generation + by }))));
      }
      if (proxy.corrupt && req.method === 'GET' && /\/vault$/.test(req.url ?? '') && up.status === 200) {
        const answer = JSON.parse(body.toString('utf8')) as { vault: string };
        const vault = Buffer.from(answer.vault, 'base64');
        vault[vault.length - 3]! ^= 1; // in the tag: the header still reads, the copy does not open
        body = Buffer.from(JSON.stringify({ ...answer, vault: vault.toString('base64') }));
      }
      res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' }).end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  proxy.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return proxy;
}

const fleets: Fleet[] = [];
const extraServers: RunningServer[] = [];

describe('recovery under attack and bad luck', { timeout: 300_000 }, () => {
  after(async () => {
    await Promise.all([...fleets.flatMap((f) => f.holders.map((h) => h.server?.stop())), ...extraServers.map((s) => s.stop())]);
    rmSync(tmp, { recursive: true, force: true });
  });

  describe('a compromised holder serves a re-signed manifest that points member 2 at the attacker', () => {
    let f: Fleet;
    let forged: unknown;
    let attackerHolderDir: string;
    let proxy: { url: string; close(): void };
    before(async () => {
      f = await fleet('forge');
      fleets.push(f);
      // the attacker runs a holder of its own, enrolled to the attacker's "primary"
      const attacker = generateIdentity('primary');
      attackerHolderDir = fresh('attacker-holder');
      const ah = JSON.parse(ok(await cli(['holder', 'init', '--data-dir', attackerHolderDir, '--primary', encodePublicIdentity(attacker), '--operator', f.operatorId, '--json'])).stdout) as { fingerprint: string; identity: string };
      const server = await startServer(['holder', 'serve', '--data-dir', attackerHolderDir, '--listen', '127.0.0.1:0', '--json']);
      extraServers.push(server);
      const real = readManifestFile(join(f.primary, 'recovery-manifest.json'));
      const { signature: _sig, ...body } = real;
      const members = body.members.map((m) => (m.member_index === 1 ? { ...m, url: server.url, holder: ah.identity, fingerprint: ah.fingerprint } : m));
      forged = signManifest({ ...body, members, primary: encodePublicIdentity(attacker) }, attacker);
      parseManifest(forged); // it is a well-formed, validly signed manifest: only the binding can tell
      proxy = await manifestSwapProxy(f.holders[0]!.server!.url, forged);
    });
    after(() => proxy.close());

    it("the README's worst-day command refuses it by name (manifest_forged) after combining; nothing is written, the attacker's holder gets nothing", async () => {
      const d = fresh('victim');
      const r = await cli(reconstructArgs(f, d, ['--holder', `${proxy.url}#${f.holders[0]!.fingerprint}`, '--typed-shares', '1']), { input: `${f.offline}\n` });
      refused(r, 'manifest_forged');
      nothingWritten(d);
      // the attacker's holder holds no scheme and enrolled no new primary
      const operator = loadIdentity(f.operatorKey, 'operator');
      const h = await confirmHolder({ url: extraServers[0]!.url, fingerprint: identityFingerprint(loadIdentity(join(attackerHolderDir, 'identity.json'), 'holder')) }, operator);
      assert.deepEqual(await h.client.listSchemes(), []);
      // the real holders still have the lost primary's manifest and scheme, untouched
      const real = await confirmHolder({ url: f.holders[1]!.server!.url, fingerprint: f.holders[1]!.fingerprint }, operator);
      assert.equal((await real.client.listSchemes()).length, 1);
    });

    it('with --primary-fingerprint from the paper it is refused before any share is asked for (primary_mismatch)', async () => {
      const d = fresh('victim');
      const r = await cli(reconstructArgs(f, d, ['--holder', `${proxy.url}#${f.holders[0]!.fingerprint}`, '--typed-shares', '1', '--primary-fingerprint', f.primaryFp]), { input: `${f.offline}\n` });
      refused(r, 'primary_mismatch');
      nothingWritten(d);
    });

    it('the same command through the honest holder succeeds, and rotate then seals only to the real holders', async () => {
      const d = fresh('honest');
      const r = JSON.parse(ok(await cli(reconstructArgs(f, d, ['--holder', f.holders[0]!.spec, '--typed-shares', '1', '--primary-fingerprint', f.primaryFp]), { input: `${f.offline}\n` })).stdout) as { entries: number; enrolled: string[] };
      assert.equal(r.entries, 1);
      assert.equal(r.enrolled.length, 2);
      ok(await cli(['recovery', 'rotate', '--data-dir', d, '--secret-fd', '3', '--json'], { secretFd: true }));
      const m = readManifestFile(join(d, 'recovery-manifest.json'));
      assert.deepEqual(
        m.members.filter((x) => x.kind === 'holder').map((x) => x.fingerprint).sort(),
        f.holders.map((h) => h.fingerprint).sort(),
      );
    });
  });

  describe('a stale holder', () => {
    let f: Fleet;
    before(async () => {
      f = await fleet('stale');
      fleets.push(f);
    });

    it('reconstruct naming the stale holder still takes the newest copy from the other one, and says when a holder could not be asked', async () => {
      // holder 1 is down while `b` is written: only holder 2 has generation with b
      await f.holders[0]!.server!.stop();
      ok(await cli(['vault', 'put', 'b', '--data-dir', f.primary], { input: 'secret-b' }));
      await startHolder(f.holders[0]!);
      const spec1 = f.holders[0]!.spec;
      const d = fresh('after-stale');
      const r = JSON.parse(ok(await cli(reconstructArgs(f, d, ['--holder', spec1, '--typed-shares', '1', '--primary-fingerprint', f.primaryFp]), { input: `${f.offline}\n` })).stdout) as {
        entries: number;
        vault_from: string;
        unreachable_holders: string[];
      };
      assert.equal(r.entries, 2, 'b is not silently dropped');
      assert.match(r.vault_from, new RegExp(f.holders[1]!.server!.url));
      assert.deepEqual(r.unreachable_holders, []);
      assert.equal(ok(await cli(['vault', 'get', 'b', '--stdout', '--data-dir', d])).stdout, 'secret-b');
      // with holder 2 down, the result says plainly that it may hold a newer vault
      await f.holders[1]!.server!.stop();
      const d2 = fresh('after-stale');
      const r2 = await cli(reconstructArgs(f, d2, ['--holder', spec1, '--typed-shares', '1', '--primary-fingerprint', f.primaryFp]), { input: `${f.offline}\n` });
      ok(r2);
      assert.deepEqual((JSON.parse(r2.stdout) as { unreachable_holders: string[] }).unreachable_holders, [f.holders[1]!.server!.url]);
      assert.match(r2.stderr, /could not be asked: it may hold a vault newer than generation/);
      await startHolder(f.holders[1]!);
    });
  });

  describe('a fork: the new primary writes while the holder with the newest vault is unreachable', () => {
    let f: Fleet;
    before(async () => {
      f = await fleet('fork');
      fleets.push(f);
    });

    it('verify and put refuse the fork by name, sync refuses it without --merge, and sync --merge keeps every secret', async () => {
      const [h1, h2] = f.holders as [Holder, Holder];
      await h1.server!.stop();
      ok(await cli(['vault', 'put', 'b', '--data-dir', f.primary], { input: 'secret-b' })); // only holder 2 has b
      await startHolder(h1);
      await h2.server!.stop();
      const d = fresh('forked');
      const r = JSON.parse(ok(await cli(reconstructArgs(f, d, ['--holder', h1.spec, '--typed-shares', '1', '--primary-fingerprint', f.primaryFp]), { input: `${f.offline}\n` })).stdout) as { primary: string; entries: number; not_enrolled: string[] };
      assert.equal(r.entries, 1, 'holder 1 is stale: only a');
      assert.equal(r.not_enrolled.length, 1, 'the unreachable holder is listed as not enrolled');
      ok(await cli(['vault', 'put', 'x', '--data-dir', d], { input: 'secret-x' })); // the fork: x only here and on holder 1
      ok(await cli(['holder', 'enrol', '--data-dir', h2.dir, '--primary', r.primary]));
      await startHolder(h2);
      const v = await cli(['recovery', 'verify', '--data-dir', d, '--json']);
      assert.equal(v.code, 3);
      assert.ok((JSON.parse(v.stdout) as { checks: { code?: string }[] }).checks.some((c) => c.code === 'vault_forked'));
      const vaultFile = join(d, 'vault.lbv');
      const before = readFileSync(vaultFile);
      const put = await cli(['vault', 'put', 'y', '--data-dir', d], { input: 'secret-y' });
      refused(put, 'vault_forked');
      assert.equal(put.code, 3);
      assert.deepEqual(readFileSync(vaultFile), before, 'a refused put writes nothing');
      const s = await cli(['recovery', 'sync', '--data-dir', d]);
      refused(s, 'vault_forked');
      assert.match(s.stderr, /with b;.* has x/);
      const m = JSON.parse(ok(await cli(['recovery', 'sync', '--merge', '--data-dir', d, '--json'])).stdout) as { merged_from: string[]; failures: string[] };
      assert.deepEqual(m.merged_from, [h2.server!.url]);
      assert.deepEqual(m.failures, []);
      for (const [name, value] of [['a', 'secret-a'], ['b', 'secret-b'], ['x', 'secret-x']]) {
        assert.equal(ok(await cli(['vault', 'get', name!, '--stdout', '--data-dir', d])).stdout, value);
      }
      ok(await cli(['vault', 'put', 'y', '--data-dir', d], { input: 'secret-y' }));
      assert.equal(JSON.parse(ok(await cli(['recovery', 'verify', '--data-dir', d, '--json'])).stdout).ok, true);
    });
  });

  describe('a rolled-back primary vault file', () => {
    let f: Fleet;
    before(async () => {
      f = await fleet('rollback');
      fleets.push(f);
    });

    it('verify reports primary_behind, put refuses to write (nothing changes), sync pulls the newer copy back, and nothing is lost', async () => {
      const vaultFile = join(f.primary, 'vault.lbv');
      const offsite = join(tmp, 'offsite.lbv');
      copyFileSync(vaultFile, offsite);
      ok(await cli(['vault', 'put', 'c', '--data-dir', f.primary], { input: 'secret-c' }));
      copyFileSync(offsite, vaultFile); // the old off-site copy is restored over the current one
      const v = await cli(['recovery', 'verify', '--data-dir', f.primary, '--json']);
      assert.notEqual(v.code, 0);
      const report = JSON.parse(v.stdout) as { ok: boolean; checks: { code?: string }[] };
      assert.equal(report.ok, false);
      assert.deepEqual(report.checks.map((c) => c.code), ['primary_behind', 'primary_behind']);
      const before = readFileSync(vaultFile);
      refused(await cli(['vault', 'put', 'd', '--data-dir', f.primary], { input: 'secret-d' }), 'primary_behind');
      assert.deepEqual(readFileSync(vaultFile), before, 'a refused put writes nothing');
      const s = JSON.parse(ok(await cli(['recovery', 'sync', '--data-dir', f.primary, '--json'])).stdout) as { pulled_from: string | null };
      assert.ok(s.pulled_from);
      assert.equal(ok(await cli(['vault', 'get', 'c', '--stdout', '--data-dir', f.primary])).stdout, 'secret-c');
      ok(await cli(['vault', 'put', 'd', '--data-dir', f.primary], { input: 'secret-d' }));
      const list = JSON.parse(ok(await cli(['vault', 'list', '--data-dir', f.primary, '--json'])).stdout) as { name: string }[] | { entries: { name: string }[] };
      const names = (Array.isArray(list) ? list : list.entries).map((e) => e.name).sort();
      assert.deepEqual(names, ['a', 'c', 'd']);
      assert.equal(JSON.parse(ok(await cli(['recovery', 'verify', '--data-dir', f.primary, '--json'])).stdout).ok, true);
    });

    it('vault put exits non-zero when no holder took the new copy, and says the value is stored locally', async () => {
      await Promise.all(f.holders.map((h) => h.server!.stop()));
      const r = await cli(['vault', 'put', 'e', '--data-dir', f.primary], { input: 'secret-e' });
      refused(r, 'not_replicated');
      assert.match(r.stderr, /stored in the primary's vault as generation/);
      assert.equal(ok(await cli(['vault', 'get', 'e', '--stdout', '--data-dir', f.primary])).stdout, 'secret-e');
      for (const h of f.holders) await startHolder(h);
      ok(await cli(['recovery', 'sync', '--data-dir', f.primary]));
      assert.equal(JSON.parse(ok(await cli(['recovery', 'verify', '--data-dir', f.primary, '--json'])).stdout).ok, true);
    });
  });

  describe('a compromised holder claims a newer vault generation than the copy it serves', () => {
    let f: Fleet;
    let liar: Awaited<ReturnType<typeof generationLiarProxy>>;
    before(async () => {
      f = await fleet('liar', async (h) => {
        if (liar) return h.spec;
        liar = await generationLiarProxy(h.server!.url, 5);
        return `${liar.url}#${h.fingerprint}`;
      });
      fleets.push(f);
    });
    after(() => liar.close());

    it('its authentic but older copy does not pass for a newer one: vault put goes on (with a warning naming the claim), and so does sync', async () => {
      liar.lie = true;
      const put = await cli(['vault', 'put', 'b', '--data-dir', f.primary], { input: 'secret-b' });
      ok(put);
      assert.match(put.stderr, /claims vault generation \d+, but its copy is generation \d+/);
      const s = JSON.parse(ok(await cli(['recovery', 'sync', '--data-dir', f.primary, '--json'])).stdout) as { pulled_from: string | null; failures: string[] };
      assert.equal(s.pulled_from, null);
      assert.deepEqual(s.failures, []);
      liar.lie = false;
      assert.equal(ok(await cli(['vault', 'get', 'b', '--stdout', '--data-dir', f.primary])).stdout, 'secret-b');
      assert.equal(JSON.parse(ok(await cli(['recovery', 'verify', '--data-dir', f.primary, '--json'])).stdout).ok, true);
    });

    it('a copy that does not open: verify (unsealed) names it vault_copy_invalid and exits 3; vault put ignores it with a warning', async () => {
      liar.lie = true;
      liar.corrupt = true;
      try {
        const v = await cli(['recovery', 'verify', '--data-dir', f.primary, '--json']);
        assert.equal(v.code, 3);
        assert.deepEqual((JSON.parse(v.stdout) as { checks: { code?: string }[] }).checks.map((c) => c.code ?? 'ok').sort(), ['ok', 'vault_copy_invalid']);
        const put = await cli(['vault', 'put', 'c', '--data-dir', f.primary], { input: 'secret-c' });
        ok(put);
        assert.match(put.stderr, /holder .* (claims vault generation|does not open under the master).*: ignored/);
      } finally {
        liar.lie = false;
        liar.corrupt = false;
      }
      ok(await cli(['recovery', 'sync', '--data-dir', f.primary]));
      assert.equal(JSON.parse(ok(await cli(['recovery', 'verify', '--data-dir', f.primary, '--json'])).stdout).ok, true);
    });
  });

  describe('an init that fails half way', () => {
    it('withdraws the share it uploaded, so the next worst day needs no --scheme', async () => {
      const base = fresh('abort');
      const primary = join(base, 'primary');
      const operatorKey = join(base, 'operator.json');
      const p = JSON.parse(ok(await cli(['primary', 'init', '--data-dir', primary, '--json'])).stdout) as { identity: string };
      const op = JSON.parse(ok(await cli(['operator', 'keygen', '--out', operatorKey, '--json'])).stdout) as { identity: string };
      const good: Holder = { dir: join(base, 'good'), fingerprint: '', spec: '' };
      good.fingerprint = (JSON.parse(ok(await cli(['holder', 'init', '--data-dir', good.dir, '--primary', p.identity, '--operator', op.identity, '--json'])).stdout) as { fingerprint: string }).fingerprint;
      await startHolder(good);
      // the second holder is enrolled to another primary: it refuses the upload
      const other = JSON.parse(ok(await cli(['primary', 'init', '--data-dir', join(base, 'other-primary'), '--json'])).stdout) as { identity: string };
      const bad: Holder = { dir: join(base, 'bad'), fingerprint: '', spec: '' };
      bad.fingerprint = (JSON.parse(ok(await cli(['holder', 'init', '--data-dir', bad.dir, '--primary', other.identity, '--operator', op.identity, '--json'])).stdout) as { fingerprint: string }).fingerprint;
      await startHolder(bad);
      const f: Fleet = { primary, primaryFp: '', operatorKey, operatorId: op.identity, holders: [good, bad], offline: '' };
      fleets.push(f);
      const failed = await cli(['recovery', 'init', '--data-dir', primary, '--holder', good.spec, '--holder', bad.spec, '--secret-fd', '3', '--json'], { secretFd: true });
      refused(failed, 'not_enrolled');
      nothingWritten(primary);
      const operator = loadIdentity(operatorKey, 'operator');
      const g = await confirmHolder({ url: good.server!.url, fingerprint: good.fingerprint }, operator);
      assert.deepEqual(await g.client.listSchemes(), [], 'the good holder keeps no share of the failed init');
      // a working init on the good holder and a third one, then a worst day with no --scheme
      const third: Holder = { dir: join(base, 'third'), fingerprint: '', spec: '' };
      third.fingerprint = (JSON.parse(ok(await cli(['holder', 'init', '--data-dir', third.dir, '--primary', p.identity, '--operator', op.identity, '--json'])).stdout) as { fingerprint: string }).fingerprint;
      await startHolder(third);
      f.holders.push(third);
      const init = ok(await cli(['recovery', 'init', '--data-dir', primary, '--holder', good.spec, '--holder', third.spec, '--secret-fd', '3', '--json'], { secretFd: true }));
      // an init killed between uploads leaves a share with no vault copy: the worst day skips it
      const primaryId = loadIdentity(join(primary, 'identity.json'), 'primary');
      const orphan = makeScheme({ primary: primaryId, holderToken: g.token });
      await (await confirmHolder({ url: good.server!.url, fingerprint: good.fingerprint }, primaryId)).client.putShare(orphan.schemeHex, { member_index: 0, sealed_share: toB64(orphan.sealedShare), manifest: orphan.manifest });
      assert.equal((await g.client.listSchemes()).length, 2);
      const d = fresh('abort-recon');
      ok(await cli(['recovery', 'reconstruct', '--data-dir', d, '--operator-key', operatorKey, '--holder', good.spec, '--typed-shares', '1', '--json'], { input: `${init.secret.trim()}\n` }));
    });
  });

  it('no secret value or share reached any output', () => {
    const text = outputs.join('\n');
    for (const v of ['secret-a', 'secret-b', 'secret-c', 'secret-d', 'secret-e', 'secret-x', 'secret-y']) {
      const onPurpose = outputs.filter((o) => o === v).length;
      assert.equal(text.split(v).length - 1, onPurpose, `${v} appeared in other output`);
    }
    for (const f of fleets) {
      const words = f.offline.split(' ');
      for (let i = 0; f.offline && i + 4 <= words.length; i++) assert.ok(!text.includes(words.slice(i, i + 4).join(' ')), 'share words appeared in output');
    }
  });
});
