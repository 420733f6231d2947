/**
 * The share sheet and the QR code, with real peers: two `holder serve` on loopback, the CLI as a child
 * for every step, zbarimg (zbar-tools) as the independent QR reader. `recovery init` writes the sheet
 * and a PNG to descriptors it is given; zbarimg reads the PNG, `recovery verify` accepts what it read;
 * the sheet's inline SVG holds the same modules. `recovery rotate --qr` on a pseudo-terminal draws a
 * code zbarimg reads too. On the worst day, an air-gapped holder's release and the PNG rebuild the vault
 * (`reconstruct --share-qr`), following the sheet's own steps. Bad images and bad descriptors are typed
 * errors that change nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type StdioOptions } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pngjs from 'pngjs';
import QRCode from 'qrcode';
import { cliArgs, REPO_ROOT, runCli, type RunningCli, startCli, tracked } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';
import { QUIET_ZONE, type QrMatrix, qrToPng, shareQrMatrix } from '../src/recovery/qr-code.js';
import { decodeShareQr } from '../src/recovery/qr.js';
import { escapeHtml, renderRecoverySheet } from '../src/recovery/sheet.js';
import { readManifestFile } from '../src/recovery/sources.js';
import { isLifeboatError } from '../src/errors.js';
import { generateMnemonics } from '../src/crypto/slip39.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** What the command wrote to descriptors 3, 4, … (when opened as pipes). */
  fds: Buffer[];
}

/** Runs the CLI with `extra` descriptors from 3 up: 'pipe' (collected in `fds`) or an fd of ours. */
function run(args: string[], opts: { input?: string; extra?: ('pipe' | number)[] } = {}): Promise<Run> {
  const extra = opts.extra ?? [];
  const stdio: StdioOptions = ['pipe', 'pipe', 'pipe', ...extra];
  const child = tracked(spawn(process.execPath, [...cliArgs(), ...args], { cwd: REPO_ROOT, env: { ...process.env, LIFEBOAT_DEBUG: '' }, stdio }));
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const fds = extra.map(() => [] as Buffer[]);
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => err.push(d));
  extra.forEach((e, i) => {
    if (e === 'pipe') (child.stdio[3 + i] as NodeJS.ReadableStream).on('data', (d: Buffer) => fds[i]!.push(d));
  });
  child.stdin!.end(opts.input ?? '');
  return new Promise((resolve) => {
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), fds: fds.map((f) => Buffer.concat(f)) }));
  });
}

function ok(r: Run): Run {
  assert.equal(r.code, 0, `expected success, got ${r.code}: ${r.stderr}`);
  return r;
}

function failsWith(r: Run, errType: string, exitCode = 1): void {
  assert.equal(r.code, exitCode, `expected exit ${exitCode}, got ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`lifeboat: error: .* \\(${errType}\\)\\n`));
}

/** zbarimg, the peer: the text of the one QR code it finds in a PNG file. */
function zbar(pngFile: string): string {
  const r = spawnSync('zbarimg', ['-q', '--raw', pngFile], { encoding: 'utf8' });
  assert.equal(r.status, 0, `zbarimg found no code in ${pngFile}: ${r.stderr}`);
  return r.stdout.replace(/\n$/, '');
}

/** The module matrix of a PNG the CLI wrote: 8 pixels per module, the quiet zone around it. */
function pngModules(png: Uint8Array): QrMatrix {
  const img = pngjs.PNG.sync.read(Buffer.from(png));
  const size = img.width / 8 - 2 * QUIET_ZONE;
  assert.ok(Number.isInteger(size) && img.width === img.height, `unexpected png size ${img.width}x${img.height}`);
  const dark = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) dark[y * size + x] = img.data[((y + QUIET_ZONE) * 8 + 4) * img.width * 4 + ((x + QUIET_ZONE) * 8 + 4) * 4]! < 128 ? 1 : 0;
  return { size, dark };
}

/** The module matrix of the sheet's inline SVG: its viewBox and the runs `M{x} {y}h{n}v1h-{n}z` of its path. */
function svgModules(html: string): QrMatrix {
  const svgs = html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
  assert.equal(svgs.length, 1, 'one inline svg');
  const total = Number(/viewBox="0 0 (\d+) \1"/.exec(svgs[0]!)![1]);
  const size = total - 2 * QUIET_ZONE;
  const dark = new Uint8Array(size * size);
  const d = /<path fill="#000" d="([^"]*)"/.exec(svgs[0]!)![1]!;
  assert.match(d, /^(?:M\d+ \d+h\d+v1h-\d+z)+$/);
  for (const [, xs, ys, ns] of d.matchAll(/M(\d+) (\d+)h(\d+)v1h-\d+z/g)) {
    for (let i = 0; i < Number(ns); i++) dark[(Number(ys) - QUIET_ZONE) * size + Number(xs) - QUIET_ZONE + i] = 1;
  }
  return { size, dark };
}

/** The module matrix drawn on a terminal: half blocks between the colour codes, two rows a line. */
function terminalModules(text: string): QrMatrix {
  // eslint-disable-next-line no-control-regex
  const lines = [...text.matchAll(/\x1b\[30;47m([^\x1b]*)\x1b\[0m/g)].map((m) => [...m[1]!]);
  assert.ok(lines.length > 0, 'no qr code on the terminal');
  const total = lines[0]!.length;
  const size = total - 2 * QUIET_ZONE;
  const dark = new Uint8Array(size * size);
  lines.forEach((chars, row) => {
    chars.forEach((c, x) => {
      for (const [dy, on] of [[0, c === '█' || c === '▀'], [1, c === '█' || c === '▄']] as const) {
        const y = row * 2 + dy - QUIET_ZONE;
        if (on && y >= 0 && y < size && x >= QUIET_ZONE && x < size + QUIET_ZONE) dark[y * size + x - QUIET_ZONE] = 1;
      }
    });
  });
  return { size, dark };
}

interface World {
  dir: string;
  primary: string;
  primaryFp: string;
  operatorKey: string;
  holderDirs: string[];
  holders: RunningCli[];
  specs: string[];
  words: string;
  png: string;
  sheet: string;
  rotatedWords: string;
  rotatedPng: string;
  secret: string;
  outputs: string[];
}

const w: World = { dir: '', primary: '', primaryFp: '', operatorKey: '', holderDirs: [], holders: [], specs: [], words: '', png: '', sheet: '', rotatedWords: '', rotatedPng: '', secret: '', outputs: [] };

async function cli(args: string[], opts: { input?: string; extra?: ('pipe' | number)[] } = {}): Promise<Run> {
  const r = await run(args, opts);
  w.outputs.push(r.stdout, r.stderr);
  return r;
}

function schemesOn(holderDir: string): string[] {
  const d = join(holderDir, 'schemes');
  return existsSync(d) ? readdirSync(d).filter((n) => !n.startsWith('.')).sort() : [];
}

describe('the recovery sheet and the QR code of the offline share', { timeout: 300_000 }, () => {
  before(async () => {
    w.dir = trackedTempDir('lb-sheet-');
    w.primary = join(w.dir, 'primary');
    w.operatorKey = join(w.dir, 'operator.json');
    const [primary, op] = await Promise.all([
      cli(['primary', 'init', '--data-dir', w.primary, '--json']),
      cli(['operator', 'keygen', '--out', w.operatorKey, '--json']),
    ]);
    const p = JSON.parse(ok(primary).stdout) as { identity: string; fingerprint: string };
    w.primaryFp = p.fingerprint;
    const opId = (JSON.parse(ok(op).stdout) as { identity: string }).identity;
    for (const name of ['a', 'b']) {
      const dir = join(w.dir, `holder-${name}`);
      const h = JSON.parse((await runCli(['holder', 'init', '--data-dir', dir, '--primary', p.identity, '--operator', opId, '--json'])).stdout) as { fingerprint: string };
      const s = await startCli(['holder', 'serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--json']);
      w.holderDirs.push(dir);
      w.holders.push(s);
      w.specs.push(`${s.url}#${h.fingerprint}`);
    }
  });

  after(async () => {
    await Promise.all(w.holders.map((h) => (h.child.exitCode === null ? h.stop() : undefined)));
  });

  it('init refuses, before changing anything, a --qr without a terminal and descriptors that are not open, read-only, lifeboat\'s own, repeated or one too many', async () => {
    const readOnly = openSync(join(w.dir, 'read-only'), 'w+');
    closeSync(readOnly);
    const ro = openSync(join(w.dir, 'read-only'), 'r');
    const base = ['recovery', 'init', '--data-dir', w.primary, '--holder', w.specs[0]!, '--holder', w.specs[1]!];
    try {
      const [qr, notOpen, secretNotOpen, readOnlyFd, own, ownPipe, twice, tooMany] = await Promise.all([
        cli([...base, '--secret-fd', '3', '--qr'], { extra: ['pipe'] }),
        cli([...base, '--secret-fd', '3', '--sheet-fd', '200'], { extra: ['pipe'] }),
        cli([...base, '--secret-fd', '200']),
        cli([...base, '--secret-fd', '3', '--qr-png-fd', '4'], { extra: ['pipe', ro] }),
        cli([...base, '--secret-fd', '3', '--sheet-fd', '4'], { extra: ['pipe'] }),
        cli([...base, '--secret-fd', '3', '--sheet-fd', '6'], { extra: ['pipe'] }),
        cli([...base, '--secret-fd', '3', '--sheet-fd', '4', '--qr-png-fd', '4'], { extra: ['pipe', 'pipe'] }),
        cli([...base, '--secret-fd', '3', '--sheet-fd', '4', '--sheet-fd', '5'], { extra: ['pipe', 'pipe', 'pipe'] }),
      ]);
      failsWith(qr, 'secret_needs_terminal');
      failsWith(notOpen, 'output_unwritable');
      assert.match(notOpen.stderr, /file descriptor 200 \(--sheet-fd\): it is not open; nothing was changed/);
      failsWith(secretNotOpen, 'output_unwritable');
      failsWith(readOnlyFd, 'output_unwritable');
      assert.match(readOnlyFd.stderr, /not open for writing/);
      failsWith(own, 'output_unwritable');
      failsWith(ownPipe, 'output_unwritable');
      assert.match(own.stderr + ownPipe.stderr, /not one the shell opened for this command[\s\S]*not one the shell opened for this command/);
      failsWith(twice, 'invalid_input');
      assert.match(twice.stderr, /file descriptor 4 is given for two outputs/);
      failsWith(tooMany, 'invalid_input');
      assert.match(tooMany.stderr, /--sheet-fd is given 2 times, but there is 1 offline share/);
      for (const r of [qr, notOpen, secretNotOpen, readOnlyFd, own, ownPipe, twice, tooMany]) assert.equal(r.fds.map((b) => b.length).reduce((a, b) => a + b, 0), 0, 'nothing was written to a descriptor');
    } finally {
      closeSync(ro);
    }
    assert.ok(!existsSync(join(w.primary, 'vault.lbv')) && !existsSync(join(w.primary, 'recovery-manifest.json')), 'no vault, no manifest');
    for (const d of w.holderDirs) assert.deepEqual(schemesOn(d), [], 'no holder was given a scheme');
  });

  it('init writes the sheet and a PNG to the descriptors given; zbarimg reads exactly the words from the PNG, and verify accepts them', async () => {
    const r = ok(await cli(['recovery', 'init', '--data-dir', w.primary, '--holder', w.specs[0]!, '--holder', w.specs[1]!, '--secret-fd', '3', '--sheet-fd', '4', '--qr-png-fd', '5', '--json'], { extra: ['pipe', 'pipe', 'pipe'] }));
    const [secret, sheet, png] = r.fds as [Buffer, Buffer, Buffer];
    w.words = secret.toString().trim();
    w.sheet = sheet.toString();
    w.png = join(w.dir, 'share.png');
    writeFileSync(w.png, png);
    assert.match(w.words, /^[a-z]+(?: [a-z]+){32}$/);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.equal(zbar(w.png), w.words, 'the qr code holds exactly the words, nothing else');
    const decoded = zbar(w.png);
    const typed = JSON.parse(ok(await cli(['recovery', 'verify', '--data-dir', w.primary, '--offline-shares', '1', '--json'], { input: `${decoded}\n` })).stdout) as { ok: boolean; checks: { kind: string; ok: boolean }[] };
    assert.equal(typed.ok, true);
    assert.deepEqual(typed.checks.map((c) => [c.kind, c.ok]), [['holder', true], ['holder', true], ['offline', true]]);
    const scanned = JSON.parse(ok(await cli(['recovery', 'verify', '--data-dir', w.primary, '--share-qr', w.png, '--json'])).stdout) as { ok: boolean; checks: { kind: string; ok: boolean }[] };
    assert.deepEqual(scanned.checks.filter((c) => c.kind === 'offline').map((c) => c.ok), [true]);
    w.secret = randomBytes(24).toString('base64');
    ok(await cli(['vault', 'put', 'backup-key', '--data-dir', w.primary], { input: w.secret }));
  });

  it('the sheet: self-contained HTML with the words in numbered columns, the same QR code as the PNG, scheme, fingerprints, threshold, holders, date and the kit steps', () => {
    const html = w.sheet;
    const manifest = readManifestFile(join(w.primary, 'recovery-manifest.json'));
    assert.match(html, /^<!doctype html>/);
    const numbered = [...html.matchAll(/<li><span class="n">(\d+)\.<\/span> <span class="w">([a-z]+)<\/span><\/li>/g)].map((m) => [Number(m[1]), m[2]]);
    assert.deepEqual(numbered, w.words.split(' ').map((word, i) => [i + 1, word]));
    assert.equal((html.match(/<ol class="col">/g) ?? []).length, 3, 'three columns of 11 words');
    const svg = svgModules(html);
    const fromPng = pngModules(readFileSync(w.png));
    assert.equal(svg.size, fromPng.size);
    assert.deepEqual(svg.dark, fromPng.dark, 'the sheet and the png carry the same modules');
    const svgPng = join(w.dir, 'sheet-svg.png');
    writeFileSync(svgPng, qrToPng(svg));
    assert.equal(zbar(svgPng), w.words, 'the sheet\'s svg, drawn again, reads as the words');
    assert.ok(html.includes(`data-field="scheme_id">${manifest.scheme_id}<`));
    assert.ok(html.includes(`data-field="master_fingerprint">${manifest.master_fingerprint}<`));
    assert.ok(html.includes(`data-field="primary_fingerprint">${w.primaryFp}<`));
    assert.match(html, /data-field="threshold">2 of 3 shares \(2 on holders, 1 offline\)/);
    for (const spec of w.specs) assert.ok(html.includes(`<span class="mono">${spec.split('#')[1]}</span>`), 'each holder fingerprint is on the sheet');
    assert.match(html, new RegExp(`sheet printed <span data-field="printed_at">${new Date().toISOString().slice(0, 10)}`));
    assert.ok(html.includes(`scheme created ${manifest.created_at}`));
    const steps = /<ol class="steps">([\s\S]*?)<\/ol>/.exec(html)![1]!;
    assert.equal((steps.match(/<li>/g) ?? []).length, 3);
    assert.ok(steps.includes(`lifeboat-kit recovery reconstruct --operator-key operator.json --share-qr share.png --release-response resp.json --manifest manifest.json --vault vault.lbv --primary-fingerprint ${w.primaryFp}`));
    assert.match(html, /@page/);
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">/);
    assert.doesNotMatch(html, /<script|<link|<img|<iframe|<object|<embed|\ssrc=|\shref=|url\(|@import/i, 'nothing external is loaded');
  });

  it('rotate --qr on a terminal draws a code zbarimg reads as the new words; the sheet and PNG go to files the shell opened, made 0600; the old QR is refused', { skip: spawnSync('script', ['--version']).status !== 0 && 'needs util-linux script' }, async () => {
    const sheetFile = join(w.dir, 'rotated.html');
    w.rotatedPng = join(w.dir, 'rotated.png');
    const cmd = `${[process.execPath, ...cliArgs(), 'recovery', 'rotate', '--data-dir', w.primary, '--qr', '--sheet-fd', '3', '--qr-png-fd', '4'].map((a) => `'${a}'`).join(' ')} 3>'${sheetFile}' 4>'${w.rotatedPng}'`;
    const child = tracked(spawn('script', ['-q', '-e', '-c', `umask 022; ${cmd}`, '/dev/null'], { cwd: REPO_ROOT, env: { ...process.env, LIFEBOAT_DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'] }));
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const terminal = Buffer.concat(out).toString().replace(/\r/g, '');
    assert.equal(code, 0, terminal);
    const shown = [...terminal.matchAll(/\s(\d+)\. ([a-z]+)/g)].map((m) => m[2]!);
    assert.equal(shown.length, 33, 'the words are on the terminal');
    w.rotatedWords = shown.join(' ');
    assert.notEqual(w.rotatedWords, w.words);
    const drawn = join(w.dir, 'terminal.png');
    writeFileSync(drawn, qrToPng(terminalModules(terminal)));
    assert.equal(zbar(drawn), w.rotatedWords, 'the terminal code reads as the words shown');
    assert.equal(zbar(w.rotatedPng), w.rotatedWords);
    assert.ok(readFileSync(sheetFile, 'utf8').includes(`<span class="w">${w.rotatedWords.split(' ')[32]}</span>`));
    for (const f of [sheetFile, w.rotatedPng]) assert.equal(statSync(f).mode & 0o777, 0o600, `${f} was tightened to 0600`);
    const old = await cli(['recovery', 'verify', '--data-dir', w.primary, '--share-qr', w.png, '--json']);
    assert.equal(old.code, 3);
    const check = (JSON.parse(old.stdout) as { checks: { kind: string; code?: string }[] }).checks.find((c) => c.kind === 'offline')!;
    assert.equal(check.code, 'share_set_mismatch');
  });

  it('the worst day, as the sheet says: an air-gapped holder\'s release and the QR image rebuild the vault', async () => {
    assert.ok(w.rotatedPng, 'needs the rotated share');
    const manifest = readManifestFile(join(w.primary, 'recovery-manifest.json'));
    const fresh = join(w.dir, 'new-primary');
    const req = join(w.dir, 'req.json');
    const resp = join(w.dir, 'resp.json');
    const holderFp = w.specs[1]!.split('#')[1]!;
    ok(await cli(['recovery', 'request', '--data-dir', fresh, '--operator-key', w.operatorKey, '--scheme', manifest.scheme_id, '--holder-fingerprint', holderFp, '--out', req]));
    await w.holders[1]!.stop();
    ok(await cli(['holder', 'release', '--data-dir', w.holderDirs[1]!, '--request', req, '--out', resp]));
    const kept = join(w.holderDirs[1]!, 'schemes', manifest.scheme_id);
    const r = JSON.parse(
      ok(await cli(['recovery', 'reconstruct', '--data-dir', fresh, '--operator-key', w.operatorKey, '--share-qr', w.rotatedPng, '--release-response', resp, '--manifest', join(kept, 'manifest.json'), '--vault', join(kept, 'vault.lbv'), '--primary-fingerprint', w.primaryFp, '--json'])).stdout,
    ) as { ok: boolean; entries: number; shares_from: string[] };
    assert.equal(r.entries, 1);
    assert.ok(r.shares_from.some((s) => s === `qr image ${w.rotatedPng}`), r.shares_from.join(', '));
    const got = ok(await cli(['vault', 'get', 'backup-key', '--data-dir', fresh, '--stdout']));
    assert.equal(got.stdout, w.secret);
  });

  it('reconstruct --share-qr: a file that is no PNG, a PNG without a code, a code that is no share, a missing file, a share of the old scheme: typed errors, nothing written', async () => {
    const notPng = join(w.dir, 'not.png');
    writeFileSync(notPng, 'this is not an image');
    const blank = new pngjs.PNG({ width: 200, height: 200 });
    blank.data.fill(255);
    const blankPng = join(w.dir, 'blank.png');
    writeFileSync(blankPng, pngjs.PNG.sync.write(blank));
    const url = join(w.dir, 'url.png');
    await QRCode.toFile(url, 'https://example.com/not-a-share');
    const words = join(w.dir, 'words.png');
    writeFileSync(words, qrToPng(shareQrMatrix('hello world these are words but not a share')));
    const cases: [string, string, number][] = [[notPng, 'qr_image_invalid', 1], [blankPng, 'qr_not_found', 1], [url, 'qr_not_a_share', 1], [words, 'qr_not_a_share', 1], [join(w.dir, 'missing.png'), 'file_not_found', 1], [w.png, 'share_set_mismatch', 3]];
    const dirs = cases.map((_c, i) => join(w.dir, `bad-${i}`));
    const manifest = join(w.primary, 'recovery-manifest.json');
    const results = await Promise.all(cases.map(([file], i) => cli(['recovery', 'reconstruct', '--data-dir', dirs[i]!, '--operator-key', w.operatorKey, '--share-qr', file, '--manifest', manifest, '--vault', join(w.primary, 'vault.lbv'), '--json'])));
    results.forEach((r, i) => {
      failsWith(r, cases[i]![1], cases[i]![2]);
      assert.equal((JSON.parse(r.stdout) as { err_type: string }).err_type, cases[i]![1]);
      const files = existsSync(dirs[i]!) ? readdirSync(dirs[i]!) : [];
      assert.ok(!files.includes('vault.lbv') && !files.includes('master.key'), `files written: ${files.join(', ')}`);
    });
  });

  it('no share word reached stdout or stderr of a command that does not show the share on purpose', () => {
    const text = w.outputs.join('\n');
    for (const share of [w.words, w.rotatedWords].filter(Boolean)) {
      const list = share.split(' ');
      for (let i = 0; i + 4 <= list.length; i++) assert.ok(!text.includes(list.slice(i, i + 4).join(' ')), 'share words appeared in output');
    }
  });
});

describe('QR code and sheet, as functions', () => {
  const { mnemonics } = generateMnemonics(new Uint8Array(32).fill(3), { threshold: 2, count: 3 });
  const share = mnemonics[2]!;

  it('decodeShareQr reads back what qrToPng drew, also on a transparent background, and refuses an oversized header before decoding', () => {
    const matrix = shareQrMatrix(share);
    // the words' length varies with the share (random identifier and values): 33 words of 4-8 letters
    assert.ok([69, 73, 77].includes(matrix.size), `version 13-15 at level Q for 33 words (${share.length} characters): ${matrix.size} modules`);
    assert.equal(decodeShareQr(qrToPng(matrix, 4), 'x'), share);
    const img = pngjs.PNG.sync.read(Buffer.from(qrToPng(matrix, 4)));
    const clear = new pngjs.PNG({ width: img.width, height: img.height });
    for (let i = 0; i < img.data.length; i += 4) clear.data.set(img.data[i]! < 128 ? [0, 0, 0, 255] : [0, 0, 0, 0], i);
    assert.equal(decodeShareQr(new Uint8Array(pngjs.PNG.sync.write(clear)), 'x'), share);
    const huge = new Uint8Array(qrToPng(matrix, 1));
    new DataView(huge.buffer).setUint32(16, 100_000);
    new DataView(huge.buffer).setUint32(20, 100_000);
    assert.throws(() => decodeShareQr(huge, 'huge.png'), (e: unknown) => isLifeboatError(e, 'qr_image_invalid') && /100000x100000/.test((e as Error).message));
    assert.throws(() => shareQrMatrix(`${share} `), (e: unknown) => isLifeboatError(e, 'invalid_input'));
  });

  it('renderRecoverySheet escapes every value it puts in the page', () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;');
    const hostile = `http://h/"><script>alert(1)</script><img src=x onerror=alert(2)>`;
    const manifest = {
      version: 2 as const, type: 'lifeboat-recovery-manifest' as const, scheme_id: '00'.repeat(16), created_at: '<b>2025</b>', threshold: 2, share_count: 3,
      slip39_identifier: 1, slip39_iteration_exponent: 1, passphrase_protected: true, master_fingerprint: 'ab'.repeat(32), primary: 'lb1.x', operators: [], signature: 'x',
      members: [{ member_index: 0, kind: 'holder' as const, url: hostile, fingerprint: '<i>fp</i>', possession_key: 'k' }, { member_index: 1, kind: 'holder' as const, url: 'http://b', fingerprint: 'fp-b', possession_key: 'k' }, { member_index: 2, kind: 'offline' as const, possession_key: 'k' }],
    };
    const html = renderRecoverySheet({ mnemonic: share, manifest, primaryFingerprint: '"fp"<x>', offlineNumber: 1, offlineCount: 1, printedAt: new Date(0) });
    assert.doesNotMatch(html, /<script|<img|<b>|<i>|<x>|onerror=alert\(2\)>/);
    assert.ok(html.includes('&#60;script&#62;alert(1)&#60;/script&#62;'));
    assert.ok(html.includes('--primary-fingerprint &#34;fp&#34;&#60;x&#62; --passphrase'), 'a passphrase-protected share says --passphrase in step 3');
  });
});
