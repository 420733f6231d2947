/**
 * An encrypted PKCS#8 private key (RFC 5958 EncryptedPrivateKeyInfo) under PBES2 (RFC 8018 §6.2) with
 * scrypt (RFC 7914 §7) as the key derivation and AES-256-CBC as the cipher: what
 * `openssl pkcs8 -topk8 -scrypt` writes. Node's KeyObject.export encrypts PKCS#8 only with PBKDF2 at
 * OpenSSL's default 2048 iterations and takes no KDF parameters, so the structure is built here; any
 * OpenSSL 1.1+ (and node's createPrivateKey) opens it.
 */
import { createCipheriv, randomBytes, scryptSync } from 'node:crypto';

/** scrypt cost: N = 2^14, r = 8, p = 1 (16 MiB), OpenSSL's `-scrypt` default and within its 32 MiB decoding limit. */
export const SCRYPT_PARAMS = { N: 1 << 14, r: 8, p: 1 } as const;

const OID_PBES2 = '1.2.840.113549.1.5.13';
const OID_SCRYPT = '1.3.6.1.4.1.11591.4.11';
const OID_AES256_CBC = '2.16.840.1.101.3.4.1.42';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
function tlv(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}
const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const octets = (b: Uint8Array): Buffer => tlv(0x04, Buffer.from(b));
function int(n: number): Buffer {
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  if (bytes.length === 0 || bytes[0]! & 0x80) bytes.unshift(0);
  return tlv(0x02, Buffer.from(bytes));
}
function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const a of arcs.slice(2)) {
    const b7: number[] = [];
    for (let v = a; ; v = Math.floor(v / 128)) {
      b7.unshift((v & 0x7f) | (b7.length ? 0x80 : 0));
      if (v < 128) break;
    }
    out.push(...b7);
  }
  return tlv(0x06, Buffer.from(out));
}

/**
 * PEM `ENCRYPTED PRIVATE KEY` of the PKCS#8 DER `pkcs8`, under `passphrase` (PBES2: scrypt, AES-256-CBC,
 * a fresh 16-byte salt and IV). The derived key is wiped when done.
 */
export function encryptPkcs8Scrypt(pkcs8: Uint8Array, passphrase: string): string {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const { N, r, p } = SCRYPT_PARAMS;
  const key = scryptSync(Buffer.from(passphrase, 'utf8'), salt, 32, { N, r, p, maxmem: 64 * 1024 * 1024 });
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const encrypted = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
  key.fill(0);
  const kdf = seq(oid(OID_SCRYPT), seq(octets(salt), int(N), int(r), int(p), int(32)));
  const der = seq(seq(oid(OID_PBES2), seq(kdf, seq(oid(OID_AES256_CBC), octets(iv)))), octets(encrypted));
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${b64}\n-----END ENCRYPTED PRIVATE KEY-----\n`;
}
