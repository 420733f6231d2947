/**
 * The key node's side of emergency recovery (docs/ers.md, "Node side"): `POST
 * /v1/keys/{key_id}/ers-part` makes this node's part for a key, inside the node, under its policy
 * (ers.enabled, the key's own ERS policy, the ERS whitelist, RSA at least 3072 bits). Registered through createKeyNodeApp's
 * `routes`; reaches the share only through KeyNodeService.withKeyShare.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ForbiddenError } from '../errors.js';
import { parseInput } from '../http/app.js';
import { fromB64, toB64, toHex } from '../util/bytes.js';
import { keyParams } from '../keynode/api.js';
import type { NodeConfig } from '../keynode/config.js';
import type { Caller } from '../keynode/caller.js';
import type { KeyNodeService } from '../keynode/service.js';
import { checkLabel, encodePart } from './format.js';
import { provePart } from './proof.js';
import { describeFingerprint, parseErsPublicKey } from './rsa.js';
import { checkErsAllowed, type ErsRecord, ersRequired, ersRecordOf, registerPackage } from './node-state.js';
import type { KeyNodeStore, KeyRecord } from '../keynode/store/types.js';

export const ersPackageBody = z.object({ package: z.string().min(1).max(8 * 1024 * 1024) });

export const ersPartBody = z.object({
  label: z.string().max(1024),
  /** The RSA public key, SPKI DER, base64. */
  ers_public: z.string().min(1).max(4096),
});

/** What the route answers. */
export interface ErsPartAnswer {
  part: string;
  identifier: string;
  verifying_share: string;
  rsa_fingerprint: string;
}

/**
 * Registers the route. The caller is a client of the key's tenant or an operator (as for the other
 * key operations). Throws (answers) ForbiddenError `ers_disabled`, `ers_disabled_for_key` (the key's
 * own policy is `off`), `ers_key_not_whitelisted`,
 * InvalidInputError `rsa_key_too_small`, `invalid_pem`, NotFoundError `key_id_not_exists`.
 */
export function registerErsRoutes(
  app: FastifyInstance,
  /** `onRegistered`: the node's durable channels hear that a verified package now holds the key (the `ers` channel). */
  deps: { service: KeyNodeService; config: NodeConfig; store: KeyNodeStore; onRegistered?: (rec: KeyRecord) => Promise<unknown> },
  auth: { caller: (req: FastifyRequest) => Promise<Caller> }): void {
  app.post('/v1/keys/:key_id/ers-part', async (req): Promise<ErsPartAnswer> => {
    const who = await auth.caller(req);
    const { key_id } = parseInput(keyParams, req.params, 'path');
    const b = parseInput(ersPartBody, req.body, 'body');
    checkLabel(b.label);
    const policy = deps.config.ers;
    checkErsAllowed(deps.config, await deps.service.keyRecord(key_id, who));
    const rsa = parseErsPublicKey(fromB64(b.ers_public, 'ers_public'));
    const fp = toHex(rsa.fingerprint);
    if (!policy.whitelist.some((w) => w.fingerprint === fp)) {
      throw new ForbiddenError(`the RSA key ${describeFingerprint(rsa.fingerprint)} is not on this node's ERS whitelist`, 'ers_key_not_whitelisted', 'an operator adds it with `lifeboat ers whitelist add --ers-public KEY.pem` and restarts the node');
    }
    return deps.service.withKeyShare(key_id, who, (key) => {
      const part = provePart({ curve: key.curve, label: b.label, groupKey: key.public.commitments[0]!, identifier: key.identifier, share: key.share, verifyingShare: key.public.verifyingShares[key.identifier]!, rsa });
      return { part: toB64(encodePart(part)), identifier: key.identifier, verifying_share: toHex(part.verifyingShare), rsa_fingerprint: describeFingerprint(rsa.fingerprint) };
    });
  });

  // Registers a package the node verifies itself (all proofs, its own group key, a whitelisted RSA
  // key): what `ers.require` and the key info go by.
  app.post('/v1/keys/:key_id/ers-package', { bodyLimit: 12 * 1024 * 1024 }, async (req): Promise<{ ers: ErsRecord }> => {
    const who = await auth.caller(req);
    const { key_id } = parseInput(keyParams, req.params, 'path');
    const b = parseInput(ersPackageBody, req.body, 'body');
    const rec = await deps.service.keyRecord(key_id, who);
    const ers = await registerPackage(deps.store, deps.config, rec, fromB64(b.package, 'package'));
    await deps.onRegistered?.(rec);
    return { ers };
  });
}

/**
 * The key info's ERS fields (beside `ers_policy`, the key's own policy or null): `ers`, the registered
 * package or null; `ers_required`, whether the key signs here only with a registered package.
 */
export async function describeErs(store: KeyNodeStore, config: NodeConfig, rec: KeyRecord): Promise<{ ers: ErsRecord | null; ers_required: boolean }> {
  return { ers: (await ersRecordOf(store, rec)) ?? null, ers_required: ersRequired(config, rec) };
}
