/** The FROST domain of a key node: suites, formats, DKG, signing. No I/O. See docs/format.md (key node). */
export * from './suite.js';
export * from './errors.js';
export * from './public.js';
export * from './keyshare.js';
export * from './signing.js';
export * from './nonces.js';
export * from './dkg-messages.js';
export * from './dkg.js';
export * from './dkg-state.js';
