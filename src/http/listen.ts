/** Parsing `host:port` listen addresses and starting a fastify app on one. */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { InvalidInputError } from '../errors.js';
import { servesTls } from './tls.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * Parses `host:port`, `[v6]:port` or `:port` (all interfaces); port 0 asks the OS for a free one.
 * Throws InvalidInputError `invalid_listen` otherwise.
 */
export function parseListenAddress(s: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new InvalidInputError(`listen address "${s}" is not host:port`, { code: 'invalid_listen', hint: 'for example 127.0.0.1:7301, [::1]:7301 or 0.0.0.0:0' });
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Starts `app` on `address` (`host:port`, port 0 for any free one) and resolves to the URL it
 * actually listens on, `http://HOST:PORT` (`https://` when the app serves TLS: createBaseApp's `tls`). Throws InvalidInputError for a bad address and
 * LifeboatError `listen_failed` (address in use, not allowed) when the socket cannot be bound.
 */
export async function listen(app: FastifyInstance, address: string): Promise<string> {
  const { host, port } = parseListenAddress(address);
  // Fastify's own `Server listening at` lines are left out: the serve command writes one start-up line
  // with the URL, the version and what it serves (src/cli/server-log.ts).
  const level = app.log.level;
  const quieted = level === 'trace' || level === 'debug' || level === 'info';
  if (quieted) app.log.level = 'warn';
  try {
    await app.listen({ host, port });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new InvalidInputError(`cannot listen on ${address}: ${code}`, {
      code: 'listen_failed',
      hint: code === 'EADDRINUSE' ? 'another process uses that port; pick another or stop it' : 'check the address and your permissions',
    });
  } finally {
    if (quieted) app.log.level = level;
  }
  const addr = app.server.address() as AddressInfo;
  return `${servesTls(app) ? 'https' : 'http'}://${urlHost(host)}:${addr.port}`;
}
