/**
 * Deleting one key share from a key node (docs/keynode.md, "Deleting a key share"): `DELETE
 * /v1/keys/{key_id}`, for an operator API key only (least privilege: a client key, which may sign with
 * the key, may not destroy it). The store deletes the key and its unused nonces in one transaction and
 * journals `key_delete` to the backup stream, as any key change, so a node restored from its backup
 * does not bring the key back. Used to remove an orphan share (`lifeboat key delete`, and `ers recover
 * --reshare-to` rolling back a deal that failed midway).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { NotFoundError } from '../errors.js';
import { parseInput } from '../http/app.js';
import { toHex } from '../util/bytes.js';
import { API_PREFIX, keyParams } from './api.js';
import { NODE_CALLER } from './caller.js';
import type { KeyNodeService } from './service.js';
import type { KeyNodeStore } from './store/types.js';

/** What the route answers: the public facts of the share it deleted. */
export interface DeletedKey {
  deleted: true;
  key_id: string;
  curve: string;
  identifier: string;
  group_public_key: string;
  tenant: string;
  origin: string;
}

/**
 * Deletes the key `keyId` (any tenant's: the caller is an operator). Throws NotFoundError
 * `key_id_not_exists` (404) when the node holds no such key, also when another request deleted it first.
 */
export async function deleteKeyShare(service: KeyNodeService, store: KeyNodeStore, keyId: string): Promise<DeletedKey> {
  const rec = await service.keyRecord(keyId, NODE_CALLER);
  if (!(await store.deleteKey(rec.keyId))) throw new NotFoundError(`key ${rec.keyId} does not exist on this node`, 'key_id_not_exists');
  return { deleted: true, key_id: rec.keyId, curve: rec.curve, identifier: rec.identifier, group_public_key: toHex(rec.groupPublicKey), tenant: rec.tenant, origin: rec.origin };
}

/**
 * Registers `DELETE /v1/keys/{key_id}`. `operator` authenticates the request as an operator's (throws
 * `unauthorized` 401, `wrong_role` 403 for a client key) before anything is read or deleted.
 */
export function registerDeleteKeyRoute(app: FastifyInstance, deps: { service: KeyNodeService; store: KeyNodeStore }, operator: (req: FastifyRequest) => Promise<unknown>): void {
  app.delete(`${API_PREFIX}/keys/:key_id`, async (req): Promise<DeletedKey> => {
    await operator(req);
    const { key_id } = parseInput(keyParams, req.params, 'path');
    return deleteKeyShare(deps.service, deps.store, key_id);
  });
}
