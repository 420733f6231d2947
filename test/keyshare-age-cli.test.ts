/**
 * The real age CLI (Debian's /usr/bin/age) opens a passphrase-mode backup when the 24 words are typed:
 * age reads passphrases only from a terminal, so python3's pty module drives `age -d` and types them.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { tracked } from './helpers/cli.js';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { brotliDecompressSync } from 'node:zlib';
import { parseKeyPackage } from '../src/keyshare/package.js';
import { parseRecord } from '../src/keyshare/record.js';
import { sealBackup } from '../src/keyshare/seal.js';
import { generateOperatorMnemonic } from '../src/keyshare/mnemonic.js';
import { trackedTempDir } from './helpers/tmp.js';
import { dealtKey, nodeIdentity } from './helpers/keyshare.js';

// Forks `age -d -o OUT IN` on a new pty, waits for its passphrase prompt, types the line, and exits with age's status.
const DRIVER = `
import os, pty, sys, time
inp, out, line = sys.argv[1], sys.argv[2], sys.argv[3]
pid, fd = pty.fork()
if pid == 0:
    os.execv('/usr/bin/age', ['age', '-d', '-o', out, inp])
seen, typed, deadline = b'', False, time.time() + 60
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
    if not typed and b'passphrase' in seen.lower():
        os.write(fd, line.encode() + b'\\n')
        typed = True
    if time.time() > deadline:
        break
_, status = os.waitpid(pid, 0)
sys.stderr.write('typed=%s\\n' % typed)
sys.exit(os.waitstatus_to_exitcode(status))
`;

function ageDecryptTyping(inp: string, out: string, typed: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = tracked(spawn('python3', ['-c', DRIVER, inp, out, typed], { stdio: ['ignore', 'ignore', 'pipe'] }));
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stderr }));
  });
}

test('age -d opens a passphrase-mode backup when the 24 words are typed on a terminal, and not with other words', async () => {
  const dir = trackedTempDir('lifeboat-keyshare-age-');
  const m = generateOperatorMnemonic();
  const node = nodeIdentity();
  const key = dealtKey('ed25519', 'key_age')[1]!;
  const r = parseRecord(await sealBackup({ key, tenant: 'default', epoch: 1, node }, { mode: 'passphrase', mnemonic: m }));
  const inp = join(dir, 'backup.age');
  writeFileSync(inp, r.ciphertext);

  const good = await ageDecryptTyping(inp, join(dir, 'out'), m.phrase);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stderr, /typed=True/);
  let plain = new Uint8Array(readFileSync(join(dir, 'out')));
  if (r.compression === 'brotli') plain = new Uint8Array(brotliDecompressSync(plain));
  const p = parseKeyPackage(plain, 'ed25519');
  assert.deepEqual(p.share, key.share);
  assert.equal(p.keyId, 'key_age');
  assert.deepEqual(p.identitySeeds, new Uint8Array([...node.signing.secretKey, ...node.box.secretKey]));

  const bad = await ageDecryptTyping(inp, join(dir, 'out-bad'), generateOperatorMnemonic().phrase);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /typed=True/);
  assert.ok(!existsSync(join(dir, 'out-bad')) || readFileSync(join(dir, 'out-bad')).length === 0, 'wrong words release nothing');
});
