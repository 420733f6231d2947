/**
 * Fixtures for holder tests: a temp holder directory with enrolled primary and operator, a scheme
 * (sealed share + signed manifest) for that holder, vault bytes of any generation, signed inject
 * calls, a fetch over fastify inject, and a snapshot of the state files.
 */
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { randomBytes } from '../../src/crypto/random.js';
import { seal } from '../../src/crypto/sealedbox.js';
import { createHolderApp, type HolderAppDeps } from '../../src/holder/server.js';
import { HolderService } from '../../src/holder/service.js';
import { encodePublicIdentity, generateIdentity, type Identity, identityFingerprint, parsePublicIdentity } from '../../src/identity.js';
import { type Manifest, signManifest } from '../../src/recovery/manifest.js';
import { possessionPublicKey } from '../../src/recovery/possession.js';
import { encodeSharePayload } from '../../src/recovery/sealed-share.js';
import { toB64, toHex, utf8 } from '../../src/util/bytes.js';
import { signRequest } from '../../src/util/request-auth.js';
import { masterFingerprint, sealVault } from '../../src/vault/format.js';
import { trackedTempDir } from './tmp.js';

/** A fresh temp directory, removed after the test file (test/helpers/tmp.ts). */
export function tempDir(prefix = 'lifeboat-test-'): string {
  return trackedTempDir(prefix);
}

/** Any string serves as the mnemonic: a holder never combines shares. */
export const TEST_MNEMONIC = 'academic acid acrobat romp chubby cylinder';

export interface TestScheme {
  schemeId: Uint8Array;
  schemeHex: string;
  master: Uint8Array;
  memberIndex: number;
  mnemonic: string;
  payload: Uint8Array;
  sealedShare: Uint8Array;
  manifest: Manifest;
}

/** A 2-of-3 scheme whose member `memberIndex` is sealed to `holderToken`, signed by `primary`. */
export function makeScheme(opts: { primary: Identity; holderToken: string; operators?: Identity[]; memberIndex?: number; mnemonic?: string; schemeId?: Uint8Array }): TestScheme {
  const schemeId = opts.schemeId ?? randomBytes(16);
  const memberIndex = opts.memberIndex ?? 0;
  const mnemonic = opts.mnemonic ?? TEST_MNEMONIC;
  const holder = parsePublicIdentity(opts.holderToken);
  const master = randomBytes(32);
  const payload = encodeSharePayload({ schemeId, memberIndex, mnemonic });
  const sealedShare = seal(payload, holder.boxPublicKey);
  const others = [0, 1, 2].filter((i) => i !== memberIndex);
  const manifest = signManifest(
    {
      version: 1,
      type: 'lifeboat-recovery-manifest',
      scheme_id: toHex(schemeId),
      created_at: new Date().toISOString(),
      threshold: 2,
      share_count: 3,
      slip39_identifier: 1234,
      slip39_iteration_exponent: 1,
      passphrase_protected: false,
      master_fingerprint: toHex(masterFingerprint(master, schemeId)),
      primary: encodePublicIdentity(opts.primary),
      operators: (opts.operators ?? []).map((o) => encodePublicIdentity(o)),
      members: [
        {
          member_index: memberIndex,
          kind: 'holder',
          url: 'http://127.0.0.1:7301',
          holder: opts.holderToken,
          fingerprint: identityFingerprint(holder),
          sealed_share_sha256: toHex(sha256(sealedShare)),
          possession_key: toB64(possessionPublicKey(schemeId, mnemonic)),
        },
        ...others.map((i) => ({ member_index: i, kind: 'offline' as const, possession_key: toB64(possessionPublicKey(schemeId, `other ${i}`)) })),
      ],
    },
    opts.primary,
  );
  return { schemeId, schemeHex: toHex(schemeId), master, memberIndex, mnemonic, payload, sealedShare, manifest };
}

/** Vault bytes of `generation` for a scheme (empty contents). */
export function makeVault(scheme: Pick<TestScheme, 'schemeId' | 'master'>, generation: number): Uint8Array {
  return sealVault({ entries: new Map() }, scheme.master, scheme.schemeId, generation - 1);
}

export interface HolderFixture {
  dir: string;
  primary: Identity;
  operator: Identity;
  /** A key that is not enrolled anywhere. */
  stranger: Identity;
  service: HolderService;
  app: FastifyInstance;
  token: string;
  fingerprint: string;
  /** The service's clock is Date.now() + clock.offsetMs; tests may move it. */
  clock: { offsetMs: number };
  close(): Promise<void>;
}

/** Initialises a holder in a temp dir and opens it with an inject-ready app. */
export async function holderFixture(opts: { autoUnseal?: boolean; app?: Omit<HolderAppDeps, 'service'> } = {}): Promise<HolderFixture> {
  const dir = tempDir('lifeboat-holder-');
  const primary = generateIdentity('primary');
  const operator = generateIdentity('operator');
  const stranger = generateIdentity('operator');
  HolderService.init(dir, { primary: encodePublicIdentity(primary), operators: [encodePublicIdentity(operator)], autoUnseal: opts.autoUnseal ?? true });
  const clock = { offsetMs: 0 };
  const service = HolderService.open(dir, { now: () => Date.now() + clock.offsetMs });
  const app = createHolderApp({ service, ...opts.app });
  await app.ready();
  const fixture: HolderFixture = {
    dir,
    primary,
    operator,
    stranger,
    service,
    app,
    token: service.token,
    fingerprint: service.fingerprint,
    clock,
    // closes whatever app and service the fixture holds now (tests may reopen them)
    close: async () => {
      await fixture.app.close();
      fixture.service.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fixture;
}

/** Injects a request signed by `signer` (or unsigned when null), JSON body when given. */
export function signedInject(
  app: FastifyInstance,
  signer: Identity | null,
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  url: string,
  body?: unknown,
  opts: { now?: number; headers?: Record<string, string>; rawBody?: string } = {},
): Promise<LightMyRequestResponse> {
  const payload = opts.rawBody ?? (body === undefined ? undefined : JSON.stringify(body));
  const headers: Record<string, string> = {};
  if (payload !== undefined) headers['content-type'] = 'application/json';
  if (signer) headers.authorization = signRequest(signer, method, url, utf8.encode(payload ?? ''), opts.now);
  return app.inject({ method, url, headers: { ...headers, ...opts.headers }, payload });
}

/** A fetch that goes through fastify's inject (lets HolderClient run without a port). */
export function injectFetch(app: FastifyInstance): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((v, k) => (headers[k] = v));
    const res = await app.inject({
      method: (init?.method ?? 'GET') as 'GET',
      url: url.pathname + url.search,
      headers,
      payload: init?.body ? Buffer.from(init.body as Uint8Array) : undefined,
    });
    const out = new Headers();
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out.set(k, String(v));
    return new Response(res.rawPayload, { status: res.statusCode, headers: out });
  }) as typeof fetch;
}

/**
 * Every state file under a holder directory and its bytes, except the audit log and the nonce file
 * (which record refusals by design) and the lock.
 */
export function snapshotState(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (!['audit.log', 'http-nonces.json', 'lock'].includes(name)) out.set(relative(dir, p), readFileSync(p).toString('base64'));
    }
  };
  walk(dir);
  return out;
}

/** Parses a JSON answer body. */
export function json<T = Record<string, unknown>>(res: LightMyRequestResponse): T {
  return JSON.parse(res.body) as T;
}
