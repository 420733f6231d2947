/**
 * The one fetch every Lifeboat client goes through (key nodes, holders, the backup service, logs,
 * witnesses, coverage): docs/operations.md, "TLS".
 *   - An https:// URL is verified against the CA file the operator names (`--ca-file FILE`, then
 *     $LIFEBOAT_CA_FILE, or a per-peer `ca_file` in node.json or a fleet file), on top of the system's
 *     roots, with one keep-alive undici Agent per CA file for the whole process.
 *   - A certificate the client cannot trust (unknown CA, expired, another host's name) or a failed
 *     handshake becomes a typed error (`tls_untrusted`, `tls_cert_expired`, `tls_hostname_mismatch`,
 *     `tls_handshake_failed`) naming the URL, with a hint, instead of fetch's bare "fetch failed".
 *   - A bearer credential sent over plain http:// to an address that is not loopback gets one warning
 *     line on stderr (`plain_http_bearer`), once per origin.
 * undici is loaded only once a CA file is in use, so commands that never name one load none of it.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Dispatcher } from 'undici';
import { LifeboatError } from '../errors.js';

export const CA_FILE_ENV = 'LIFEBOAT_CA_FILE';
export const CA_FILE_HELP = 'PEM file of the CA (or certificates) to trust for https:// servers, besides the system roots (default: $LIFEBOAT_CA_FILE)';

let processCaFile: string | undefined;
const agents = new Map<string, Dispatcher>();
const warned = new Set<string>();
let warnLine: (line: string) => void = (line) => void process.stderr.write(`lifeboat: warning: ${line}\n`);

/** Sets the CA file of this process (the CLI's `--ca-file`); undefined falls back to $LIFEBOAT_CA_FILE. */
export function setProcessCaFile(file: string | undefined): void {
  processCaFile = file || undefined;
}

/** Where the `plain_http_bearer` warning goes (a server's logger); stderr by default. */
export function setTlsWarningSink(sink: (line: string) => void): void {
  warnLine = sink;
}

/** The CA file in force for a peer: its own, else the process's (`--ca-file`), else $LIFEBOAT_CA_FILE. */
export function caFileFor(own?: string | null): string | undefined {
  return own || processCaFile || process.env[CA_FILE_ENV] || undefined;
}

/**
 * The PEM bytes of a CA file, checked to hold at least one certificate. Throws LifeboatError
 * `ca_file_unreadable` or `ca_file_invalid` (status 400).
 */
export function readCaFile(file: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new LifeboatError('ca_file_unreadable', `cannot read the ca file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { status: 400, hint: 'give --ca-file (or LIFEBOAT_CA_FILE) a readable PEM file of the CA that signed the server certificates' });
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new LifeboatError('ca_file_invalid', `the ca file ${file} holds no PEM certificate`, { status: 400, hint: 'the file must hold "-----BEGIN CERTIFICATE-----" blocks (the CA certificate, not its key)' });
  }
  return pem;
}

async function agentFor(file: string): Promise<Dispatcher> {
  const known = agents.get(file);
  if (known) return known;
  const ca = readCaFile(file);
  // undici is CommonJS: bundled (dist/), its exports arrive under `default`; through tsx, by name too
  const undici = (await import('undici')) as typeof import('undici') & { default?: typeof import('undici') };
  const Agent = undici.default?.Agent ?? undici.Agent;
  const agent = new Agent({ connect: { ca } });
  agents.set(file, agent);
  return agent;
}

/** 127.0.0.0/8, ::1 and localhost: where a bearer token over plain http never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return mapped !== null && mapped[1]!.startsWith('127.');
}

function carriesBearer(headers: RequestInit['headers']): boolean {
  if (!headers) return false;
  const h = new Headers(headers);
  return /^bearer\s/i.test(h.get('authorization') ?? '') || h.has('cookie');
}

function warnPlainBearer(url: URL): void {
  if (warned.has(url.origin)) return;
  warned.add(url.origin);
  warnLine(`a bearer credential goes to ${url.origin} over plain http: anyone on the path can read and replay it; serve it with --tls-cert/--tls-key (or behind a TLS proxy) and use https:// (plain_http_bearer)`);
}

/** The plain_http_bearer warning, for a client that does not go through tlsFetch (src/util/http-agent.ts). */
export function warnIfPlainBearer(url: URL, headers: RequestInit['headers']): void {
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname) && carriesBearer(headers)) warnPlainBearer(url);
}

const UNTRUSTED = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE', 'CERT_REJECTED', 'INVALID_CA']);
const CA_HINT = 'give the CA that signed its certificate with --ca-file FILE (or LIFEBOAT_CA_FILE)';

/** A fetch failure that is about TLS, as a typed error; undefined for anything else. */
export function tlsFailure(err: unknown, url: string): LifeboatError | undefined {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } })?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : '';
  const origin = (() => {
    try {
      return new URL(url).origin;
    } catch {
      return url;
    }
  })();
  if (UNTRUSTED.has(code)) return new LifeboatError('tls_untrusted', `the certificate of ${origin} is not signed by a trusted ca: ${code.toLowerCase()}`, { status: 502, hint: CA_HINT });
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return new LifeboatError('tls_cert_expired', `the certificate of ${origin} is ${code === 'CERT_HAS_EXPIRED' ? 'expired' : 'not yet valid'}`, { status: 502, hint: 'the server needs a current certificate (check its dates and this machine’s clock)' });
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return new LifeboatError('tls_hostname_mismatch', `the certificate of ${origin} is not for that host name`, { status: 502, hint: 'use the name or address the certificate was issued for (its subjectAltName)' });
  if (code === 'EPROTO' || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) {
    return new LifeboatError('tls_handshake_failed', `no tls handshake with ${origin}`, { status: 502, hint: 'is the server started with --tls-cert/--tls-key? a plain server takes http://' });
  }
  return undefined;
}

/**
 * fetch with the operator's CA for https:// (see the file comment). `caFile` overrides the process's
 * for this peer. Throws LifeboatError `tls_untrusted`, `tls_cert_expired`, `tls_hostname_mismatch`,
 * `tls_handshake_failed`, `ca_file_unreadable` or `ca_file_invalid`; anything else fetch throws
 * (a refused connection, a timeout) comes through unchanged for the caller to map.
 */
export async function tlsFetch(input: string | URL, init: RequestInit = {}, opts: { caFile?: string | null } = {}): Promise<Response> {
  const url = new URL(input);
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname) && carriesBearer(init.headers)) warnPlainBearer(url);
  const file = url.protocol === 'https:' ? caFileFor(opts.caFile) : undefined;
  const dispatcher = file ? await agentFor(file) : undefined;
  try {
    return await fetch(url, dispatcher ? ({ ...init, dispatcher } as RequestInit) : init);
  } catch (err) {
    throw tlsFailure(err, url.href) ?? err;
  }
}

/**
 * A `typeof fetch` over tlsFetch, for the clients that take a fetch implementation. It takes a URL
 * (string or URL) and `init`; a Request object is refused (TypeError), since its body would be lost.
 */
export function fetchWithCa(caFile?: string | null): typeof fetch {
  return ((input: string | URL | Request, init?: RequestInit) => {
    if (input instanceof Request) return Promise.reject(new TypeError('fetchWithCa takes a url and init, not a Request'));
    return tlsFetch(input, init, { caFile });
  }) as typeof fetch;
}
