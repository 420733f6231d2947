/**
 * Issue 14, point 3 (age): `recovery init --offline-recipient age1… --offline-out FILE` writes the
 * offline share encrypted to an age recipient instead of showing it, and `operator keygen --passphrase`
 * encrypts the operator key file (age scrypt). The real `age` CLI is the peer that opens both (its
 * passphrase prompt reads /dev/tty, so it runs under `script` on a pseudo-terminal); the words it gives
 * back pass `recovery verify`, and an encrypted operator key rebuilds a lost primary with them. Two
 * share holders on loopback; every step is the CLI as a child.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectFailure, expectOk, runCli, type RunningCli, startCli } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';

const PASS = 'correct horse battery';

const ok = expectOk;
const failsWith = expectFailure;

/** The age CLI: `age -d` with the given arguments; a passphrase is typed on a pseudo-terminal. */
function ageDecrypt(dir: string, args: string[], passphrase?: string): string {
  const out = join(dir, `age-out-${Math.random().toString(36).slice(2)}`);
  const cmd = ['age', '-d', '-o', out, ...args].map((a) => `'${a}'`).join(' ');
  const r = passphrase === undefined ? spawnSync('sh', ['-c', cmd], { cwd: dir, encoding: 'utf8' }) : spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: dir, input: `${passphrase}\n`, encoding: 'utf8' });
  assert.equal(r.status, 0, `age -d failed: ${r.stdout} ${r.stderr}`);
  const text = readFileSync(out, 'utf8');
  rmSync(out);
  return text;
}

const w = { dir: '', primary: '', operatorKey: '', operatorId: '', ageKey: '', recipient: '', specs: [] as string[], holders: [] as RunningCli[] };

describe('offline shares to age recipients, operator keys under a passphrase', { timeout: 300_000 }, () => {
  before(async () => {
    w.dir = trackedTempDir('lb-age-');
    w.primary = join(w.dir, 'primary');
    w.operatorKey = join(w.dir, 'operator.json');
    w.ageKey = join(w.dir, 'age-key.txt');
    assert.equal(spawnSync('age-keygen', ['-o', w.ageKey]).status, 0);
    w.recipient = spawnSync('age-keygen', ['-y', w.ageKey], { encoding: 'utf8' }).stdout.trim();
    const [primary, op] = await Promise.all([runCli(['primary', 'init', '--data-dir', w.primary, '--json']), runCli(['operator', 'keygen', '--out', w.operatorKey, '--passphrase-fd', '0', '--json'], { input: `${PASS}\n` })]);
    const p = JSON.parse(ok(primary).stdout) as { identity: string };
    const o = JSON.parse(ok(op).stdout) as { identity: string; encrypted: boolean };
    assert.equal(o.encrypted, true);
    w.operatorId = o.identity;
    for (const name of ['a', 'b']) {
      const dir = join(w.dir, `holder-${name}`);
      const h = JSON.parse(ok(await runCli(['holder', 'init', '--data-dir', dir, '--primary', p.identity, '--operator', w.operatorId, '--json'])).stdout) as { fingerprint: string };
      const s = await startCli(['holder', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--json']);
      w.holders.push(s);
      w.specs.push(`${s.url}#${h.fingerprint}`);
    }
  });

  after(async () => {
    await Promise.all(w.holders.map((h) => (h.child.exitCode === null ? h.stop() : undefined)));
  });

  it('operator keygen --passphrase writes an armored age file (0600) that age -d opens; show asks for the passphrase and refuses a wrong one', async () => {
    const text = readFileSync(w.operatorKey, 'utf8');
    assert.match(text, /^-----BEGIN AGE ENCRYPTED FILE-----\n/);
    assert.ok(!text.includes('signing_seed'), 'no key in the clear');
    assert.equal(statSync(w.operatorKey).mode & 0o777, 0o600);
    const plain = JSON.parse(ageDecrypt(w.dir, [w.operatorKey], PASS)) as { type: string; role: string };
    assert.equal(plain.type, 'lifeboat-identity');
    assert.equal(plain.role, 'operator');
    const [shown, wrong, viaPrompt] = await Promise.all([
      runCli(['operator', 'show', '--key', w.operatorKey, '--passphrase-fd', '0', '--json'], { input: `${PASS}\n` }),
      runCli(['operator', 'show', '--key', w.operatorKey, '--json'], { input: 'not the passphrase\n' }),
      runCli(['operator', 'keygen', '--out', join(w.dir, 'op2.json'), '--passphrase'], { input: `${PASS}\n` }),
    ]);
    assert.equal((JSON.parse(ok(shown).stdout) as { identity: string }).identity, w.operatorId);
    failsWith(wrong, 'wrong_passphrase');
    ok(viaPrompt);
    assert.match(readFileSync(join(w.dir, 'op2.json'), 'utf8'), /^-----BEGIN AGE ENCRYPTED FILE-----/);
  });

  it('operator keygen refuses a short passphrase and both passphrase options, writing nothing', async () => {
    const [short, both] = await Promise.all([
      runCli(['operator', 'keygen', '--out', join(w.dir, 'short.json'), '--passphrase-fd', '0'], { input: 'short\n' }),
      runCli(['operator', 'keygen', '--out', join(w.dir, 'both.json'), '--passphrase', '--passphrase-fd', '0'], { input: `${PASS}\n` }),
    ]);
    failsWith(short, 'invalid_input');
    failsWith(both, 'usage', 2);
    assert.ok(!existsSync(join(w.dir, 'short.json')) && !existsSync(join(w.dir, 'both.json')));
  });

  it('recovery init refuses, before changing anything, clear outputs with --offline-recipient, a bad recipient, a count that does not match and an existing file', async () => {
    const base = ['recovery', 'init', '--data-dir', w.primary, '--holder', w.specs[0]!, '--holder', w.specs[1]!];
    const out = join(w.dir, 'never.age');
    const taken = join(w.dir, 'taken.age');
    writeFileSync(taken, 'keep me');
    const [withFd, withQr, bad, ssh, two, noOut, outOnly, exists] = await Promise.all([
      runCli([...base, '--offline-recipient', w.recipient, '--offline-out', out, '--secret-fd', '3']),
      runCli([...base, '--offline-recipient', w.recipient, '--offline-out', out, '--qr']),
      runCli([...base, '--offline-recipient', `${w.recipient.slice(0, -1)}q`, '--offline-out', out]),
      runCli([...base, '--offline-recipient', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN', '--offline-out', out]),
      runCli([...base, '--offline-recipient', w.recipient, '--offline-recipient', w.recipient, '--offline-out', out, '--offline-out', `${out}2`]),
      runCli([...base, '--offline-recipient', w.recipient]),
      runCli([...base, '--offline-out', out]),
      runCli([...base, '--offline-recipient', w.recipient, '--offline-out', taken]),
    ]);
    failsWith(withFd, 'usage', 2);
    assert.match(withFd.stderr, /--secret-fd would put them in the clear/);
    failsWith(withQr, 'usage', 2);
    failsWith(bad, 'age_recipient_invalid');
    failsWith(ssh, 'age_recipient_invalid');
    failsWith(two, 'invalid_input');
    assert.match(two.stderr, /--offline-recipient is given 2 times, but there is 1 offline share/);
    failsWith(noOut, 'invalid_input');
    failsWith(outOnly, 'usage', 2);
    failsWith(exists, 'file_exists');
    assert.equal(readFileSync(taken, 'utf8'), 'keep me');
    assert.ok(!existsSync(out) && !existsSync(join(w.primary, 'recovery-manifest.json')), 'nothing was made');
  });

  it('recovery init --offline-recipient writes the share for age only; its words verify, and with the encrypted operator key they rebuild the lost primary', async () => {
    const shareFile = join(w.dir, 'offline-share.age');
    const init = ok(await runCli(['recovery', 'init', '--data-dir', w.primary, '--holder', w.specs[0]!, '--holder', w.specs[1]!, '--offline-recipient', w.recipient, '--offline-out', shareFile, '--json']));
    const summary = JSON.parse(init.stdout) as { scheme_id: string; primary_fingerprint: string; offline_shares_to: { recipient: string; file: string }[] };
    assert.deepEqual(summary.offline_shares_to, [{ recipient: w.recipient, file: shareFile }]);
    const armored = readFileSync(shareFile, 'utf8');
    assert.match(armored, /^-----BEGIN AGE ENCRYPTED FILE-----\n[\s\S]*-----END AGE ENCRYPTED FILE-----\n$/);
    const words = ageDecrypt(w.dir, ['-i', w.ageKey, shareFile]).trim();
    assert.equal(words.split(' ').length, 33, 'a SLIP-0039 share of 33 words');
    assert.ok(!init.stdout.includes(words) && !init.stderr.includes(words.split(' ').slice(0, 6).join(' ')), 'the words are not shown');
    ok(await runCli(['recovery', 'verify', '--data-dir', w.primary, '--no-holders', '--offline-shares', '1'], { input: `${words}\n` }));

    const secret = 'kept across the disaster';
    ok(await runCli(['vault', 'put', 'k', '--data-dir', w.primary], { input: secret }));
    rmSync(w.primary, { recursive: true });
    const args = ['recovery', 'reconstruct', '--data-dir', w.primary, '--operator-key', w.operatorKey, '--holder', w.specs[0]!, '--typed-shares', '1', '--primary-fingerprint', summary.primary_fingerprint, '--json'];
    const wrong = await runCli(args, { input: `not the passphrase\n${words}\n` });
    failsWith(wrong, 'wrong_passphrase');
    assert.ok(!existsSync(join(w.primary, 'vault.lbv')), 'a wrong passphrase writes nothing');
    // the passphrase is the first stdin line, then the share
    ok(await runCli(args, { input: `${PASS}\n${words}\n` }));
    const got = ok(await runCli(['vault', 'get', 'k', '--stdout', '--data-dir', w.primary]));
    assert.equal(got.stdout, secret);
  });
});
