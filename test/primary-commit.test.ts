import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { commitPrimaryState, finishPendingCommit } from '../src/primary/commit.js';
import { loadMasterKey, primaryPaths } from '../src/primary/datadir.js';
import { randomBytes } from '../src/crypto/random.js';
import type { Manifest } from '../src/recovery/manifest.js';
import { trackedTempDir } from './helpers/tmp.js';

function state(tag: string) {
  const schemeId = randomBytes(16);
  return { vault: new TextEncoder().encode(`vault-${tag}`), manifest: { scheme_id: tag } as unknown as Manifest, master: { schemeId, key: randomBytes(32) } };
}

function snapshot(dir: string) {
  const p = primaryPaths(dir);
  return { vault: readFileSync(p.vault, 'utf8'), manifest: JSON.parse(readFileSync(p.manifest, 'utf8')).scheme_id, master: loadMasterKey(p).schemeId };
}

for (const crashAfter of ['next-files', 'marker', 'first-rename'] as const) {
  test(`primary commit: a crash after ${crashAfter} leaves the old state or the new one, never a mix`, async () => {
    const dir = trackedTempDir('lb-commit-');
    const paths = primaryPaths(dir);
    const a = state('a');
    await commitPrimaryState(paths, a);
    const b = state('b');
    await commitPrimaryState(paths, b, { crashAfter });
    finishPendingCommit(paths); // what the next command does first
    const s = snapshot(dir);
    const expected = crashAfter === 'next-files' ? { tag: 'a', st: a } : { tag: 'b', st: b };
    assert.equal(s.vault, `vault-${expected.tag}`);
    assert.equal(s.manifest, expected.tag);
    assert.deepEqual(s.master, expected.st.master.schemeId);
    assert.equal(existsSync(join(dir, 'commit.pending')), false);
    assert.equal(existsSync(`${paths.vault}.next`), false);
    assert.equal(statSync(paths.masterKey).mode & 0o777, 0o600);
    assert.equal(statSync(paths.vault).mode & 0o777, 0o600);
  });
}
