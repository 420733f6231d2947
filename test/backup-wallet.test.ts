/**
 * An Ethereum wallet as a backup account's secret, and a TOTP second factor (docs/backup.md, "Wallet
 * accounts", "Second factor"), against one real `lifeboat backup-server serve` on loopback shared by
 * the file: the CLI path (`account add --totp`, `node backup-setup --wallet`, `node restore --wallet
 * --totp`), the login messages the service refuses (another signer, a replay, an expired message,
 * another domain, chain or account), a randomised signer refused at set-up, wrong, reused and expired
 * codes, used recovery codes, the per-account code limit, and what the service's database holds.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as OTPAuth from 'otpauth';
import { createSiweMessage } from 'viem/siwe';
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts';
import { addBackupAccounts, type BackupServiceProc, serveBackupService } from '../src/drill/backup-scenarios.js';
import { type RunningServer, runCli, type RunResult } from '../src/drill/proc.js';
import { BackupClient } from '../src/backup/client.js';
import { loginWallet, registerWallet } from '../src/backup/client-wallet.js';
import { siweStatement, walletWrapKey, wrapMessage, localKeySigner } from '../src/backup/wallet.js';
import { randomBytes } from '../src/crypto/random.js';
import { newApiKey } from '../src/keynode/apikeys.js';
import { loadNodeConfig, nodePaths } from '../src/keynode/config.js';
import { initNode } from '../src/keynode/runtime.js';
import { toB64, toHex } from '../src/util/bytes.js';
import { ok, registerTokenInDir } from './helpers/keynode.js';
import { expectOk, REPO_ROOT, runCliAnswering } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';

interface Shared {
  root: string;
  service: BackupServiceProc;
  servers: RunningServer[];
  host: string;
  key: `0x${string}`;
  wallet: PrivateKeyAccount;
  keyFile: string;
  /** The TOTP secret (base32) and recovery codes `account add --totp` showed for acct-w. */
  totpSecret: string;
  recovery: string[];
}
let f: Shared;

const PASSWORD = 'a long backup passphrase for the wallet tests';
const errType = (r: RunResult) => (JSON.parse(r.stdout) as { err_type: string }).err_type;
const code = (err: unknown) => (err as { code?: string }).code;
const totpOf = (secret: string, at = Date.now()) => new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp: at });

/** `backup-server account add NAME --totp --secret-fd 3`: the invite, and the URI's secret and recovery codes from fd 3. */
async function addTotpAccount(name: string): Promise<{ invite: string; secret: string; recovery: string[] }> {
  const r = ok(await runCli(['backup-server', 'account', 'add', name, '--totp', '--secret-fd', '3', '--data-dir', f.service.dir, '--json'], { secretFd: true }), 'account add --totp');
  const j = JSON.parse(r.stdout) as { invite: string; totp: boolean };
  assert.equal(j.totp, true);
  const uri = /otpauth:\/\/totp\/\S+/.exec(r.secret)![0];
  const parsed = OTPAuth.URI.parse(uri) as OTPAuth.TOTP;
  assert.equal(parsed.algorithm, 'SHA1');
  assert.equal(parsed.digits, 6);
  assert.equal(parsed.period, 30);
  const recovery = r.secret.match(/\b[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}\b/g) ?? [];
  assert.equal(recovery.length, 10);
  assert.doesNotMatch(r.stdout + r.stderr, /otpauth|secret=/, 'the secret goes to fd 3 only');
  return { invite: j.invite, secret: parsed.secret.base32, recovery };
}

async function post(path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${f.service.url}/v1${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function nonce(account: string): Promise<string> {
  return (await post(`/accounts/${account}/wallet/nonce`, {})).json.nonce as string;
}

/** A login message as lifeboat writes it, with fields overridden. */
function loginMessage(account: string, n: string, address: `0x${string}`, over: Partial<Parameters<typeof createSiweMessage>[0]> = {}): string {
  const now = Date.now();
  return createSiweMessage({
    domain: f.host,
    uri: f.service.url,
    address,
    statement: siweStatement(account),
    version: '1',
    chainId: 1,
    nonce: n,
    issuedAt: new Date(now),
    expirationTime: new Date(now + 120_000),
    ...over,
  });
}

async function walletLogin(account: string, message: string, signer: PrivateKeyAccount, totp?: string) {
  return post(`/accounts/${account}/wallet/login`, { message, signature: await signer.signMessage({ message }), ...(totp ? { totp } : {}) });
}

before(async () => {
  const root = trackedTempDir('lifeboat-wallet-');
  const key = generatePrivateKey();
  const keyFile = join(root, 'wallet.key');
  writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
  f = { root, service: { dir: join(root, 'service'), url: '', server: undefined }, servers: [], host: '', key, wallet: privateKeyToAccount(key), keyFile, totpSecret: '', recovery: [] };
  await serveBackupService(f.servers, f.service);
  f.host = new URL(f.service.url).host;
});

after(async () => {
  await Promise.all(f.servers.map((s) => s.stop('SIGKILL')));
});

describe('wallet accounts with a second factor, through the CLI', { timeout: 240_000 }, () => {
  it('account add --totp without a terminal or --secret-fd is refused and creates nothing', async () => {
    const r = await runCli(['backup-server', 'account', 'add', 'acct-nofd', '--totp', '--data-dir', f.service.dir, '--json']);
    assert.equal(r.code, 1);
    assert.equal(errType(r), 'secret_needs_terminal');
    const list = JSON.parse(ok(await runCli(['backup-server', 'account', 'list', '--data-dir', f.service.dir, '--json'])).stdout) as { account: string }[];
    assert.ok(!list.some((a) => a.account === 'acct-nofd'));
  });

  it('done means: backup-setup --wallet, the node destroyed, restored with the wallet and a code; without the code it is refused', async () => {
    const { invite, secret, recovery } = await addTotpAccount('acct-w');
    f.totpSecret = secret;
    f.recovery = recovery;
    const dir = join(f.root, 'node-w');
    const init = await initNode(dir);
    const token = newApiKey('client', 'c').token;
    await registerTokenInDir(dir, token, 'client');
    const setup = ok(await runCli(['node', 'backup-setup', '--backup-server', f.service.url, '--account', 'acct-w', '--wallet-key-file', f.keyFile, '--data-dir', dir, '--json'], { input: `${invite}\n` }), 'backup-setup --wallet');
    assert.equal((JSON.parse(setup.stdout) as { account: string }).account, 'acct-w');
    ok(await runCli(['node', 'backup-now', '--data-dir', dir, '--json']), 'backup-now');
    const list = JSON.parse(ok(await runCli(['backup-server', 'account', 'list', '--data-dir', f.service.dir, '--json'])).stdout) as { account: string; secret: string; totp: boolean }[];
    const row = list.find((a) => a.account === 'acct-w')!;
    assert.deepEqual({ secret: row.secret, totp: row.totp }, { secret: 'wallet', totp: true });

    const fresh = join(f.root, 'node-w-restored');
    const args = ['node', 'restore', '--backup-server', f.service.url, '--account', 'acct-w', '--wallet-key-file', f.keyFile, '--data-dir', fresh, '--json'];
    const refused = await runCli(args);
    assert.equal(refused.code, 1);
    assert.equal(errType(refused), 'totp_required');
    assert.equal(existsSync(fresh), false, 'nothing written without the code');

    const restored = ok(await runCli([...args, '--totp'], { input: `${totpOf(secret)}\n` }), 'restore --wallet --totp');
    const r = JSON.parse(restored.stdout) as { fingerprint: string; api_keys: number };
    assert.equal(r.fingerprint, init.fingerprint, 'the same node identity');
    assert.ok(r.api_keys >= 1);
    assert.equal(loadNodeConfig(nodePaths(fresh)).backup?.account, 'acct-w', 'the restored node streams to the same account');
  });

  it('another wallet cannot restore, even with a valid code: refused before any code is counted', async () => {
    const other = join(f.root, 'other.key');
    writeFileSync(other, generatePrivateKey(), { mode: 0o600 });
    const r = await runCli(['node', 'restore', '--backup-server', f.service.url, '--account', 'acct-w', '--wallet-key-file', other, '--totp', '--data-dir', join(f.root, 'nope'), '--json'], { input: `${totpOf(f.totpSecret)}\n` });
    assert.equal(r.code, 1);
    assert.equal(errType(r), 'wallet_login_failed');
  });

  it('a wallet key file readable by others is refused', async () => {
    const loose = join(f.root, 'loose.key');
    writeFileSync(loose, f.key);
    chmodSync(loose, 0o644);
    const r = await runCli(['node', 'restore', '--backup-server', f.service.url, '--account', 'acct-w', '--wallet-key-file', loose, '--data-dir', join(f.root, 'nope2'), '--json']);
    assert.equal(errType(r), 'insecure_permissions');
  });

  it('paste mode: --wallet-address alone shows each message and takes its signature back on stdin; a signature by another wallet is refused', async () => {
    /** Runs a command whose wallet is pasted: each message shown between the ----- lines is signed once by `by`, typed back. */
    const run = async (args: string[], input: string, by: PrivateKeyAccount) => {
      const shown: string[] = [];
      const r = await runCliAnswering(args, input, async (stderr) => {
        const all = [...stderr.matchAll(/^-----\n([\s\S]*?)\n-----$/gm)].map((m) => m[1]!);
        if (all.length === shown.length) return undefined;
        shown.push(all[shown.length]!);
        return by.signMessage({ message: shown[shown.length - 1]! });
      });
      return { r, shown };
    };
    const [invite] = await addBackupAccounts(f.service, ['acct-paste']);
    const dir = join(f.root, 'node-paste');
    const init = await initNode(dir);
    const address = f.wallet.address;
    const setup = await run(['node', 'backup-setup', '--backup-server', f.service.url, '--account', 'acct-paste', '--wallet-address', address, '--data-dir', dir, '--json'], `${invite}\n`, f.wallet);
    expectOk(setup.r);
    const wrap = wrapMessage('acct-paste', f.host, address);
    assert.equal(setup.shown.length, 3, 'the wrap message twice (the determinism check), then a login message');
    assert.deepEqual(setup.shown.slice(0, 2), [wrap, wrap]);
    assert.match(setup.shown[2]!, new RegExp(`^${f.host.replace(/[.]/g, '\\.')} wants you to sign in with your Ethereum account:\n${address}\n`), 'a Sign-In with Ethereum message');
    const wrapSig = await f.wallet.signMessage({ message: wrap });
    assert.ok(!setup.r.stdout.includes(wrapSig.slice(2, 40)) && !setup.r.stderr.includes(wrapSig.slice(2, 40)), 'the pasted wrap signature is not echoed');
    ok(await runCli(['node', 'backup-now', '--data-dir', dir, '--json']), 'backup-now');

    const restoreArgs = (to: string) => ['node', 'restore', '--backup-server', f.service.url, '--account', 'acct-paste', '--wallet-address', address, '--data-dir', to, '--json'];
    const stranger = privateKeyToAccount(generatePrivateKey());
    const refused = await run(restoreArgs(join(f.root, 'node-paste-wrong')), '', stranger);
    assert.equal(refused.r.code, 1);
    assert.equal((JSON.parse(refused.r.stdout) as { err_type: string }).err_type, 'wallet_wrong_signer', 'a signature by another wallet is refused before anything is derived from it');
    assert.equal(refused.shown.length, 1, 'refused at the first message');
    assert.equal(existsSync(join(f.root, 'node-paste-wrong')), false, 'nothing written');

    const restored = await run(restoreArgs(join(f.root, 'node-paste-restored')), '', f.wallet);
    expectOk(restored.r);
    assert.equal(restored.shown.length, 2, 'a login message, then the wrap message');
    assert.equal(restored.shown[1], wrap, 'the same wrap message, so the same key');
    assert.equal((JSON.parse(restored.r.stdout) as { fingerprint: string }).fingerprint, init.fingerprint);
  });

  it('a randomised signer is refused at set-up with the reason, and nothing is registered', async () => {
    const [invite] = await addBackupAccounts(f.service, ['acct-rand']);
    const script = join(f.root, 'random-signer.mjs');
    const nm = (p: string) => `file://${join(REPO_ROOT, 'node_modules', p)}`;
    writeFileSync(
      script,
      `import { secp256k1 } from '${nm('@noble/curves/secp256k1.js')}';
import { keccak_256 } from '${nm('@noble/hashes/sha3.js')}';
const chunks = []; for await (const c of process.stdin) chunks.push(c);
const msg = Buffer.concat(chunks);
const h = keccak_256(Buffer.concat([Buffer.from('\\x19Ethereum Signed Message:\\n' + msg.length), msg]));
const s = secp256k1.sign(h, Buffer.from('${f.key.slice(2)}', 'hex'), { prehash: false, extraEntropy: true, format: 'recovered' });
process.stdout.write('0x' + Buffer.from(s.subarray(1)).toString('hex') + (27 + s[0]).toString(16) + '\\n');
`,
    );
    const dir = join(f.root, 'node-rand');
    await initNode(dir);
    const cmd = `${process.execPath} ${script}`;
    const r = await runCli(['node', 'backup-setup', '--backup-server', f.service.url, '--account', 'acct-rand', '--wallet-address', f.wallet.address, '--wallet-sign-command', cmd, '--data-dir', dir, '--json'], { input: `${invite}\n` });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(errType(r), 'wallet_not_deterministic');
    assert.match(r.stderr, /two different signatures/);
    assert.equal(loadNodeConfig(nodePaths(dir)).backup ?? null, null, 'node.json unchanged');
    const list = JSON.parse(ok(await runCli(['backup-server', 'account', 'list', '--data-dir', f.service.dir, '--json'])).stdout) as { account: string; state: string }[];
    assert.equal(list.find((a) => a.account === 'acct-rand')?.state, 'invited', 'the invite is still good');

    // A command that signs (deterministically) with another wallet than --wallet-address: refused
    // before anything is derived; a command that fails is named.
    const other = script.replace('.mjs', '-other.mjs');
    writeFileSync(other, readFileSync(script, 'utf8').replace(f.key.slice(2), generatePrivateKey().slice(2)).replace(', extraEntropy: true', ''));
    const setup = (command: string) =>
      runCli(['node', 'backup-setup', '--backup-server', f.service.url, '--account', 'acct-rand', '--wallet-address', f.wallet.address, '--wallet-sign-command', command, '--data-dir', dir, '--json'], { input: `${invite}\n` });
    assert.equal(errType(await setup(`${process.execPath} ${other}`)), 'wallet_wrong_signer');
    assert.equal(errType(await setup('exit 3')), 'wallet_sign_failed');
  });
});

describe('login messages the service refuses', { timeout: 120_000 }, () => {
  const account = 'acct-siwe';
  before(async () => {
    const [invite] = await addBackupAccounts(f.service, [account]);
    await registerWallet(new BackupClient({ url: f.service.url }), account, invite!, await localKeySigner(f.key), randomBytes(32));
  });

  it('the account’s own message logs in once; the same message again is a replay', async () => {
    const m = loginMessage(account, await nonce(account), f.wallet.address);
    const first = await walletLogin(account, m, f.wallet);
    assert.equal(first.status, 200, JSON.stringify(first.json));
    assert.match(first.json.login_token as string, /^lbt_/);
    const again = await walletLogin(account, m, f.wallet);
    assert.deepEqual([again.status, again.json.err_type], [401, 'siwe_nonce_invalid']);
  });

  it('a signature by another address than the message names; a message of another wallet', async () => {
    const other = privateKeyToAccount(generatePrivateKey());
    const forged = await walletLogin(account, loginMessage(account, await nonce(account), f.wallet.address), other);
    assert.deepEqual([forged.status, forged.json.err_type], [401, 'siwe_signature_invalid']);
    const otherWallet = await walletLogin(account, loginMessage(account, await nonce(account), other.address), other);
    assert.deepEqual([otherWallet.status, otherWallet.json.err_type], [401, 'wallet_login_failed']);
    const unknown = await walletLogin('acct-none', loginMessage('acct-none', await nonce('acct-none'), other.address), other);
    assert.deepEqual([unknown.status, unknown.json.err_type], [401, 'wallet_login_failed'], 'an unknown account answers alike');
  });

  it('expired, another domain, another chain, another account, a nonce of another account, a non-canonical message', async () => {
    const a = f.wallet.address;
    const past = Date.now() - 600_000;
    const cases: [string, () => Promise<string>, string][] = [
      ['expired', async () => loginMessage(account, await nonce(account), a, { issuedAt: new Date(past), expirationTime: new Date(past + 60_000) }), 'siwe_expired'],
      ['another domain', async () => loginMessage(account, await nonce(account), a, { domain: 'evil.example', uri: 'https://evil.example' }), 'siwe_domain_mismatch'],
      ['uri on another host', async () => loginMessage(account, await nonce(account), a, { uri: 'https://evil.example/login' }), 'siwe_domain_mismatch'],
      ['another chain', async () => loginMessage(account, await nonce(account), a, { chainId: 5 }), 'siwe_chain_mismatch'],
      ['another account', async () => loginMessage(account, await nonce(account), a, { statement: siweStatement('acct-w') }), 'siwe_account_mismatch'],
      ['nonce of another account', async () => loginMessage(account, await nonce('acct-w'), a), 'siwe_nonce_invalid'],
      ['valid too long', async () => loginMessage(account, await nonce(account), a, { expirationTime: new Date(Date.now() + 3600_000) }), 'siwe_malformed'],
      ['non-canonical', async () => `${loginMessage(account, await nonce(account), a)}\nResources:\n- https://x.example`, 'siwe_malformed'],
      ['unknown nonce', async () => loginMessage(account, 'ab'.repeat(16), a), 'siwe_nonce_invalid'],
    ];
    for (const [what, make, expected] of cases) {
      const r = await walletLogin(account, await make(), f.wallet);
      assert.equal(r.json.err_type, expected, what);
    }
  });

  it('a wallet account has no password login: it answers like a wrong password', async () => {
    const r = await runCli(['node', 'restore', '--backup-server', f.service.url, '--account', account, '--data-dir', join(f.root, 'pw'), '--json'], { input: 'some password\n' });
    assert.equal(errType(r), 'login_failed');
  });
});

describe('second factor codes', { timeout: 120_000 }, () => {
  it('wrong, expired and reused codes are refused; a recovery code works once', async () => {
    const { invite, secret, recovery } = await addTotpAccount('acct-codes');
    const client = new BackupClient({ url: f.service.url });
    const signer = await localKeySigner(f.key);
    const backupKey = randomBytes(32);
    await registerWallet(client, 'acct-codes', invite, signer, backupKey);
    const login = (totp?: string) => loginWallet(client, 'acct-codes', signer, { totp });
    await assert.rejects(login(), (e) => code(e) === 'totp_required');
    const now = totpOf(secret);
    const wrong = String((Number(now) + 1) % 1_000_000).padStart(6, '0');
    await assert.rejects(login(wrong), (e) => code(e) === 'totp_invalid', 'wrong');
    await assert.rejects(login(totpOf(secret, Date.now() - 90_000)), (e) => code(e) === 'totp_invalid', 'two steps old');
    const r = await login(now);
    assert.deepEqual(r.backupKey, backupKey, 'the wallet’s signature unwraps the backup key');
    await assert.rejects(login(now), (e) => code(e) === 'totp_reused', 'reused');
    const r2 = await login(recovery[3]!);
    assert.deepEqual(r2.backupKey, backupKey);
    await assert.rejects(login(recovery[3]!), (e) => code(e) === 'recovery_code_used');
    await assert.rejects(login('aaaa-bbbb-cccc-dddd'), (e) => code(e) === 'totp_invalid');
  });

  it('backup totp enable on a password account: the owner enrols, and the password alone no longer fetches the wrapped key', async () => {
    const [invite] = await addBackupAccounts(f.service, ['acct-pw']);
    const client = new BackupClient({ url: f.service.url });
    const backupKey = randomBytes(32);
    await client.register('acct-pw', invite!, PASSWORD, backupKey);
    const r = ok(await runCli(['backup', 'totp', 'enable', '--backup-server', f.service.url, '--account', 'acct-pw', '--secret-fd', '3', '--json'], { input: `${PASSWORD}\n`, secretFd: true }), 'backup totp enable');
    assert.equal((JSON.parse(r.stdout) as { totp: boolean }).totp, true);
    const secret = (OTPAuth.URI.parse(/otpauth:\/\/totp\/\S+/.exec(r.secret)![0]) as OTPAuth.TOTP).secret.base32;
    await assert.rejects(client.login('acct-pw', PASSWORD), (e) => code(e) === 'totp_required');
    const now = totpOf(secret);
    await assert.rejects(client.login('acct-pw', 'not the password', { totp: now }), (e) => code(e) === 'login_failed', 'the password is checked first');
    // Three password logins a minute per address and account: the rest go through the restore token's lane.
    await client.session('acct-pw', backupKey);
    const restoreToken = await client.createRestoreToken();
    assert.deepEqual((await client.login('acct-pw', PASSWORD, { restoreToken, totp: now })).backupKey, backupKey);
    await assert.rejects(client.login('acct-pw', PASSWORD, { restoreToken, totp: now }), (e) => code(e) === 'totp_reused');
  });

  it('codes are limited per account: the 11th check in a minute is rate_limited', async () => {
    const { invite } = await addTotpAccount('acct-limit');
    const client = new BackupClient({ url: f.service.url });
    const signer = await localKeySigner(f.key);
    await registerWallet(client, 'acct-limit', invite, signer, randomBytes(32));
    for (let i = 0; i < 10; i++) await assert.rejects(loginWallet(client, 'acct-limit', signer, { totp: 'aaaa-bbbb-cccc-dddd' }), (e) => code(e) === 'totp_invalid');
    await assert.rejects(loginWallet(client, 'acct-limit', signer, { totp: '123456' }), (e) => code(e) === 'rate_limited');
  });

  it('the database holds nothing from which the wrapping key can be made: no signature, no derived key, no totp secret', async () => {
    const message = wrapMessage('acct-w', f.host, f.wallet.address);
    const signature = await f.wallet.signMessage({ message });
    const wrapKey = walletWrapKey(signature, 'acct-w', f.host, f.wallet.address);
    const secret = Buffer.from(OTPAuth.Secret.fromBase32(f.totpSecret).bytes);
    const files = ['backup.sqlite', 'backup.sqlite-wal'].map((n) => join(f.service.dir, n)).filter(existsSync);
    const db = Buffer.concat(files.map((p) => readFileSync(p)));
    assert.ok(db.includes(Buffer.from('LBTS')), 'the sealed totp record is there (the search is not vacuous)');
    assert.ok(db.includes(Buffer.from(f.wallet.address.slice(2).toLowerCase(), 'hex')), 'the address is there');
    const sigBytes = Buffer.from(signature.slice(2), 'hex');
    const needles: [string, Buffer][] = [
      ['signature r', sigBytes.subarray(0, 32)],
      ['signature s', sigBytes.subarray(32, 64)],
      ['signature hex', Buffer.from(signature.slice(2))],
      ['wrap key', Buffer.from(wrapKey)],
      ['wrap key hex', Buffer.from(toHex(wrapKey))],
      ['wrap key b64', Buffer.from(toB64(wrapKey))],
      ['totp secret', secret],
      ['totp secret base32', Buffer.from(f.totpSecret)],
      ['totp secret hex', Buffer.from(secret.toString('hex'))],
      ...f.recovery.map((c, i): [string, Buffer] => [`recovery code ${i}`, Buffer.from(c)]),
    ];
    for (const [what, needle] of needles) assert.equal(db.includes(needle), false, what);
  });
});
