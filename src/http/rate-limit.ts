/**
 * A small in-memory rate limiter: a fixed window counter per (client IP, route). Enough to slow down
 * guessing and flooding on one process; it is not shared between processes, and behind a reverse
 * proxy it needs the app's `trustProxy` so that it counts clients rather than the proxy.
 */
import type { FastifyRequest } from 'fastify';
import { LifeboatError } from '../errors.js';

/**
 * 429 `rate_limited`. `firstInWindow` is true for the first refusal of a client in a window. `shared`:
 * the limit counts everyone's requests (anyone can fill it), so waiting out Retry-After promises nothing;
 * the answer says so in its `Lifeboat-Rate-Limit: shared` header (`own` otherwise).
 */
export class RateLimitedError extends LifeboatError {
  readonly retryAfterSeconds: number;
  readonly firstInWindow: boolean;
  readonly shared: boolean;

  constructor(retryAfterSeconds: number, firstInWindow: boolean, hint?: string, shared = false) {
    super('rate_limited', 'too many requests', { status: 429, hint: `retry in ${retryAfterSeconds} s${hint ? `, or ${hint}` : ''}` });
    this.retryAfterSeconds = retryAfterSeconds;
    this.firstInWindow = firstInWindow;
    this.shared = shared;
  }
}

export interface RateLimit {
  /** Requests allowed per window and key. */
  max: number;
  windowMs: number;
}

interface Bucket {
  start: number;
  count: number;
}

/** Counts requests per key in fixed windows; memory is bounded by `maxKeys`. */
export class RateLimiter {
  private buckets = new Map<string, Bucket>();

  constructor(
    private readonly limit: RateLimit,
    private readonly maxKeys = 10_000,
    private readonly now: () => number = Date.now,
    /** The key counts everyone's requests (an account name from anywhere): RateLimitedError `shared`. */
    private readonly shared = false,
  ) {
    if (!(limit.max >= 1) || !(limit.windowMs >= 1)) throw new RangeError('rate limit max and windowMs must be >= 1');
  }

  /**
   * Counts one request for `key`. Throws RateLimitedError when the key is over its limit; `hint` (what
   * else the caller can do) is added to its own.
   */
  hit(key: string, hint?: string): void {
    const now = this.now();
    let b = this.buckets.get(key);
    if (!b || now - b.start >= this.limit.windowMs) {
      if (!b) this.makeRoom(now);
      b = { start: now, count: 0 };
      this.buckets.set(key, b);
    }
    b.count++;
    if (b.count > this.limit.max) {
      const retry = Math.max(1, Math.ceil((b.start + this.limit.windowMs - now) / 1000));
      throw new RateLimitedError(retry, b.count === this.limit.max + 1, hint, this.shared);
    }
  }

  private makeRoom(now: number): void {
    if (this.buckets.size < this.maxKeys) return;
    for (const [k, b] of this.buckets) if (now - b.start >= this.limit.windowMs) this.buckets.delete(k);
    // Still full of live windows: forget the oldest ones (a flood from many addresses).
    for (const k of this.buckets.keys()) {
      if (this.buckets.size < this.maxKeys) break;
      this.buckets.delete(k);
    }
  }
}

/**
 * A fastify `onRequest` hook that counts each request under (client IP, route URL pattern).
 * Refusals throw RateLimitedError, which the base error handler answers with 429 and Retry-After.
 */
export function rateLimitHook(limit: RateLimit, now?: () => number): (req: FastifyRequest) => Promise<void> {
  const limiter = new RateLimiter(limit, 10_000, now);
  return async (req) => {
    limiter.hit(`${req.ip} ${req.routeOptions.url ?? '?'}`);
  };
}
