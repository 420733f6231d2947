/** The reusable HTTP base for Lifeboat services (share holder, key node, backup service). */
export { createBaseApp, DEFAULT_BODY_LIMIT, describeZodError, parseInput, requestBodyBytes, toErrorAnswer, type BaseAppOptions, type Refusal } from './app.js';
export { verifySignedRequest, type NonceStore, type VerifySignedOptions } from './auth.js';
export { RateLimitedError, RateLimiter, rateLimitHook, type RateLimit } from './rate-limit.js';
export { listen, parseListenAddress, type ListenAddress } from './listen.js';
export { loadTls, reloadTls, servesTls, tlsFilesOf, type TlsFiles, type TlsMaterial } from './tls.js';
export { installObservability, isLoopback, metricsTokenFromEnv, type GaugeSpec, type ObserveOptions, type ReadyCheck, type ServerKind } from './observe.js';
