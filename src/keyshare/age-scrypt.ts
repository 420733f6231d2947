/**
 * age v1's scrypt recipient and identity (age-encryption.org/v1, "The scrypt recipient type") on
 * Node's native scrypt, plugged into age-encryption's Encrypter and Decrypter as a custom recipient and
 * identity: the header, its MAC and the payload stay age-encryption's. Native scrypt costs about half
 * of the pure-JS one, and runs on libuv's thread pool, so the key-share publisher's seals in flight
 * use both cores (docs/keyshare.md, "Benchmarks").
 *
 * The stanza: `-> scrypt <base64(salt, 16 bytes)> <log2(N)>`, body = ChaCha20-Poly1305 under
 * scrypt(passphrase, "age-encryption.org/v1/scrypt" || salt, N, r = 8, p = 1, 32 bytes) with a zero
 * nonce, of the 16-byte file key. Each file gets a fresh salt: a wrapping key is never used twice,
 * which the zero nonce requires.
 */
import { scrypt } from 'node:crypto';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { base64nopad } from '@scure/base';
import { type Identity, type Recipient, Stanza } from 'age-encryption';
import { randomBytes } from '../crypto/random.js';
import { concatBytes, utf8, wipe } from '../util/bytes.js';

const LABEL = utf8.encode('age-encryption.org/v1/scrypt');
const ZERO_NONCE = new Uint8Array(12);
const R = 8;

function nativeScrypt(passphrase: Uint8Array, salt: Uint8Array, logN: number): Promise<Uint8Array> {
  const N = 2 ** logN;
  return new Promise((resolve, reject) => {
    // maxmem: scrypt needs 128 * N * r bytes (and a little more); Node's default cap is 32 MiB
    scrypt(passphrase, concatBytes(LABEL, salt), 32, { N, r: R, p: 1, maxmem: 2 * 128 * N * R + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(new Uint8Array(key.buffer, key.byteOffset, key.length))));
  });
}

/**
 * The wrapping keys one passphrase derived, by work factor and salt. An encryption derives its key
 * here and the decrypt-back check of the same seal finds it by the salt the header names, so a seal
 * runs scrypt once; a salt or work factor the encryption did not use is derived afresh. Secret: wipe().
 */
export class ScryptKeys {
  private readonly passphrase: Uint8Array;
  private readonly keys = new Map<string, Uint8Array>();

  constructor(passphrase: string) {
    this.passphrase = utf8.encode(passphrase);
  }

  async derive(salt: Uint8Array, logN: number): Promise<Uint8Array> {
    const id = `${logN}:${base64nopad.encode(salt)}`;
    const have = this.keys.get(id);
    if (have) return have;
    const key = await nativeScrypt(this.passphrase, salt, logN);
    this.keys.set(id, key);
    return key;
  }

  wipe(): void {
    for (const k of this.keys.values()) wipe(k);
    this.keys.clear();
    wipe(this.passphrase);
  }
}

/** An age recipient: the file key wrapped under the passphrase at work factor 2^logN, fresh salt. */
export class ScryptRecipient implements Recipient {
  constructor(
    private readonly keys: ScryptKeys,
    private readonly logN: number,
  ) {}

  async wrapFileKey(fileKey: Uint8Array): Promise<Stanza[]> {
    const salt = randomBytes(16);
    const key = await this.keys.derive(salt, this.logN);
    return [new Stanza(['scrypt', base64nopad.encode(salt), String(this.logN)], chacha20poly1305(key, ZERO_NONCE).encrypt(fileKey))];
  }
}

/**
 * An age identity for scrypt stanzas, with age's rules: an scrypt stanza must be the header's only
 * one, with a 16-byte salt and a canonical work factor no higher than `maxLogN`; a body that does not
 * open is not this passphrase's (null).
 */
export class ScryptIdentity implements Identity {
  constructor(
    private readonly keys: ScryptKeys,
    private readonly maxLogN: number,
  ) {}

  async unwrapFileKey(stanzas: Stanza[]): Promise<Uint8Array | null> {
    for (const s of stanzas) {
      if (s.args[0] !== 'scrypt') continue;
      if (stanzas.length !== 1) throw new Error('an scrypt stanza must be the only one in the header');
      if (s.args.length !== 3 || !/^[1-9][0-9]*$/.test(s.args[2]!)) throw new Error('invalid scrypt stanza');
      let salt: Uint8Array;
      try {
        salt = base64nopad.decode(s.args[1]!);
      } catch {
        throw new Error('invalid scrypt stanza');
      }
      const logN = Number(s.args[2]);
      if (salt.length !== 16 || s.body.length !== 32) throw new Error('invalid scrypt stanza');
      if (logN > this.maxLogN) throw new Error('scrypt work factor is too high');
      const key = await this.keys.derive(salt, logN);
      try {
        return chacha20poly1305(key, ZERO_NONCE).decrypt(s.body);
      } catch {
        return null;
      }
    }
    return null;
  }
}
