/**
 * Signed notes, checkpoints and co-signatures (src/log/note.ts, checkpoint.ts, cosignature.ts):
 * known answers from Go's note_test.go and the C2SP specs, negative cases named for their fault, and
 * round-trip properties.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '../src/crypto/random.js';
import { toB64, utf8 } from '../src/util/bytes.js';
import {
  addSignatureLines,
  encodeNote,
  encodeSignerKey,
  encodeVerifierKey,
  generateNoteKey,
  keyId,
  MAX_NOTE_BYTES,
  openNote,
  parseNote,
  parseSignatureLine,
  parseSignerKey,
  parseVerifierKey,
  SIG_ED25519,
  signNote,
} from '../src/log/note.js';
import { checkpointLabel, encodeCheckpoint, openCheckpoint, parseCheckpoint, signCheckpoint, type Checkpoint } from '../src/log/checkpoint.js';
import {
  cosignatureMessage,
  cosignatureTimestamp,
  cosignatureVerifier,
  cosignCheckpoint,
  generateWitnessKey,
  parseWitnessSignerKey,
  parseWitnessVerifierKey,
  verifyCheckpoint,
} from '../src/log/cosignature.js';
import { errorCode } from './helpers/errors.js';

const code = errorCode;

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

// Go's golang.org/x/mod/sumdb/note/note_test.go
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG = '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const ENOCH_SIG = '— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';

// the spec examples of c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature
const SOFA_TEXT = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
const SOFA_COSIG = '— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==';

describe('signed note: known answers from Go and C2SP', () => {
  it("signs Go's example text to exactly Go's signed note, and opens it", () => {
    const signer = parseSignerKey(PETER_SKEY);
    assert.equal(signer.keyId, 0xc74f20a3);
    assert.equal(signNote(TEXT, signer), `${TEXT}\n${PETER_SIG}`);
    assert.equal(encodeVerifierKey(signer.verifier()), PETER_VKEY);
    const opened = openNote(`${TEXT}\n${PETER_SIG}`, [parseVerifierKey(PETER_VKEY)]);
    assert.equal(opened.text, TEXT);
    assert.deepEqual(opened.verified.map((s) => [s.name, s.keyId]), [['PeterNeumann', 0xc74f20a3]]);
  });

  it("Go's TestOpen: one known and one unknown key, both known, none known", () => {
    const peter = parseVerifierKey(PETER_VKEY);
    const enoch = parseVerifierKey(ENOCH_VKEY);
    const msg = `${TEXT}\n${PETER_SIG}${ENOCH_SIG}`;
    const one = openNote(msg, [peter]);
    assert.deepEqual(one.verified.map((s) => s.name), ['PeterNeumann']);
    assert.deepEqual(one.unverified.map((s) => [s.name, s.keyId]), [['EnochRoot', 0xaf0cfe78]]);
    const both = openNote(msg, [peter, enoch]);
    assert.deepEqual(both.verified.map((s) => s.name), ['PeterNeumann', 'EnochRoot']);
    assert.equal(both.unverified.length, 0);
    assert.equal(code(() => openNote(msg, [])), 'note_unverified');
  });

  it('the signed-note spec example verifies with its verifier key', () => {
    const v = parseVerifierKey('example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k');
    const msg = 'This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';
    assert.equal(openNote(msg, [v]).text, 'This is an example message.\n');
  });

  it("a bad signature of a known key rejects the note and names the key (Go's 'invalid signature')", () => {
    const forged = `${TEXT}\n${PETER_SIG.slice(0, 60)}ABCD${PETER_SIG.slice(60)}`;
    const err = thrown(() => openNote(forged, [parseVerifierKey(PETER_VKEY)]));
    assert.equal((err as { code?: string }).code, 'note_signature_invalid');
    assert.match(err.message, /PeterNeumann\+c74f20a3/);
    const altered = `${TEXT.replace('cryptography', 'cryptograph!')}\n${PETER_SIG}`;
    assert.equal(code(() => openNote(altered, [parseVerifierKey(PETER_VKEY)])), 'note_signature_invalid');
  });

  it("duplicated lines count once, and a known key's second line is not checked (Go's rule)", () => {
    const badEnoch = `${ENOCH_SIG.slice(0, 60)}ABCD${ENOCH_SIG.slice(60)}`;
    const opened = openNote(`${TEXT}\n${PETER_SIG}${PETER_SIG}${ENOCH_SIG}${ENOCH_SIG}${badEnoch}`, [parseVerifierKey(PETER_VKEY)]);
    assert.equal(opened.verified.length, 1);
    assert.equal(opened.unverified.length, 2);
  });

  it("malformed notes from Go's test are note_malformed; 101 signatures too; over the size note_too_large", () => {
    const peter = parseVerifierKey(PETER_VKEY);
    const bad = [
      TEXT,
      `${TEXT}\n`,
      `${TEXT}\n${PETER_SIG.slice(0, -1)}`,
      `\x01${TEXT}\n${PETER_SIG}`,
      `${TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=`,
      `${TEXT}\n${PETER_SIG}Unexpected line.\n`,
      `${TEXT}\n${PETER_SIG.repeat(101)}`,
      `${TEXT}\n${PETER_SIG.replace('=\n', '\n')}`, // not canonical base64 (padding dropped)
      `${TEXT}\n— PeterNeumann AAAA\n`, // a key id and no signature
      `${TEXT}\n\u2014PeterNeumann ${PETER_SIG.slice(15)}`, // no space after the em dash
      `${TEXT}\r\n${PETER_SIG}`,
      `${TEXT}\n${PETER_SIG.replace('Peter', 'Pe+er')}`,
    ];
    for (const msg of bad) assert.equal(code(() => openNote(msg, [peter])), 'note_malformed', JSON.stringify(msg));
    assert.equal(code(() => openNote(new Uint8Array([0xff, ...utf8.encode(`${TEXT}\n${PETER_SIG}`)]), [peter])), 'note_malformed');
    assert.equal(code(() => openNote(`${TEXT}\ud800\n\n${PETER_SIG}`, [peter])), 'note_malformed');
    // a byte order mark is text (as in Go), not stripped: the signed text is then another one
    assert.equal(code(() => openNote(new Uint8Array([0xef, 0xbb, 0xbf, ...utf8.encode(`${TEXT}\n${PETER_SIG}`)]), [peter])), 'note_signature_invalid');
    assert.equal(openNote(utf8.encode(`${TEXT}\n${PETER_SIG}`), [peter]).text, TEXT);
    assert.equal(code(() => openNote(`${'a'.repeat(MAX_NOTE_BYTES)}\n\n${PETER_SIG}`, [peter])), 'note_too_large');
    assert.equal(openNote(`${TEXT}\n${PETER_SIG.repeat(100)}`, [peter]).verified.length, 1);
  });

  it("Go's key manglings: every proper substring and every byte changed is refused", () => {
    for (const [key, parse, want] of [
      [PETER_VKEY, parseVerifierKey, 'verifier_key_invalid'],
      [PETER_SKEY, parseSignerKey, 'signer_key_invalid'],
    ] as const) {
      for (let i = 0; i <= key.length; i++) {
        for (let j = i + 1; j <= key.length; j++) {
          if (i === 0 && j === key.length) continue;
          const c = code(() => parse(key.slice(i, j)));
          assert.ok(c === want, `${key.slice(i, j)}: ${c}`);
        }
      }
      for (let i = 0; i < key.length; i++) {
        const m = key.slice(0, i) + String.fromCharCode(key.charCodeAt(i) + 1) + key.slice(i + 1);
        assert.equal(code(() => parse(m)), want, m);
      }
    }
    // Go's: wrong length key and unknown algorithm, each with an adjusted key hash
    assert.equal(code(() => parseVerifierKey('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==')), 'verifier_key_invalid');
    assert.equal(code(() => parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW')), 'verifier_key_invalid');
  });

  it('a signer key error never contains the key', () => {
    const seedB64 = PETER_SKEY.slice(PETER_SKEY.lastIndexOf('+') + 1);
    for (const bad of [PETER_SKEY.replace('c74f20a3', 'c74f20a4'), PETER_SKEY.replace('+AY', '+Ag'), PETER_SKEY.replace('PeterNeumann', 'Peter Neumann')]) {
      const err = thrown(() => parseSignerKey(bad));
      assert.equal((err as { code?: string }).code, 'signer_key_invalid');
      const shown = `${err.message} ${(err as { hint?: string }).hint ?? ''} ${JSON.stringify(err)}`;
      assert.ok(!shown.includes(seedB64.slice(4, 20)), shown);
    }
    assert.equal(Object.values(parseSignerKey(PETER_SKEY)).some((v) => v instanceof Uint8Array && v.length === 32 && toB64(new Uint8Array([1, ...v])) === seedB64), false);
  });

  it('key names: spaces (any Unicode white space), +, empty and over 255 bytes are refused', () => {
    for (const name of ['', 'a b', 'a+b', 'a\u00a0b', 'a\u2003b', 'a\u0085b', 'x'.repeat(256)]) {
      assert.equal(code(() => generateNoteKey(name)), 'invalid_input', JSON.stringify(name));
    }
    assert.equal(code(() => generateNoteKey('x'.repeat(255))), 'no_error');
    assert.equal(code(() => generateNoteKey('bücher.example/log')), 'no_error');
  });
});

describe('signed note: properties', () => {
  // eslint-disable-next-line no-control-regex
  const lineArb = fc.string({ maxLength: 40 }).map((s) => s.replace(/[\u0000-\u001f]/g, ''));
  const textArb = fc.array(lineArb, { minLength: 1, maxLength: 6 }).map((ls) => `${ls.join('\n')}\n`);

  it('open(sign(text)) gives the text back, and parse(encode(note)) is the note', () => {
    const a = parseSignerKey(generateNoteKey('a.example/log').signerKey);
    const b = parseSignerKey(generateNoteKey('b.example/log').signerKey);
    fc.assert(
      fc.property(textArb, (text) => {
        const msg = signNote(parseNote(signNote(text, a)), b);
        const opened = openNote(msg, [a.verifier(), b.verifier()]);
        assert.equal(opened.text, text);
        assert.equal(opened.verified.length, 2);
        assert.equal(encodeNote(parseNote(msg)), msg);
        // re-signing with a replaces a's line instead of adding a second one
        assert.equal(parseNote(signNote(parseNote(msg), a)).signatures.length, 2);
      }),
      { numRuns: 40 },
    );
  });

  it('keys round-trip: encode(parse(k)) is k for generated keys', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9./-]{1,40}$/), fc.uint8Array({ minLength: 32, maxLength: 32 }), (name, seed) => {
        const skey = encodeSignerKey(name, SIG_ED25519, seed);
        const s = parseSignerKey(skey);
        assert.equal(encodeSignerKey(name, SIG_ED25519, seed), skey);
        assert.equal(encodeVerifierKey(parseVerifierKey(encodeVerifierKey(s.verifier()))), encodeVerifierKey(s.verifier()));
        assert.equal(s.keyId, parseVerifierKey(encodeVerifierKey(s.verifier())).keyId);
      }),
      { numRuns: 30 },
    );
  });
});

describe('checkpoint', () => {
  it('parses the tlog-checkpoint spec example, and encodes it back byte for byte', () => {
    const c = parseCheckpoint(SOFA_TEXT);
    assert.equal(c.origin, 'example.com/behind-the-sofa');
    assert.equal(c.size, 20852163);
    assert.equal(toB64(c.rootHash), 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=');
    assert.deepEqual(c.extensions, []);
    assert.equal(encodeCheckpoint(c), SOFA_TEXT);
    assert.equal(checkpointLabel(c), 'example.com/behind-the-sofa size 20852163 root CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=');
  });

  it('refuses bodies that break the spec, each as checkpoint_malformed', () => {
    const root = 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=';
    const bad: Record<string, string> = {
      leading_zero: `o\n020\n${root}\n`,
      negative: `o\n-1\n${root}\n`,
      plus_sign: `o\n+1\n${root}\n`,
      space_in_size: `o\n 1\n${root}\n`,
      hex_size: `o\n0x10\n${root}\n`,
      over_2_53: `o\n9007199254740992\n${root}\n`,
      root_31_bytes: `o\n1\n${toB64(new Uint8Array(31))}\n`,
      root_33_bytes: `o\n1\n${toB64(new Uint8Array(33))}\n`,
      root_not_canonical: `o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n`,
      root_no_padding: `o\n1\n${root.slice(0, -1)}\n`,
      two_lines: `o\n1\n`,
      no_final_newline: `o\n1\n${root}`,
      empty_extension: `o\n1\n${root}\n\n`,
      empty_origin: `\n1\n${root}\n`,
      origin_with_space: `a b\n1\n${root}\n`,
    };
    for (const [fault, text] of Object.entries(bad)) assert.equal(code(() => parseCheckpoint(text)), 'checkpoint_malformed', fault);
    assert.equal(parseCheckpoint(`o\n0\n${root}\next one\n`).extensions[0], 'ext one');
    assert.equal(parseCheckpoint(`o\n9007199254740991\n${root}\n`).size, Number.MAX_SAFE_INTEGER);
  });

  it('round-trips any checkpoint; signed by the log, opened with its key alone', () => {
    const log = parseSignerKey(generateNoteKey('log.example/one').signerKey);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (size, rootHash) => {
        const c: Checkpoint = { origin: 'log.example/one', size, rootHash, extensions: [] };
        assert.deepEqual(parseCheckpoint(encodeCheckpoint(c)), c);
        assert.deepEqual(openCheckpoint(signCheckpoint(c, log), log.verifier()).checkpoint, c);
      }),
      { numRuns: 40 },
    );
  });

  it('a checkpoint of another origin, another key, or altered is refused by name', () => {
    const log = parseSignerKey(generateNoteKey('log.example/one').signerKey);
    const other = parseSignerKey(generateNoteKey('log.example/one').signerKey);
    const c: Checkpoint = { origin: 'log.example/one', size: 5, rootHash: sha256(utf8.encode('x')), extensions: [] };
    const signed = signCheckpoint(c, log);
    assert.equal(code(() => openCheckpoint(signed, other.verifier())), 'note_unverified');
    assert.equal(code(() => openCheckpoint(signed.replace('\n5\n', '\n6\n'), log.verifier())), 'note_signature_invalid');
    assert.equal(code(() => openCheckpoint(signed, log.verifier(), { origin: 'log.example/two' })), 'checkpoint_origin_mismatch');
    assert.equal(code(() => signCheckpoint({ ...c, origin: 'log.example/two' }, log)), 'invalid_input');
    // a log key that signed a body that is not a checkpoint
    assert.equal(code(() => openCheckpoint(signNote('log.example/one\n5\n', log), log.verifier())), 'checkpoint_malformed');
  });
});

describe('cosignature/v1', () => {
  it("the spec example's co-signature carries the time of the spec's signed message, 1679315147", () => {
    const sig = parseSignatureLine(SOFA_COSIG);
    assert.equal(sig.name, 'witness.example.com/w1');
    assert.equal(sig.signature.length, 72);
    assert.equal(cosignatureTimestamp(sig.signature), 1679315147);
    // the spec's "Signed message" example, byte for byte
    const want = `cosignature/v1\ntime 1679315147\n${SOFA_TEXT}`;
    assert.equal(utf8.decode(cosignatureMessage(SOFA_TEXT, 1679315147)), want);
    // transparency-dev/formats' timestamp vector
    const td = parseSignatureLine('— x ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==');
    assert.equal(cosignatureTimestamp(td.signature), 1727964367);
  });

  it("a real type 0x04 witness key parses with the key ID its operator published (key ID over 0x04)", () => {
    const w = parseWitnessVerifierKey('remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2');
    assert.equal(w.keyId, 0xda77ade7);
    assert.equal(keyId(w.name, 0x04, w.publicKey), 0xda77ade7);
    assert.notEqual(keyId(w.name, 0x01, w.publicKey), 0xda77ade7);
    // an Ed25519 note key is not a witness key, and the other way round
    assert.equal(code(() => parseWitnessVerifierKey(PETER_VKEY)), 'verifier_key_invalid');
    assert.equal(code(() => parseVerifierKey('remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2')), 'verifier_key_invalid');
    assert.equal(code(() => parseWitnessSignerKey(PETER_SKEY)), 'signer_key_invalid');
  });

  const log = parseSignerKey(generateNoteKey('log.example/one').signerKey);
  const witnessKeys = ['w1.example', 'w2.example', 'w3.example'].map((n) => generateWitnessKey(n));
  const witnesses = witnessKeys.map((k) => parseWitnessSignerKey(k.signerKey, () => 1700000000));
  const wv = witnessKeys.map((k) => parseWitnessVerifierKey(k.verifierKey));
  const c: Checkpoint = { origin: 'log.example/one', size: 42, rootHash: sha256(utf8.encode('root')), extensions: [] };
  const signed = signCheckpoint(c, log);
  const text = encodeCheckpoint(c);
  const withCosigs = (...ws: number[]): string => signed + ws.map((i) => cosignCheckpoint(text, witnesses[i]!)).join('');

  it('co-signatures verify, with their timestamps; k of n is met or names who is missing', () => {
    const v = verifyCheckpoint(withCosigs(0, 2), log.verifier(), { witnesses: wv, quorum: 2 });
    assert.deepEqual(v.checkpoint, c);
    assert.deepEqual(v.cosignatures.map((x) => [x.name, x.timestamp]), [['w1.example', 1700000000], ['w3.example', 1700000000]]);
    const err = thrown(() => verifyCheckpoint(withCosigs(0), log.verifier(), { witnesses: wv, quorum: 2 }));
    assert.equal((err as { code?: string }).code, 'witness_quorum_not_met');
    assert.match(err.message, /1 of the 2 .*missing: w2\.example, w3\.example/);
    assert.equal(code(() => verifyCheckpoint(signed, log.verifier(), { witnesses: wv, quorum: 1 })), 'witness_quorum_not_met');
    assert.equal(verifyCheckpoint(signed, log.verifier(), { witnesses: wv, quorum: 0 }).cosignatures.length, 0);
    // the same witness twice counts once
    assert.equal(code(() => verifyCheckpoint(withCosigs(1, 1), log.verifier(), { witnesses: wv, quorum: 2 })), 'witness_quorum_not_met');
    assert.equal(code(() => verifyCheckpoint(signed, log.verifier(), { witnesses: wv, quorum: 4 })), 'invalid_input');
  });

  it('a co-signature of an unknown witness is ignored; a configured witness whose co-signature is bad rejects the note by name', () => {
    const stranger = parseWitnessSignerKey(generateWitnessKey('w9.example').signerKey);
    const msg = withCosigs(0) + cosignCheckpoint(text, stranger);
    assert.equal(verifyCheckpoint(msg, log.verifier(), { witnesses: wv, quorum: 1 }).cosignatures.length, 1);
    // w2's co-signature over another checkpoint pasted onto this one
    const otherText = encodeCheckpoint({ ...c, size: 43 });
    const err = thrown(() => verifyCheckpoint(signed + cosignCheckpoint(otherText, witnesses[1]!), log.verifier(), { witnesses: wv, quorum: 1 }));
    assert.equal((err as { code?: string }).code, 'note_signature_invalid');
    assert.match(err.message, /w2\.example/);
    // a changed timestamp breaks the signature: it is signed
    const line = cosignCheckpoint(text, witnesses[0]!);
    const raw = Buffer.from(line.slice(line.lastIndexOf(' ') + 1).trim(), 'base64');
    raw[11] = raw[11]! ^ 1;
    const retimed = `${line.slice(0, line.lastIndexOf(' ') + 1)}${raw.toString('base64')}\n`;
    assert.equal(code(() => verifyCheckpoint(signed + retimed, log.verifier(), { witnesses: wv, quorum: 1 })), 'note_signature_invalid');
  });

  it('a co-signature does not stand in for the log signature, nor a log signature for a co-signature', () => {
    const cosigOnly = `${text}\n${cosignCheckpoint(text, witnesses[0]!)}`;
    assert.equal(code(() => verifyCheckpoint(cosigOnly, log.verifier(), { witnesses: wv, quorum: 1 })), 'note_unverified');
    // the witness's Ed25519 key signing the plain text under its witness name and ID is not a co-signature
    const w = cosignatureVerifier('w1.example', wv[0]!.publicKey);
    assert.equal(w.keyId, wv[0]!.keyId);
    assert.equal(w.verify(utf8.encode(text), new Uint8Array(72)), false);
    assert.equal(code(() => verifyCheckpoint(signed, log.verifier(), { witnesses: [log.verifier()], quorum: 1 })), 'invalid_input');
  });

  it("the log adds a witness's answer to its checkpoint; a newer co-signature replaces the witness's older one", () => {
    const later = parseWitnessSignerKey(witnessKeys[0]!.signerKey, () => 1700000100);
    let note = addSignatureLines(signed, cosignCheckpoint(text, witnesses[0]!) + cosignCheckpoint(text, witnesses[1]!));
    note = addSignatureLines(note, cosignCheckpoint(text, later));
    assert.equal(parseNote(note).signatures.length, 3);
    const v = verifyCheckpoint(note, log.verifier(), { witnesses: wv, quorum: 2 });
    assert.deepEqual(v.cosignatures.map((x) => [x.name, x.timestamp]).sort(), [['w1.example', 1700000100], ['w2.example', 1700000000]]);
    for (const bad of ['', 'no newline', '— w1.example AAAA\n', 'not a line\n']) assert.equal(code(() => addSignatureLines(signed, bad)), 'note_malformed', bad);
  });

  it('open(cosign(checkpoint)) holds for any checkpoint and time', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (size, t) => {
        const body = encodeCheckpoint({ ...c, size, rootHash: randomBytes(32) });
        const w = parseWitnessSignerKey(witnessKeys[0]!.signerKey, () => t);
        const msg = `${signNote(body, log)}${cosignCheckpoint(body, w)}`;
        const v = verifyCheckpoint(msg, log.verifier(), { witnesses: [wv[0]!], quorum: 1 });
        assert.equal(v.cosignatures[0]!.timestamp, t);
      }),
      { numRuns: 25 },
    );
  });
});
