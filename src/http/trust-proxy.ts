/**
 * `--trust-proxy` values (docs/holder.md, "Behind a proxy"), apart from app.ts so that the CLI's option
 * parsers load no server.
 */
import { isIP } from 'node:net';
import { InvalidInputError } from '../errors.js';

/**
 * Which proxies' X-Forwarded-For to believe: `false` for none; a hop count N (the client is the N-th
 * address from the right of socket peer and X-Forwarded-For, so whatever a client puts on the left of
 * the header is ignored); or the proxies' addresses (IPs, CIDR ranges, `loopback`, `linklocal`,
 * `uniquelocal`), believed only when the socket's peer is one of them. Never "every hop".
 */
export type TrustProxy = false | number | string[];

const MAX_PROXY_HOPS = 16;
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isProxyAddress(s: string): boolean {
  if (PROXY_RANGE_NAMES.has(s) || isIP(s) !== 0) return true;
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return false;
  const kind = isIP(m[1]!);
  return kind !== 0 && Number(m[2]) <= (kind === 4 ? 32 : 128);
}

/**
 * Parses a `--trust-proxy` value: a hop count (1 to 16) or a comma-separated list of proxy addresses
 * (IPs, CIDR ranges, `loopback`, `linklocal`, `uniquelocal`). Throws InvalidInputError
 * `invalid_trust_proxy` otherwise.
 */
export function parseTrustProxy(value: string): Exclude<TrustProxy, false> {
  const bad = () =>
    new InvalidInputError(`--trust-proxy ${value} is neither a hop count nor a list of proxy addresses`, {
      code: 'invalid_trust_proxy',
      hint: `give the number of proxies in front (1 to ${MAX_PROXY_HOPS}), or their addresses: e.g. 1, 127.0.0.1 or 10.0.0.0/8,loopback`,
    });
  const v = value.trim();
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    if (hops < 1 || hops > MAX_PROXY_HOPS) throw bad();
    return hops;
  }
  const list = v.split(',').map((a) => a.trim());
  if (list.length === 0 || !list.every(isProxyAddress)) throw bad();
  return list;
}
