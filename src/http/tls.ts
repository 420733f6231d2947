/**
 * A server's own certificate and key (`--tls-cert FILE --tls-key FILE`, docs/operations.md, "TLS"):
 * read and checked before anything listens, so a bad pair fails the start-up with a typed error and no
 * port is bound. createBaseApp serves https with it; reloadTls swaps it on a running server (SIGHUP).
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, Server as TlsServer } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { LifeboatError, UsageError } from '../errors.js';

/** The two files a server's TLS comes from. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** What createBaseApp serves https with: the PEM bytes of the certificate (chain) and its key. */
export interface TlsMaterial extends TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/**
 * `--tls-cert` and `--tls-key` as a pair: both (TLS), or neither (plain http, undefined).
 * Throws UsageError (exit 2) when only one is given.
 */
export function tlsFilesOf(o: { tlsCert?: string; tlsKey?: string }): TlsFiles | undefined {
  if (!o.tlsCert && !o.tlsKey) return undefined;
  if (!o.tlsCert || !o.tlsKey) throw new UsageError(`--tls-cert and --tls-key go together: ${o.tlsCert ? '--tls-key' : '--tls-cert'} is missing`, { hint: 'give both (the certificate and its private key, PEM), or neither for plain http' });
  return { certFile: o.tlsCert, keyFile: o.tlsKey };
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new LifeboatError('tls_file_unreadable', `cannot read the tls ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { status: 400, hint: `check the path and that this user may read it (--tls-${what === 'certificate' ? 'cert' : 'key'})` });
  }
}

/**
 * Reads the certificate and key and checks that they parse and belong together. Throws LifeboatError
 * `tls_file_unreadable`, `tls_cert_invalid` (not a PEM certificate), `tls_key_invalid` (not a PEM
 * private key) or `tls_key_mismatch` (the key is not the certificate's). Never echoes file contents.
 */
export function loadTls(files: TlsFiles): TlsMaterial {
  const cert = readPem(files.certFile, 'certificate');
  const key = readPem(files.keyFile, 'key');
  try {
    new X509Certificate(cert);
  } catch {
    throw new LifeboatError('tls_cert_invalid', `${files.certFile} is not a pem certificate`, { status: 400, hint: 'give --tls-cert the server certificate ("-----BEGIN CERTIFICATE-----"), its chain after it' });
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    const code = String((err as NodeJS.ErrnoException).code ?? '');
    const message = String((err as Error).message ?? '');
    if (/KEY_VALUES_MISMATCH/i.test(code) || /key values mismatch/i.test(message)) {
      throw new LifeboatError('tls_key_mismatch', `the key ${files.keyFile} is not the private key of the certificate ${files.certFile}`, { status: 400, hint: 'give --tls-key the key the certificate was issued for' });
    }
    throw new LifeboatError('tls_key_invalid', `${files.keyFile} is not a usable pem private key`, { status: 400, hint: 'give --tls-key the unencrypted PEM private key ("-----BEGIN PRIVATE KEY-----")' });
  }
  return { ...files, cert, key };
}

/** True when `app` serves https (its URLs start `https://`). */
export function servesTls(app: FastifyInstance): boolean {
  return app.server instanceof TlsServer;
}

/**
 * Reads the files again and swaps the running server's certificate: new connections get the new one,
 * open ones keep theirs. Throws what loadTls throws, leaving the old certificate in place.
 */
export function reloadTls(app: FastifyInstance, files: TlsFiles): void {
  const m = loadTls(files);
  (app.server as unknown as TlsServer).setSecureContext({ cert: m.cert, key: m.key });
}

/** SIGHUP reads the certificate and key again (a renewed certificate); a bad pair keeps the old one. */
export function reloadTlsOnSighup(app: FastifyInstance, files: TlsFiles): () => void {
  const onHup = (): void => {
    try {
      reloadTls(app, files);
      app.log.info(`tls certificate reloaded from ${files.certFile}`);
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown };
      app.log.warn(`tls certificate not reloaded, the running one is kept: ${String(e.message)} (${typeof e.code === 'string' ? e.code : 'internal_error'})`);
    }
  };
  process.on('SIGHUP', onHup);
  return () => void process.off('SIGHUP', onHup);
}
