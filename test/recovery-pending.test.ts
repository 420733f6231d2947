/**
 * The pending release key file (docs/format.md): what `recovery request` keeps until the response
 * comes back. It holds a secret key, so a damaged one is refused by name without quoting it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateBoxKeyPair } from '../src/crypto/sealedbox.js';
import { isLifeboatError } from '../src/errors.js';
import { loadPendingRelease, savePendingRelease } from '../src/recovery/pending.js';
import { toB64 } from '../src/util/bytes.js';

describe('pending release key file', () => {
  it('round-trips; a damaged file is FormatError malformed whose message quotes nothing of the secret key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lifeboat-pending-'));
    try {
      const id = 'AAAAAAAAAAAAAAAAAAAAAA';
      const key = generateBoxKeyPair();
      savePendingRelease(dir, id, key);
      assert.deepEqual(loadPendingRelease(dir, id).secretKey, key.secretKey);
      const secret = toB64(key.secretKey);
      const path = join(dir, 'pending-releases', `${id}.json`);
      // A torn write or a bad copy: the secret key outside quotes, or the file cut short.
      for (const text of [`{"version":1,"type":"lifeboat-pending-release","request_id":"${id}","secret_key":${secret}}`, secret, `{"secret_key":"${secret}`]) {
        writeFileSync(path, text, { mode: 0o600 });
        assert.throws(
          () => loadPendingRelease(dir, id),
          (err: unknown) => isLifeboatError(err, 'malformed') && !err.message.includes(secret.slice(0, 8)),
          `damaged file ${text.slice(0, 20)}…`,
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
