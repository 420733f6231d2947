/**
 * Recovery end to end with real processes: two `holder serve` on loopback, a primary data dir, the CLI
 * run as a child process for every step. Each bad input is a clear typed error that changes nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { existsSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { type RunningServer, runCli, type RunResult, startServer } from '../src/drill/proc.js';
import { generateMnemonics, combineMnemonics } from '../src/crypto/slip39.js';
import { loadIdentity } from '../src/identity.js';
import { readManifestFile } from '../src/recovery/sources.js';
import { confirmHolder } from '../src/recovery/holders.js';
import { releaseFromHolder } from '../src/recovery/collect.js';
import { verifyRecovery } from '../src/recovery/verify.js';
import { checkMasterKey } from '../src/vault/format.js';
import type { Manifest } from '../src/recovery/manifest.js';
import { isLifeboatError } from '../src/errors.js';
import sodium from 'libsodium-wrappers';
import { createRequire } from 'node:module';
import { trackedTempDir } from './helpers/tmp.js';

/** npm `slip39` (CommonJS, untyped), an independent SLIP-0039 implementation. */
const slip39 = createRequire(import.meta.url)('slip39') as { recoverSecret(mnemonics: string[], passphrase?: string): number[] };

interface World {
  dir: string;
  primary: string;
  operatorKey: string;
  holderDirs: string[];
  holders: RunningServer[];
  specs: string[];
  offline: string;
  secrets: Map<string, string>;
  outputs: string[];
}

const w: World = { dir: '', primary: '', operatorKey: '', holderDirs: [], holders: [], specs: [], offline: '', secrets: new Map(), outputs: [] };

async function cli(args: string[], opts: { input?: string; secretFd?: boolean } = {}): Promise<RunResult> {
  const r = await runCli(args, { ...opts, timeoutMs: 60_000 });
  w.outputs.push(r.stdout, r.stderr);
  return r;
}

function ok(r: RunResult): RunResult {
  assert.equal(r.code, 0, `expected success, got ${r.code}: ${r.stderr}`);
  return r;
}

/** Asserts a failed command: exit 1 (3 for a refusal for safety, docs/cli.md), the typed error on stderr in the CLI's voice. */
function failsWith(r: RunResult, pattern: RegExp, exitCode = 1): void {
  assert.equal(r.code, exitCode, `expected exit ${exitCode}, got ${r.code}: ${r.stdout}`);
  assert.match(r.stderr, /lifeboat: error: .* \([a-z0-9_]+\)\n/);
  assert.match(r.stderr, pattern);
}

/** Where the vault header's generation sits (docs/format.md): envelope magic, version, header_len, then scheme id and fingerprint. */
const VAULT_GENERATION_OFFSET = 4 + 1 + 2 + 16 + 32;

function freshDir(name: string): string {
  return join(w.dir, `${name}-${randomBytes(4).toString('hex')}`);
}

function reconstructArgs(dataDir: string, extra: string[]): string[] {
  return ['recovery', 'reconstruct', '--data-dir', dataDir, '--operator-key', w.operatorKey, '--json', ...extra];
}

function assertNothingWritten(dataDir: string): void {
  const files = existsSync(dataDir) ? readdirSync(dataDir) : [];
  assert.ok(!files.includes('vault.lbv') && !files.includes('master.key') && !files.includes('recovery-manifest.json'), `files written: ${files.join(', ')}`);
}

describe('recovery end to end', { timeout: 300_000 }, () => {
  before(async () => {
    w.dir = trackedTempDir('lb-e2e-');
    w.primary = join(w.dir, 'primary');
    w.operatorKey = join(w.dir, 'operator.json');
    const primary = JSON.parse(ok(await cli(['primary', 'init', '--data-dir', w.primary, '--json'])).stdout) as { identity: string };
    const op = JSON.parse(ok(await cli(['operator', 'keygen', '--out', w.operatorKey, '--json'])).stdout) as { identity: string };
    for (const name of ['a', 'b']) {
      const dir = join(w.dir, `holder-${name}`);
      const h = JSON.parse(ok(await cli(['holder', 'init', '--data-dir', dir, '--primary', primary.identity, '--operator', op.identity, '--json'])).stdout) as { fingerprint: string };
      const s = await startServer(['holder', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--json']);
      w.holderDirs.push(dir);
      w.holders.push(s);
      w.specs.push(`${s.url}#${h.fingerprint}`);
    }
    const init = ok(await cli(['recovery', 'init', '--data-dir', w.primary, '--holder', w.specs[0]!, '--holder', w.specs[1]!, '--secret-fd', '3', '--json'], { secretFd: true }));
    w.offline = init.secret.trim();
    for (const name of ['backup-key', 'db/password']) {
      const value = randomBytes(24).toString('base64');
      w.secrets.set(name, value);
      ok(await cli(['vault', 'put', name, '--data-dir', w.primary], { input: value }));
    }
  });

  after(async () => {
    await Promise.all(w.holders.map((h) => h.stop()));
    rmSync(w.dir, { recursive: true, force: true });
  });

  it('init refuses the offline share on a non-terminal stdout without --secret-fd, and a second init', async () => {
    failsWith(await cli(['recovery', 'init', '--data-dir', freshDir('p'), '--holder', w.specs[0]!]), /terminal/);
    failsWith(await cli(['recovery', 'init', '--data-dir', w.primary, '--holder', w.specs[0]!, '--secret-fd', '3'], { secretFd: true }), /already exists/);
    failsWith(await cli(['recovery', 'init', '--data-dir', w.primary, '--holder', 'http://127.0.0.1:1', '--secret-fd', '3'], { secretFd: true }), /fingerprint/);
  });

  it('verify: every holder proves possession and the typed offline share matches, without reconstructing', async () => {
    const r = ok(await cli(['recovery', 'verify', '--data-dir', w.primary, '--offline-shares', '1', '--json'], { input: `${w.offline}\n` }));
    const report = JSON.parse(r.stdout) as { ok: boolean; checks: { kind: string; ok: boolean }[] };
    assert.equal(report.ok, true);
    assert.deepEqual(report.checks.map((c) => [c.kind, c.ok]), [['holder', true], ['holder', true], ['offline', true]]);
  });

  it('verify: one mistyped word fails by position and the command exits 1', async () => {
    const words = w.offline.split(' ');
    words[4] = 'notaword';
    const r = await cli(['recovery', 'verify', '--data-dir', w.primary, '--offline-shares', '1', '--json'], { input: `${words.join(' ')}\n` });
    assert.equal(r.code, 1);
    const offline = (JSON.parse(r.stdout) as { checks: { kind: string; code?: string; message?: string }[] }).checks.find((c) => c.kind === 'offline')!;
    assert.equal(offline.code, 'invalid_word');
    assert.match(offline.message!, /word 5/);
  });

  it('verify: a holder that lies in its challenge fails possession_failed; a down holder peer_unreachable', async () => {
    const manifest = readManifestFile(join(w.primary, 'recovery-manifest.json'));
    const liar: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        const upstream = await fetch(`${w.holders[0]!.url}${req.url}`, { method: req.method, headers: req.headers as Record<string, string>, body: chunks.length ? Buffer.concat(chunks) : undefined });
        let body = await upstream.text();
        if (req.url!.endsWith('/challenge') && upstream.ok) {
          const answer = JSON.parse(body) as { signature: string };
          const sig = Buffer.from(answer.signature, 'base64');
          sig[0]! ^= 1;
          body = JSON.stringify({ ...answer, signature: sig.toString('base64') });
        }
        res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(body);
      });
    });
    await new Promise<void>((r) => liar.listen(0, '127.0.0.1', () => r()));
    const port = (liar.address() as { port: number }).port;
    const lying: Manifest = {
      ...manifest,
      members: manifest.members.map((m, i) => (i === 0 ? { ...m, url: `http://127.0.0.1:${port}` } : i === 1 ? { ...m, url: 'http://127.0.0.1:1' } : m)),
    };
    try {
      const report = await verifyRecovery({ manifest: lying, signer: loadIdentity(join(w.primary, 'identity.json'), 'primary'), offlineShares: [] });
      assert.equal(report.ok, false);
      assert.equal(report.checks[0]!.code, 'possession_failed');
      assert.equal(report.checks[1]!.code, 'peer_unreachable');
    } finally {
      liar.close();
    }
  });

  it('reconstruct: a holder answering with another key is refused by fingerprint; nothing is written', async () => {
    const d = freshDir('p');
    const wrong = `${w.holders[1]!.url}#${w.specs[0]!.split('#')[1]}`;
    failsWith(await cli(reconstructArgs(d, ['--holder', wrong, '--typed-shares', '1']), { input: `${w.offline}\n` }), /has fingerprint .* expected.*\(peer_identity_mismatch\)/, 3);
    assertNothingWritten(d);
    const otherPrimary = '0000:1111:2222:3333:4444:5555:6666:7777';
    failsWith(await cli(reconstructArgs(d, ['--holder', w.specs[0]!, '--primary-fingerprint', otherPrimary, '--typed-shares', '1']), { input: `${w.offline}\n` }), /signed by primary .* not 0000/, 3);
    assertNothingWritten(d);
  });

  it('reconstruct: a mistyped word, a share of another set, and too few shares each fail by name; nothing is written', async () => {
    const words = w.offline.split(' ');
    const typo = [...words];
    typo[9] = 'zzzz';
    let d = freshDir('p');
    failsWith(await cli(reconstructArgs(d, ['--holder', w.specs[0]!, '--typed-shares', '1']), { input: `${typo.join(' ')}\n` }), /word 10 is not in the slip-0039 wordlist.*\(invalid_word\)/);
    assertNothingWritten(d);
    const swapped = [...words];
    [swapped[11], swapped[12]] = [swapped[12]!, swapped[11]!];
    if (swapped[11] !== swapped[12]) {
      failsWith(await cli(reconstructArgs(d, ['--holder', w.specs[0]!, '--typed-shares', '1']), { input: `${swapped.join(' ')}\n` }), /checksum/);
      assertNothingWritten(d);
    }
    const other = generateMnemonics(randomBytes(32), { threshold: 2, count: 3 }).mnemonics[2]!;
    d = freshDir('p');
    failsWith(await cli(reconstructArgs(d, ['--holder', w.specs[0]!, '--typed-shares', '1']), { input: `${other}\n` }), /another share set.*\(share_set_mismatch\)/, 3);
    assertNothingWritten(d);
    d = freshDir('p');
    const manifestFile = join(w.primary, 'recovery-manifest.json');
    const vaultFile = join(w.primary, 'vault.lbv');
    failsWith(await cli(reconstructArgs(d, ['--manifest', manifestFile, '--vault', vaultFile, '--typed-shares', '1']), { input: `${w.offline}\n` }), /1 of 2 required shares/);
    assertNothingWritten(d);
    d = freshDir('p');
    const r = await cli(reconstructArgs(d, ['--manifest', manifestFile, '--holder', w.specs[0]!, '--holder', `http://127.0.0.1:1#${w.specs[1]!.split('#')[1]}`]));
    failsWith(r, /1 of 2 required shares/);
    assertNothingWritten(d);
  });

  it('reconstruct: a truncated or future-version vault backup is refused; nothing is written', async () => {
    const vault = readFileSync(join(w.primary, 'vault.lbv'));
    const cases: [string, Buffer, RegExp][] = [
      ['truncated', vault.subarray(0, 60), /truncated/],
      ['future', Buffer.from(vault.map((b, i) => (i === 4 ? 2 : b))), /version 2 is not supported/],
    ];
    for (const [name, bytes, pattern] of cases) {
      const file = join(w.dir, `${name}.lbv`);
      writeFileSync(file, bytes);
      const d = freshDir('p');
      failsWith(await cli(reconstructArgs(d, ['--vault', file, '--holder', w.specs[0]!, '--typed-shares', '1']), { input: `${w.offline}\n` }), pattern);
      assertNothingWritten(d);
    }
  });

  it('seal and unseal: from the holders (auto-unseal), and typed shares alone are not enough with one offline share', async () => {
    ok(await cli(['seal', '--data-dir', w.primary]));
    failsWith(await cli(['vault', 'get', 'backup-key', '--stdout', '--data-dir', w.primary]), /sealed/);
    failsWith(await cli(['unseal', '--data-dir', w.primary, '--no-holders', '--typed-shares', '1'], { input: `${w.offline}\n` }), /1 of 2 required shares/);
    assert.equal(existsSync(join(w.primary, 'master.key')), false);
    ok(await cli(['unseal', '--data-dir', w.primary, '--json']));
    assert.equal(ok(await cli(['vault', 'get', 'backup-key', '--stdout', '--data-dir', w.primary])).stdout, w.secrets.get('backup-key'));
  });

  it('rotate: new shares work, the old shares open nothing, and holders drop the old scheme', async () => {
    const before = readManifestFile(join(w.primary, 'recovery-manifest.json'));
    const operator = loadIdentity(w.operatorKey, 'operator');
    const oldHolderShare = await releaseFromHolder({ manifest: before, holder: await confirmHolder({ url: w.holders[0]!.url, fingerprint: w.specs[0]!.split('#')[1]! }, operator), signer: operator, purpose: 'reconstruct' });
    const r = ok(await cli(['recovery', 'rotate', '--data-dir', w.primary, '--secret-fd', '3', '--json'], { secretFd: true }));
    const newOffline = r.secret.trim();
    assert.notEqual(newOffline, w.offline);
    const after = readManifestFile(join(w.primary, 'recovery-manifest.json'));
    assert.notEqual(after.scheme_id, before.scheme_id);
    // old shares combine to the old master, which the new vault refuses before decrypting
    const oldMaster = combineMnemonics([w.offline, oldHolderShare.mnemonic]);
    assert.throws(() => checkMasterKey(readFileSync(join(w.primary, 'vault.lbv')), oldMaster), (e) => isLifeboatError(e, 'wrong_master_key'));
    const d = freshDir('p');
    failsWith(await cli(reconstructArgs(d, ['--holder', w.specs[0]!, '--typed-shares', '1']), { input: `${w.offline}\n` }), /another share set/, 3);
    assertNothingWritten(d);
    for (const spec of w.specs) {
      const h = await confirmHolder({ url: spec.split('#')[0]!, fingerprint: spec.split('#')[1]! }, operator);
      assert.deepEqual((await h.client.listSchemes()).map((s) => s.scheme_id), [after.scheme_id]);
    }
    const v = JSON.parse(ok(await cli(['recovery', 'verify', '--data-dir', w.primary, '--offline-shares', '1', '--json'], { input: `${newOffline}\n` })).stdout) as { ok: boolean };
    assert.equal(v.ok, true);
    for (const [name, value] of w.secrets) assert.equal(ok(await cli(['vault', 'get', name, '--stdout', '--data-dir', w.primary])).stdout, value);
    w.offline = newOffline;
  });

  it('reconstruct from the two holders alone, and from one holder plus the offline share: every secret intact, new primary enrolled', async () => {
    const primaryFp = (JSON.parse(ok(await cli(['primary', 'show', '--data-dir', w.primary, '--json'])).stdout) as { fingerprint: string }).fingerprint;
    for (const extra of [['--holder', w.specs[0]!, '--holder', w.specs[1]!], ['--holder', w.specs[1]!, '--typed-shares', '1', '--primary-fingerprint', primaryFp]]) {
      const d = freshDir('p');
      const r = JSON.parse(ok(await cli(reconstructArgs(d, extra), { input: `${w.offline}\n` })).stdout) as { entries: number; enrolled: string[] };
      assert.equal(r.entries, w.secrets.size);
      assert.equal(r.enrolled.length, 2, 'the new primary is enrolled on every holder');
      for (const [name, value] of w.secrets) assert.equal(ok(await cli(['vault', 'get', name, '--stdout', '--data-dir', d])).stdout, value);
      // the new primary is the enrolled one now: it can push vault copies, the lost one cannot
      ok(await cli(['recovery', 'sync', '--data-dir', d]));
      const stale = await cli(['recovery', 'sync', '--data-dir', w.primary, '--json']);
      assert.equal(stale.code, 1);
      assert.match(stale.stdout, /not_enrolled/);
    }
  });

  it('reconstruct: a vault file that does not open (tampered, or claiming a higher generation) is passed over for the newest copy that opens, and named', async () => {
    const vault = readFileSync(join(w.primary, 'vault.lbv'));
    const generation = vault.readBigUInt64BE(VAULT_GENERATION_OFFSET);
    const forged = Buffer.from(vault);
    forged.writeBigUInt64BE(generation + 100n, VAULT_GENERATION_OFFSET);
    const tampered = Buffer.from(vault.map((b, i) => (i === vault.length - 5 ? b ^ 1 : b)));
    for (const [name, bytes] of [['forged', forged], ['tampered', tampered]] as const) {
      const file = join(w.dir, `${name}.lbv`);
      writeFileSync(file, bytes);
      const d = freshDir('p');
      const r = JSON.parse(ok(await cli(reconstructArgs(d, ['--vault', file, '--holder', w.specs[0]!, '--typed-shares', '1']), { input: `${w.offline}\n` })).stdout) as { entries: number; vault_generation: number; vault_from: string; vault_copies_rejected: string[] };
      assert.equal(r.entries, w.secrets.size);
      assert.equal(BigInt(r.vault_generation), generation);
      assert.match(r.vault_from, /^holder /);
      if (name === 'forged') assert.match(r.vault_copies_rejected.join('\n'), new RegExp(`file .*forged.lbv: generation ${generation + 100n} does not open`));
      assert.deepEqual(readFileSync(join(d, 'vault.lbv')), vault);
    }
  });

  it('an air-gapped holder answers a release request from files, and a replayed request is refused', async () => {
    const manifest = readManifestFile(join(w.primary, 'recovery-manifest.json'));
    const d = freshDir('p');
    const req = join(w.dir, 'req.json');
    const resp = join(w.dir, 'resp.json');
    const fp = w.specs[1]!.split('#')[1]!;
    ok(await cli(['recovery', 'request', '--data-dir', d, '--operator-key', w.operatorKey, '--scheme', manifest.scheme_id, '--holder-fingerprint', fp, '--out', req]));
    await w.holders[1]!.stop();
    ok(await cli(['holder', 'release', '--data-dir', w.holderDirs[1]!, '--request', req, '--out', resp]));
    failsWith(await cli(['holder', 'release', '--data-dir', w.holderDirs[1]!, '--request', req, '--out', `${resp}.2`]), /already|replay/);
    // docs/format.md, "Pending release key": the response opens outside Lifeboat with libsodium and a SLIP-0039 tool
    await sodium.ready;
    const response = JSON.parse(readFileSync(resp, 'utf8')) as { request_id: string; sealed_share: string; member_index: number };
    const pending = JSON.parse(readFileSync(join(d, 'pending-releases', `${response.request_id}.json`), 'utf8')) as { secret_key: string };
    const sk = Buffer.from(pending.secret_key, 'base64');
    const payload = Buffer.from(sodium.crypto_box_seal_open(Buffer.from(response.sealed_share, 'base64'), sodium.crypto_scalarmult_base(sk), sk));
    assert.equal(payload.subarray(0, 4).toString(), 'LBSH');
    assert.equal(payload[4], 1);
    assert.equal(payload.subarray(5, 21).toString('hex'), manifest.scheme_id);
    assert.equal(payload[21], response.member_index);
    const released = payload.subarray(22).toString('utf8');
    const master = Buffer.from(slip39.recoverSecret([released, w.offline]));
    checkMasterKey(readFileSync(join(w.primary, 'vault.lbv')), master);
    const manifestFile = join(w.primary, 'recovery-manifest.json');
    const r = JSON.parse(ok(await cli(reconstructArgs(d, ['--manifest', manifestFile, '--vault', join(w.primary, 'vault.lbv'), '--release-response', resp, '--typed-shares', '1']), { input: `${w.offline}\n` })).stdout) as { entries: number };
    assert.equal(r.entries, w.secrets.size);
    assert.equal(existsSync(join(d, 'pending-releases')) && readdirSync(join(d, 'pending-releases')).length, 0, 'the one-time key is removed after use');
  });

  it('no secret value or share ever reached stdout or stderr of a command that does not print it on purpose', () => {
    const text = w.outputs.join('\n');
    for (const value of w.secrets.values()) {
      const printedOnPurpose = w.outputs.filter((o) => o === value).length;
      assert.equal(text.split(value).length - 1, printedOnPurpose, 'a secret value appeared in other output');
    }
    const words = w.offline.split(' ');
    for (let i = 0; i + 4 <= words.length; i++) assert.ok(!text.includes(words.slice(i, i + 4).join(' ')), 'share words appeared in output');
  });
});
