/**
 * Issue 14, point 3: the unseal ceremony, one keyholder at a time. A sealed 2-of-3 primary (its scheme
 * made in-process with three offline shares, so each keyholder has words) opens a session with
 * `unseal --begin`; each keyholder's `unseal --step` is a separate CLI process with only the manifest and
 * the session; `unseal --add` shows `1 of 2`, then unseals at 2 and deletes the session. No share is in
 * the session file. Negative: a share of another scheme (share_set_mismatch, exit 3), a step of another
 * session, a replayed step, an expired session (at the keyholder and at the primary), --reset.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectFailure, expectOk, type CliResult, runCli } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';
import { generateIdentity, saveIdentity } from '../src/identity.js';
import { primaryPaths } from '../src/primary/datadir.js';
import { commitPrimaryState } from '../src/primary/commit.js';
import { prepareScheme } from '../src/recovery/init.js';
import { encodeSessionToken, parseSessionToken } from '../src/recovery/ceremony.js';
import { createVault } from '../src/vault/format.js';
import { randomBytes } from '../src/crypto/random.js';
import { toHex } from '../src/util/bytes.js';

const ok = expectOk;
const failsWith = expectFailure;

/** A primary data directory with a 2-of-3 scheme of three offline shares; returns their words. */
async function makePrimary(dir: string): Promise<string[]> {
  const paths = primaryPaths(dir);
  const primary = generateIdentity('primary');
  const operator = generateIdentity('operator');
  const { encodePublicIdentity } = await import('../src/identity.js');
  const scheme = prepareScheme({ primary, holders: [], operators: [encodePublicIdentity(operator)], plan: { threshold: 2, shareCount: 3 } });
  await commitPrimaryState(paths, { vault: createVault(scheme.master, scheme.schemeId), manifest: scheme.manifest, master: { schemeId: scheme.schemeId, key: scheme.master } });
  saveIdentity(paths.identity, primary);
  return scheme.offlineMnemonics;
}

const w = { root: '', dir: '', words: [] as string[], otherWords: [] as string[], manifest: '' };
const at = (name: string): string => join(w.root, name);
const cli = (args: string[], input?: string): Promise<CliResult> => runCli([...args, '--data-dir', w.dir], { input });
/** A keyholder's machine: only the session and a copy of the manifest (no data directory of the primary). */
const step = (session: string, words: string, out: string, manifest = w.manifest): Promise<CliResult> =>
  runCli(['unseal', '--step', '--session', session, '--manifest', manifest, '--out', out, '--data-dir', at('keyholder')], { input: `${words}\n` });

describe('the unseal ceremony, one keyholder at a time', { timeout: 300_000 }, () => {
  before(async () => {
    w.root = trackedTempDir('lb-ceremony-');
    w.dir = at('primary');
    w.words = await makePrimary(w.dir);
    w.otherWords = await makePrimary(at('other'));
    w.manifest = at('manifest-copy.json');
    writeFileSync(w.manifest, readFileSync(join(w.dir, 'recovery-manifest.json')));
    ok(await cli(['vault', 'put', 'k'], 'the secret'));
    ok(await cli(['seal']));
  });

  it('begin, a step from each keyholder: 1 of 2, then 2 of 2 unseals and deletes the session; refusals change nothing', async () => {
    const begun = JSON.parse(ok(await cli(['unseal', '--begin', '--ttl-minutes', '30', '--json'])).stdout) as { session: string; expires_at: string; threshold: number };
    assert.match(begun.session, /^lbus1\./);
    assert.equal(begun.threshold, 2);
    assert.ok(Date.parse(begun.expires_at) > Date.now());
    failsWith(await cli(['unseal', '--begin']), 'unseal_session_exists');

    // a share of another scheme, at the keyholder's machine: refused for safety, no step written
    failsWith(await step(begun.session, w.otherWords[0]!, at('bad.json')), 'share_set_mismatch', 3);
    assert.ok(!existsSync(at('bad.json')));
    // an expired session, at the keyholder's machine
    const t = parseSessionToken(begun.session);
    failsWith(await step(encodeSessionToken({ ...t, expiresAt: Date.now() - 1000 }), w.words[0]!, at('late.json')), 'unseal_session_expired');

    ok(await step(begun.session, w.words[0]!, at('step1.json')));
    const first = await cli(['unseal', '--add', at('step1.json')]);
    assert.match(ok(first).stdout, /^1 of 2: step of member \d+ added$/m);
    const sessionText = readFileSync(join(w.dir, 'unseal-session.json'), 'utf8');
    for (const words of w.words.slice(0, 1)) assert.ok(!sessionText.includes(words.split(' ').slice(0, 4).join(' ')), 'no share in the clear in the session');
    assert.ok(!existsSync(join(w.dir, 'master.key')), 'still sealed at 1 of 2');

    // the same step again, and a step made for another session (same scheme, another key)
    failsWith(await cli(['unseal', '--add', at('step1.json')]), 'unseal_step_replayed', 3);
    ok(await step(encodeSessionToken({ ...t, sessionId: toHex(randomBytes(16)), publicKey: randomBytes(32) }), w.words[1]!, at('stale.json')));
    failsWith(await cli(['unseal', '--add', at('stale.json')]), 'unseal_session_mismatch');
    assert.equal(readFileSync(join(w.dir, 'unseal-session.json'), 'utf8'), sessionText, 'refusals add nothing');

    ok(await step(begun.session, w.words[2]!, at('step2.json')));
    const done = JSON.parse(ok(await cli(['unseal', '--add', at('step2.json'), '--json'])).stdout) as { steps: number; threshold: number; unsealed: boolean };
    assert.deepEqual([done.steps, done.threshold, done.unsealed], [2, 2, true]);
    assert.ok(!existsSync(join(w.dir, 'unseal-session.json')), 'the session key is deleted');
    assert.equal(ok(await cli(['vault', 'get', 'k', '--stdout'])).stdout, 'the secret');
  });

  it('an altered step does not open; an expired session on the primary takes no step; --reset aborts it', async () => {
    ok(await cli(['seal']));
    const begun = JSON.parse(ok(await cli(['unseal', '--begin', '--json'])).stdout) as { session: string };
    ok(await step(begun.session, w.words[1]!, at('step3.json')));
    // altered on the way: the sealed box does not open with the session key
    const altered = JSON.parse(readFileSync(at('step3.json'), 'utf8')) as { sealed: string };
    const bytes = Buffer.from(altered.sealed, 'base64');
    bytes[bytes.length - 1]! ^= 1;
    writeFileSync(at('altered.json'), JSON.stringify({ ...altered, sealed: bytes.toString('base64') }));
    failsWith(await cli(['unseal', '--add', at('altered.json')]), 'unseal_step_invalid', 3);
    const file = join(w.dir, 'unseal-session.json');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { expires_at: string };
    doc.expires_at = new Date(Date.now() - 1000).toISOString();
    writeFileSync(file, JSON.stringify(doc), { mode: 0o600 });
    failsWith(await cli(['unseal', '--add', at('step3.json')]), 'unseal_session_expired');
    assert.match(ok(await cli(['unseal', '--reset'])).stdout, /unseal session aborted/);
    assert.ok(!existsSync(file));
    failsWith(await cli(['unseal', '--add', at('step3.json')]), 'unseal_session_not_found');
    failsWith(await cli(['unseal', '--begin', '--step']), 'usage', 2);
  });
});
