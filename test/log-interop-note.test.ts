/**
 * Signed notes and checkpoints against Go's golang.org/x/mod/sumdb/note (test/interop/note_peer.go),
 * both ways: Go opens what Lifeboat signed with the verifier key Lifeboat printed, Lifeboat opens what
 * Go signed, and keys cross over. Go is required: a missing toolchain fails the test, it never skips.
 *
 * Co-signatures: this Debian version of x/mod has no cosignature/v1 (type 0x04) support, so the peer
 * plugs a cosignature/v1 Verifier and Signer, written in Go from c2sp.org/tlog-cosignature@v1.0.1,
 * into Go's note.Open and note.Sign (test/log-note.test.ts also checks the spec's own example).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import { buildGoPeer } from './helpers/go.js';
import { randomBytes } from '../src/crypto/random.js';
import { toHex, utf8 } from '../src/util/bytes.js';
import { encodeSignerKey, generateNoteKey, parseNote, parseSignerKey, parseVerifierKey, SIG_ED25519, signNote, openNote, encodeVerifierKey } from '../src/log/note.js';
import { encodeCheckpoint, openCheckpoint, signCheckpoint, type Checkpoint } from '../src/log/checkpoint.js';
import { cosignatureSigner, cosignCheckpoint, generateWitnessKey, parseWitnessSignerKey, parseWitnessVerifierKey, verifyCheckpoint } from '../src/log/cosignature.js';

let peer = '';

/** Runs the Go peer; returns stdout, or throws with its stderr when it exits non-zero. */
function go(args: string[], input = ''): string {
  const r = spawnSync(peer, args, { input, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`note_peer ${args[0]}: ${r.stderr.trim() || r.error?.message || `exit ${r.status}`}`);
  return r.stdout;
}

interface GoOpened {
  text: string;
  sigs: { name: string; hash: string }[];
  unverified: { name: string; hash: string }[];
}

const goOpen = (note: string, ...keys: string[]): GoOpened => JSON.parse(go(['open', ...keys], note)) as GoOpened;

describe('signed notes and checkpoints: interop with Go x/mod/sumdb/note', () => {
  before(async () => {
    peer = await buildGoPeer('note_peer');
  });

  it("Go's note.NewVerifier takes Lifeboat's verifier key and note.Open verifies Lifeboat's checkpoints", () => {
    const key = generateNoteKey('backup-log.example/log1');
    const log = parseSignerKey(key.signerKey);
    for (const size of [0, 1, 255, 256, 99_999, Number.MAX_SAFE_INTEGER]) {
      const c: Checkpoint = { origin: 'backup-log.example/log1', size, rootHash: randomBytes(32), extensions: [] };
      const signed = signCheckpoint(c, log);
      const opened = goOpen(signed, `log:${key.verifierKey}`);
      assert.equal(opened.text, encodeCheckpoint(c));
      assert.deepEqual(opened.sigs, [{ name: 'backup-log.example/log1', hash: key.verifierKey.split('+')[1] }]);
    }
  });

  it('Go refuses a Lifeboat checkpoint that was altered, or checked with another key', () => {
    const key = generateNoteKey('backup-log.example/log1');
    const signed = signCheckpoint({ origin: 'backup-log.example/log1', size: 10, rootHash: sha256(utf8.encode('r')), extensions: [] }, parseSignerKey(key.signerKey));
    assert.throws(() => goOpen(signed.replace('\n10\n', '\n11\n'), `log:${key.verifierKey}`), /invalid signature for key backup-log\.example\/log1/);
    assert.throws(() => goOpen(signed, `log:${generateNoteKey('backup-log.example/log1').verifierKey}`), /no verifiable signatures/);
  });

  it('Go ignores the witness co-signatures on a Lifeboat checkpoint as unknown keys, and verifies them with a cosignature/v1 verifier', () => {
    const key = generateNoteKey('backup-log.example/log1');
    const w = generateWitnessKey('witness.example/w1');
    const c: Checkpoint = { origin: 'backup-log.example/log1', size: 7, rootHash: randomBytes(32), extensions: [] };
    const note = signCheckpoint(c, parseSignerKey(key.signerKey)) + cosignCheckpoint(encodeCheckpoint(c), parseWitnessSignerKey(w.signerKey));
    const plain = goOpen(note, `log:${key.verifierKey}`);
    assert.deepEqual(plain.unverified.map((s) => s.name), ['witness.example/w1']);
    const both = goOpen(note, `log:${key.verifierKey}`, `cosig:${w.verifierKey}`);
    assert.deepEqual(both.sigs.map((s) => [s.name, s.hash]), [
      ['backup-log.example/log1', key.verifierKey.split('+')[1]],
      ['witness.example/w1', w.verifierKey.split('+')[1]],
    ]);
    assert.equal(both.unverified.length, 0);
  });

  it("Lifeboat verifies a co-signature Go made, with Lifeboat's witness verifier key", () => {
    const seed = randomBytes(32);
    const t = 1764752400;
    const witness = cosignatureSigner('witness.example/w2', seed, () => t);
    const key = generateNoteKey('backup-log.example/log1');
    const c: Checkpoint = { origin: 'backup-log.example/log1', size: 300, rootHash: randomBytes(32), extensions: [] };
    const text = encodeCheckpoint(c);
    const goLine = go(['cosign', 'witness.example/w2', toHex(seed), String(t)], text);
    // Ed25519 is deterministic: Go's line is byte for byte the one Lifeboat makes
    assert.equal(goLine, cosignCheckpoint(text, witness));
    const v = verifyCheckpoint(signCheckpoint(c, parseSignerKey(key.signerKey)) + goLine, parseVerifierKey(key.verifierKey), {
      witnesses: [parseWitnessVerifierKey(encodeVerifierKey(witness.verifier()))],
      quorum: 1,
    });
    assert.deepEqual(v.cosignatures.map((x) => [x.name, x.timestamp]), [['witness.example/w2', t]]);
  });

  it("keys Go generated parse in Lifeboat; Lifeboat's signature with them is Go's, byte for byte", () => {
    const [skey, vkey] = go(['genkey', 'go.example/log']).trim().split('\n') as [string, string];
    const signer = parseSignerKey(skey);
    const verifier = parseVerifierKey(vkey);
    assert.equal(signer.keyId, verifier.keyId);
    assert.equal(encodeVerifierKey(signer.verifier()), vkey);
    const text = encodeCheckpoint({ origin: 'go.example/log', size: 12, rootHash: randomBytes(32), extensions: [] });
    const goSigned = go(['sign', skey], text);
    assert.equal(signNote(text, signer), goSigned);
    assert.equal(openCheckpoint(goSigned, verifier).checkpoint.size, 12);
    assert.equal(goOpen(signNote(text, signer), `log:${vkey}`).text, text);
  });

  it('Go and Lifeboat agree on every note one character away from a good checkpoint', () => {
    const key = generateNoteKey('backup-log.example/log1');
    const good = signCheckpoint({ origin: 'backup-log.example/log1', size: 1234, rootHash: sha256(utf8.encode('r')), extensions: [] }, parseSignerKey(key.signerKey));
    const chars = [...good];
    const variants: string[] = [good];
    for (let i = 0; i < chars.length; i++) {
      for (const r of ['A', ' ', '\n', '+', '\u2014', '\u0001', '']) variants.push([...chars.slice(0, i), r, ...chars.slice(i + 1)].join(''));
    }
    const goResults = JSON.parse(go(['open-each', `log:${key.verifierKey}`], JSON.stringify(variants))) as { ok: boolean; text?: string; error?: string }[];
    const verifier = parseVerifierKey(key.verifierKey);
    let accepted = 0;
    for (const [i, msg] of variants.entries()) {
      let mine: { ok: boolean; text?: string; code?: string };
      try {
        mine = { ok: true, text: openNote(msg, [verifier]).text };
      } catch (err) {
        mine = { ok: false, code: (err as { code?: string }).code };
      }
      assert.equal(mine.ok, goResults[i]!.ok, `${JSON.stringify(msg)}: lifeboat ${mine.code ?? 'ok'}, go ${goResults[i]!.error ?? 'ok'}`);
      if (mine.ok) {
        accepted++;
        assert.equal(mine.text, goResults[i]!.text);
      }
    }
    assert.ok(accepted >= 1 && accepted < variants.length / 2, `accepted ${accepted}`);
  });

  it("Go's note.NewSigner takes a signer key Lifeboat encoded, and Lifeboat opens what Go signed", () => {
    const seed = randomBytes(32);
    const skey = encodeSignerKey('lifeboat.example/log', SIG_ED25519, seed);
    const vkey = encodeVerifierKey(parseSignerKey(skey).verifier());
    const text = 'a note\n\nwith an empty line and ünïcödé\n';
    const goSigned = go(['sign', skey], text);
    const opened = openNote(goSigned, [parseVerifierKey(vkey)]);
    assert.equal(opened.text, text);
    assert.deepEqual(parseNote(goSigned).signatures[0]!.keyId, parseVerifierKey(vkey).keyId);
    assert.throws(() => go(['sign', skey.replace('lifeboat.example', 'lifeboat.exampl3')], text), /signer/);
  });
});
