/** The audit log's hash chain: appends verify; edits, removals and insertions are named by line. */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import { isLifeboatError } from '../src/errors.js';
import { AUDIT_GENESIS, auditEntryHash, AuditLog, canonicalJson, verifyAuditLog, type AuditEntry } from '../src/holder/audit.js';
import { toHex, utf8 } from '../src/util/bytes.js';
import { tempDir } from './helpers/holder.js';

const dir = tempDir('lifeboat-audit-');
after(() => rmSync(dir, { recursive: true, force: true }));

function writeLog(name: string, n: number): string {
  const path = join(dir, name);
  const log = AuditLog.open(path, () => 1_700_000_000_000);
  for (let i = 0; i < n; i++) log.append({ action: i % 2 ? 'release' : 'put_share', actor: 'local', scheme_id: 'ab'.repeat(16), outcome: i % 3 ? 'ok' : 'refused', code: i % 3 ? undefined : 'not_enrolled' });
  return path;
}

const lines = (path: string) => readFileSync(path, 'utf8').trimEnd().split('\n');

describe('audit log', () => {
  it('hashes prev || canonical JSON, sorted keys, from a zero genesis', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: 'x' }, u: undefined }), '{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}');
    const path = writeLog('one.log', 1);
    const e = JSON.parse(lines(path)[0]!) as AuditEntry;
    assert.equal(e.seq, 1);
    assert.equal(e.prev, AUDIT_GENESIS);
    assert.equal(e.at, '2023-11-14T22:13:20.000Z');
    const { hash, ...rest } = e;
    assert.equal(hash, toHex(sha256(utf8.encode(AUDIT_GENESIS + canonicalJson(rest)))));
    assert.equal(auditEntryHash(rest), hash);
    assert.equal('code' in e, true);
  });

  it('verifies a chain, continues it after reopening, and reports the head', () => {
    const path = writeLog('chain.log', 5);
    const log = AuditLog.open(path);
    assert.equal(log.head().seq, 5);
    log.append({ action: 'enrol', actor: 'local', outcome: 'ok' });
    const v = verifyAuditLog(readFileSync(path, 'utf8'));
    assert.deepEqual(v, { ok: true, entries: 6, head: (JSON.parse(lines(path)[5]!) as AuditEntry).hash });
    assert.deepEqual(verifyAuditLog(''), { ok: true, entries: 0, head: AUDIT_GENESIS });
  });

  it('names the line of an edit, a removal, an insertion and garbage', () => {
    const path = writeLog('edit.log', 6);
    const orig = lines(path);
    const check = (mutated: string[], line: number, reason: RegExp) => {
      const v = verifyAuditLog(`${mutated.join('\n')}\n`);
      assert.equal(v.ok, false);
      if (!v.ok) {
        assert.equal(v.line, line);
        assert.match(v.reason, reason);
        assert.equal(v.entries, line - 1);
      }
    };
    const edited = [...orig];
    edited[2] = edited[2]!.replace('"actor":"local"', '"actor":"ffff:ffff"');
    check(edited, 3, /edited/);
    check([...orig.slice(0, 3), ...orig.slice(4)], 4, /seq/);
    check([...orig.slice(0, 2), orig[4]!, ...orig.slice(2)], 3, /seq/);
    check([...orig.slice(0, 1), 'not json', ...orig.slice(1)], 2, /not json/);
    // rewriting seq and prev after a removal still breaks: the hash covers them
    const rewired = orig.slice(0, 2).concat(orig.slice(3).map((l) => {
      const e = JSON.parse(l) as AuditEntry;
      return JSON.stringify({ ...e, seq: e.seq - 1 });
    }));
    check(rewired, 3, /prev|hash/);
  });

  it('cuts off a torn last line on open and refuses a corrupt last line', () => {
    const path = writeLog('torn.log', 3);
    appendFileSync(path, '{"seq":4,"at":"2023');
    const log = AuditLog.open(path);
    assert.equal(log.head().seq, 3);
    log.append({ action: 'enrol', actor: 'local', outcome: 'ok' });
    assert.equal(verifyAuditLog(readFileSync(path, 'utf8')).ok, true);
    const bad = join(dir, 'bad.log');
    writeFileSync(bad, 'garbage\n');
    assert.throws(() => AuditLog.open(bad), (e: unknown) => isLifeboatError(e, 'audit_log_corrupt'));
  });
});
