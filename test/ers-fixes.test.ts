/**
 * `lifeboat ers` fixes from black-box findings: keygen never overwrites a key (file_exists), takes
 * --passphrase-fd and encrypts under scrypt (openssl opens it); output files that cannot be written
 * are typed errors; --decrypt-cmd failures; recover --group-key; --reshare-to refuses duplicate
 * nodes and checks every node before dealing (a deal failing midway: ers-orphans.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { secp256k1_FROST } from '@noble/curves/secp256k1.js';
import type { FROST } from '@noble/curves/abstract/frost.js';
import { type CliResult, REPO_ROOT, runCli, cliArgs, tracked } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';
import { startNodeProcesses, type NodeProcess } from './helpers/keynode.js';
import { KeyNodeClient } from '../src/keynode/client.js';
import { encodeFrostPublic, frostGroupPublicKey } from '../src/keynode/frost/index.js';
import { encodePackage } from '../src/ers/format.js';
import { provePart } from '../src/ers/proof.js';
import { parseErsPublicKey } from '../src/ers/rsa.js';

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`exited ${r.code}: ${r.stderr.trim()}`);
  return r;
}
const errOf = (r: CliResult): { err_type: string; message: string; hint?: string } => JSON.parse(r.stdout) as { err_type: string; message: string; hint?: string };

/** Runs the CLI with `file` opened as its fd 3 (read-only unless `flags` says otherwise). */
function runWithFd3(args: string[], file: string, flags = 'r'): Promise<CliResult> {
  const fd = openSync(file, flags, 0o644);
  const child = tracked(spawn(process.execPath, [...cliArgs(), ...args], { cwd: REPO_ROOT, env: { ...process.env, LIFEBOAT_DEBUG: '' }, stdio: ['pipe', 'pipe', 'pipe', fd] }));
  closeSync(fd);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin!.end();
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

/** A 2-of-3 secp256k1 package of parts 2 and 3 encrypted to `pubPath`'s key; returns its path and group key. */
function makePackage(dir: string, pubPath: string): { pkg: string; groupKey: string; secretHex: string } {
  const rsa = parseErsPublicKey(readFileSync(pubPath));
  const frost = secp256k1_FROST as FROST;
  const d = frost.trustedDealer({ min: 2, max: 3 });
  const ids = Object.keys(d.secretShares).sort();
  const pub = { signers: { min: 2, max: 3 }, commitments: d.public.commitments, verifyingShares: d.public.verifyingShares };
  const parts = ids.slice(1).map((id) => provePart({ curve: 'secp256k1', label: 'fixes', groupKey: pub.commitments[0]!, identifier: id, share: d.secretShares[id]!.signingShare, verifyingShare: pub.verifyingShares[id]!, rsa }));
  const pkg = join(dir, 'key.ers');
  writeFileSync(pkg, encodePackage({ curve: 'secp256k1', label: 'fixes', spki: rsa.spki, publicPackage: encodeFrostPublic('secp256k1', pub), parts }));
  const secret = frost.combineSecret(ids.slice(0, 2).map((id) => d.secretShares[id]!), { min: 2, max: 3 });
  return { pkg, groupKey: Buffer.from(frostGroupPublicKey('secp256k1', pub)).toString('hex'), secretHex: Buffer.from(secret).toString('hex') };
}

it('ers keygen refuses to overwrite either output file (file_exists), also with --import-public', async () => {
  const dir = trackedTempDir('lifeboat-ers-fixes-');
  const key = join(dir, 'ers');
  ok(await runCli(['ers', 'keygen', '--out', key]));
  const before = readFileSync(`${key}.key`, 'utf8');
  const again = await runCli(['ers', 'keygen', '--out', key, '--json']);
  assert.equal(again.code, 1);
  assert.equal(errOf(again).err_type, 'file_exists');
  assert.match(errOf(again).hint ?? '', /--out/);
  assert.equal(readFileSync(`${key}.key`, 'utf8'), before, 'the old private key is untouched');
  // only the .pub exists at the prefix: still refused, and no .key is made beside it
  const other = join(dir, 'other');
  writeFileSync(`${other}.pub`, 'keep me');
  assert.equal(errOf(await runCli(['ers', 'keygen', '--out', other, '--json'])).err_type, 'file_exists');
  assert.throws(() => readFileSync(`${other}.key`), /ENOENT/);
  const imp = await runCli(['ers', 'keygen', '--out', other, '--import-public', `${key}.pub`, '--json']);
  assert.equal(errOf(imp).err_type, 'file_exists');
  assert.equal(readFileSync(`${other}.pub`, 'utf8'), 'keep me');
});

/** Runs `lifeboat ers keygen --passphrase` on a pseudo-terminal (util-linux `script`), typing `answers` as each prompt appears. */
async function keygenOnTerminal(out: string, answers: [RegExp, string][]): Promise<{ code: number | null; text: string; answered: number }> {
  const cmd = `stty cols 200 rows 50; exec ${JSON.stringify(process.execPath)} --import tsx src/cli/main.ts ers keygen --out ${JSON.stringify(out)} --passphrase --json`;
  const child = tracked(spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: REPO_ROOT, env: { ...process.env, LIFEBOAT_DEBUG: '' }, stdio: ['pipe', 'pipe', 'pipe'] }));
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  let answered = 0;
  let done = false;
  void exited.then(() => (done = true));
  for (const [prompt, answer] of answers) {
    // wait for the prompt (or the exit: a command that asks fewer times exits without it)
    while (!prompt.test(text) && !done) await new Promise((r) => setTimeout(r, 50));
    if (!prompt.test(text)) break;
    child.stdin!.write(`${answer}\r`);
    answered++;
    text = text.replace(prompt, '');
  }
  child.stdin!.end();
  return { code: await exited, text, answered };
}

it('ers keygen --passphrase on a terminal asks twice: different answers are passphrase_mismatch and nothing is written', async () => {
  const dir = trackedTempDir('lifeboat-ers-fixes-');
  const mismatch = await keygenOnTerminal(join(dir, 'a'), [[/passphrase for the ERS private key/, 'correct horse 1'], [/the same passphrase again/, 'correct horse 2']]);
  assert.equal(mismatch.answered, 2, `asked twice: ${mismatch.text}`);
  assert.equal(mismatch.code, 1);
  assert.match(mismatch.text, /"err_type": "passphrase_mismatch"/);
  assert.throws(() => readFileSync(join(dir, 'a.key')), /ENOENT/);
  const same = await keygenOnTerminal(join(dir, 'b'), [[/passphrase for the ERS private key/, 'correct horse 1'], [/the same passphrase again/, 'correct horse 1']]);
  assert.equal(same.code, 0, same.text);
  assert.match(readFileSync(join(dir, 'b.key'), 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);
});

it('ers keygen --passphrase-fd encrypts under scrypt; openssl opens the key and recover takes it with --passphrase-fd', async () => {
  const dir = trackedTempDir('lifeboat-ers-fixes-');
  const key = join(dir, 'ers');
  const passFile = join(dir, 'pass.txt');
  writeFileSync(passFile, 'correct horse battery staple\n', { mode: 0o600 });
  const kg = ok(await runWithFd3(['ers', 'keygen', '--out', key, '--passphrase-fd', '3', '--json'], passFile));
  assert.equal((JSON.parse(kg.stdout) as { encrypted: boolean }).encrypted, true);
  const asn1 = spawnSync('openssl', ['asn1parse', '-in', `${key}.key`], { encoding: 'utf8' });
  assert.match(asn1.stdout, /:PBES2/);
  assert.match(asn1.stdout, /:scrypt/);
  assert.doesNotMatch(asn1.stdout, /PBKDF2/);
  const opened = spawnSync('openssl', ['pkey', '-in', `${key}.key`, '-passin', `file:${passFile}`, '-noout'], { encoding: 'utf8' });
  assert.equal(opened.status, 0, opened.stderr);
  const wrongFile = join(dir, 'wrong.txt');
  writeFileSync(wrongFile, 'not the passphrase\n');
  assert.notEqual(spawnSync('openssl', ['pkey', '-in', `${key}.key`, '-passin', `file:${wrongFile}`, '-noout']).status, 0);
  const { pkg, secretHex } = makePackage(dir, `${key}.pub`);
  const out = join(dir, 'key.json');
  ok(await runWithFd3(['ers', 'recover', pkg, '--ers-private', `${key}.key`, '--passphrase-fd', '3', '--out', out, '--json'], passFile));
  assert.equal((JSON.parse(readFileSync(out, 'utf8')) as { secret_key_hex: string }).secret_key_hex, secretHex);
});

describe('ers recover', () => {
  let dir = '';
  let key = '';
  let pkg = '';
  let groupKey = '';
  let secretHex = '';
  before(async () => {
    dir = trackedTempDir('lifeboat-ers-fixes-');
    key = join(dir, 'ers');
    ok(await runCli(['ers', 'keygen', '--out', key]));
    ({ pkg, groupKey, secretHex } = makePackage(dir, `${key}.pub`));
  });
  const recover = (args: string[], input?: string) => runCli(['ers', 'recover', pkg, ...args, '--json'], { input });

  it('--decrypt-cmd that fails or prints the wrong length is decryption_failed; its stderr reaches ours', async () => {
    // a command that exits non-zero without reading its stdin
    const failing = await recover(['--decrypt-cmd', 'echo hsm-says-no >&2; exit 1', '--out', join(dir, 'a')]);
    assert.equal(errOf(failing).err_type, 'decryption_failed');
    assert.match(failing.stderr, /hsm-says-no/);
    const short = await recover(['--decrypt-cmd', 'cat >/dev/null; printf 0123456789', '--out', join(dir, 'b')]);
    assert.equal(errOf(short).err_type, 'decryption_failed');
  });

  it('an --out in a missing directory or onto a directory, a --secret-fd not open: output_unwritable', async () => {
    const missing = await recover(['--ers-private', `${key}.key`, '--out', join(dir, 'no', 'such', 'key.json')]);
    assert.equal(errOf(missing).err_type, 'output_unwritable');
    assert.match(errOf(missing).message, /no\/such/);
    assert.equal(errOf(await recover(['--ers-private', `${key}.key`, '--out', dir])).err_type, 'output_unwritable');
    assert.equal(errOf(await recover(['--ers-private', `${key}.key`, '--secret-fd', '9'])).err_type, 'output_unwritable');
    const kg = await runCli(['ers', 'keygen', '--out', join(dir, 'no', 'such', 'ers'), '--json']);
    assert.equal(errOf(kg).err_type, 'output_unwritable');
  });

  it('a --secret-fd file others could read (the shell\'s 3>key.txt under umask 022) is set to 0600 before the key goes in', async () => {
    const file = join(dir, 'fd3-key.txt');
    const r = await runWithFd3(['ers', 'recover', pkg, '--ers-private', `${key}.key`, '--secret-fd', '3'], file, 'w');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(r.stderr, /--secret-fd 3 is a file others could read \(mode 0644\); set it to 0600/);
    assert.match(readFileSync(file, 'utf8'), new RegExp(`secret_key_hex: ${secretHex}`));
  });

  it('to a pipe: refused with --out in the hint; --group-key pins the key; an encrypted key without a passphrase is passphrase_required', async () => {
    const piped = await recover(['--ers-private', `${key}.key`]);
    assert.equal(errOf(piped).err_type, 'secret_needs_terminal');
    assert.match(errOf(piped).hint ?? '', /--out FILE/);
    assert.doesNotMatch(piped.stdout + piped.stderr, new RegExp(secretHex));
    // another group key is refused for safety before anything is decrypted; the right one recovers
    const wrong = await recover(['--ers-private', `${key}.key`, '--group-key', `02${'11'.repeat(32)}`, '--out', join(dir, 'c')]);
    assert.equal(wrong.code, 3);
    assert.equal(errOf(wrong).err_type, 'ers_group_key_mismatch');
    const wrongSign = await runCli(['ers', 'sign', pkg, '--ers-private', `${key}.key`, '--group-key', `02${'11'.repeat(32)}`, '--message-text', 'x', '--json']);
    assert.equal(errOf(wrongSign).err_type, 'ers_group_key_mismatch');
    ok(await recover(['--ers-private', `${key}.key`, '--group-key', groupKey, '--out', join(dir, 'd')]));
    assert.equal((JSON.parse(readFileSync(join(dir, 'd'), 'utf8')) as { secret_key_hex: string }).secret_key_hex, secretHex);
    const sub = join(dir, 'enc');
    mkdirSync(sub);
    ok(await runCli(['ers', 'keygen', '--out', join(sub, 'ers'), '--passphrase'], { input: 'correct horse battery staple\n' }));
    const { pkg: pkg2 } = makePackage(sub, join(sub, 'ers.pub'));
    const noPass = await runCli(['ers', 'recover', pkg2, '--ers-private', join(sub, 'ers.key'), '--out', join(dir, 'e'), '--json']);
    assert.equal(errOf(noPass).err_type, 'passphrase_required');
  });
});

it('ers keygen --import-public: errors name --import-public; a non-RSA key is "an ed25519 key"; invalid_pem hints at a public key', async () => {
  const dir = trackedTempDir('lifeboat-ers-fixes-');
  const ed = join(dir, 'ed.pem');
  const gen = spawnSync('openssl', ['genpkey', '-algorithm', 'ed25519'], { encoding: 'utf8' });
  writeFileSync(ed, spawnSync('openssl', ['pkey', '-pubout'], { input: gen.stdout, encoding: 'utf8' }).stdout);
  const r = await runCli(['ers', 'keygen', '--out', join(dir, 'x'), '--import-public', ed, '--json']);
  assert.equal(errOf(r).err_type, 'invalid_rsa_key');
  assert.match(errOf(r).message, /^--import-public .* is an ed25519 key, not RSA/);
  writeFileSync(join(dir, 'bad.pem'), '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n');
  const bad = await runCli(['ers', 'keygen', '--out', join(dir, 'y'), '--import-public', join(dir, 'bad.pem'), '--json']);
  assert.equal(errOf(bad).err_type, 'invalid_pem');
  assert.doesNotMatch(errOf(bad).hint ?? '', /PRIVATE KEY/);
  assert.match(errOf(bad).hint ?? '', /BEGIN PUBLIC KEY/);
});

/** A loopback HTTP proxy to a real key node (a second URL for the same node). */
async function proxyTo(target: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const h of ['authorization', 'content-type']) if (typeof req.headers[h] === 'string') headers[h] = req.headers[h];
      fetch(target + req.url, { method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined })
        .then(async (r) => res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' }).end(Buffer.from(await r.arrayBuffer())))
        .catch(() => res.writeHead(502).end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('ers recover --reshare-to (real key node processes)', () => {
  let nodes: NodeProcess[] = [];
  const proxies: Server[] = [];
  let operatorToken = '';
  let clientToken = '';
  let dir = '';
  let pkg = '';
  let key = '';
  before(async () => {
    dir = trackedTempDir('lifeboat-ers-fixes-');
    key = join(dir, 'ers');
    ok(await runCli(['ers', 'keygen', '--out', key]));
    ({ pkg } = makePackage(dir, `${key}.pub`));
    ({ nodes, operatorToken, clientToken } = await startNodeProcesses(dir, 3));
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.server.stop()));
    for (const p of proxies) p.close();
  });
  const keysOn = async (url: string) => (await new KeyNodeClient({ url, apiKey: operatorToken }).keys()).keys.length;
  const reshare = (urls: string[], extra: string[] = [], token = operatorToken) =>
    runCli(['ers', 'recover', pkg, '--ers-private', `${key}.key`, '--reshare-to', urls.join(','), ...extra, '--json'], { env: { LIFEBOAT_API_KEY: token }, timeoutMs: 120_000 });

  it('refuses the same node twice, by URL or by identity, and fewer than 2 nodes, before dealing anything', async () => {
    const byUrl = await reshare([nodes[0]!.url, `${nodes[0]!.url}/`]);
    assert.equal(errOf(byUrl).err_type, 'duplicate_nodes');
    const alias = await proxyTo(nodes[1]!.url);
    proxies.push(alias.server);
    const byIdentity = await reshare([nodes[0]!.url, nodes[1]!.url, alias.url]);
    assert.equal(errOf(byIdentity).err_type, 'duplicate_nodes');
    assert.match(errOf(byIdentity).message, /same key node/);
    const one = await reshare([nodes[0]!.url]);
    assert.equal(errOf(one).err_type, 'usage');
    assert.match(errOf(one).message, /at least 2 key nodes/);
    for (const n of nodes) assert.equal(await keysOn(n.url), 0, `${n.url} took no share`);
  });

  it('checks every node (reachable, operator key) before dealing: no share lands anywhere', async () => {
    const down = await reshare([nodes[0]!.url, nodes[1]!.url, 'http://127.0.0.1:1']);
    assert.equal(errOf(down).err_type, 'peer_unreachable');
    const client = await reshare(nodes.map((n) => n.url), [], clientToken);
    assert.notEqual(client.code, 0);
    for (const n of nodes) assert.equal(await keysOn(n.url), 0, `${n.url} took no share`);
  });
});
