/**
 * Keep-alive HTTP requests for the clients that call a server many times in a row (the SDK and the
 * CLI signing with key nodes): node:http / node:https over one keep-alive Agent per protocol for the
 * whole process, the headers and the body written together, and one timer per request for its
 * deadline. Global fetch keeps connections alive too, but costs several times more per request
 * (a web stream for the body, an AbortSignal per timeout): on loopback about 70-200 µs a request
 * here against 250-500 µs (bench/keynode.ts measures what it does to signing).
 *
 * An idle socket is unreferenced by its Agent, so a kept connection never holds a process open; the
 * server's `Keep-Alive: timeout=` hint closes it on this side before the server does.
 */
import http from 'node:http';
import https from 'node:https';

/** What a request answered: the status and the whole body as text. */
export interface KeepAliveAnswer {
  status: number;
  ok: boolean;
  text: string;
}

export interface KeepAliveRequest {
  method: string;
  headers: Record<string, string>;
  body?: Uint8Array;
  /** The deadline of the whole request, answer included. */
  timeoutMs: number;
  /** The largest answer read (default 64 MiB); a longer one fails as `answer_too_large`. */
  maxBytes?: number;
}

/** Why a request failed: `timeout`, `answer_too_large`, or the socket's own error code (ECONNREFUSED, …). */
export class KeepAliveRequestError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KeepAliveRequestError';
  }
}

const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
let agents: { http: http.Agent; https: https.Agent } | undefined;

/** The process's keep-alive Agents, made on first use. */
export function keepAliveAgents(): { http: http.Agent; https: https.Agent } {
  agents ??= { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  return agents;
}

/**
 * Sends one request over a kept connection to `url` (http: or https:, the system's CAs) and reads
 * the whole answer. Never throws; rejects with KeepAliveRequestError (a refused or reset connection,
 * the deadline passed, an answer over maxBytes) or TypeError for a URL of another protocol.
 */
export function keepAliveRequest(url: string, req: KeepAliveRequest): Promise<KeepAliveAnswer> {
  return new Promise((resolve, reject) => {
    let target: URL;
    try {
      target = new URL(url);
      if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new TypeError(`not an http(s) url: ${target.protocol}`);
    } catch (err) {
      reject(err);
      return;
    }
    const secure = target.protocol === 'https:';
    const headers: Record<string, string | number> = { ...req.headers, 'content-length': req.body?.length ?? 0 };
    const options = { method: req.method, headers, agent: secure ? keepAliveAgents().https : keepAliveAgents().http };
    const max = req.maxBytes ?? DEFAULT_MAX_BYTES;
    let settled = false;
    // Settles once; a failed request's socket is destroyed (never handed back to the agent).
    const fail = (err: KeepAliveRequestError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(err);
      outgoing.destroy();
    };
    const outgoing = (secure ? https : http).request(target, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > max) fail(new KeepAliveRequestError('answer_too_large', `the answer is over ${max} bytes`));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        resolve({ status, ok: status >= 200 && status < 300, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (err: NodeJS.ErrnoException) => fail(new KeepAliveRequestError(err.code ?? 'error', err.message)));
    });
    const timer = setTimeout(() => fail(new KeepAliveRequestError('timeout', `no answer in ${req.timeoutMs} ms`)), req.timeoutMs);
    outgoing.on('error', (err: NodeJS.ErrnoException) => fail(new KeepAliveRequestError(err.code ?? 'error', err.message)));
    // With a body, end(body) writes it with the headers: one segment, one wake-up of the server.
    outgoing.end(req.body);
  });
}
