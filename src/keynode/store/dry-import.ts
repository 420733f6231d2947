/**
 * The StoreImport of a dry run (`node restore --dry-run`, docs/backup.md): a streamed restore's
 * importer (../restore-import.ts) checks every key as it would for a real restore, but nothing is
 * written anywhere. Each key row is checked as the store checks it (keyRows: the same fields, the same
 * `duplicate_key_id`), and only the key ids are kept, to refuse a repeated id and count the keys the
 * restore would leave: about a hundred bytes a key, not the key.
 */
import { InvalidInputError, LifeboatError } from '../../errors.js';
import { duplicate, keyRows } from './bulk-import.js';
import { apiKeyToRow, checkId, checkKeyStatus, checkMillis, checkText } from './records.js';
import type { KeyNodeStore, KeyNodeStoreTx, StoreImport } from './types.js';

/** A "store" whose imports write nothing (see the top of this file); `beginImport` never finds it non-empty. */
export function dryRunStore(): Pick<KeyNodeStore, 'beginImport'> {
  return { beginImport: async () => dryRunImport() };
}

function dryRunImport(): StoreImport {
  const ids = new Set<string>();
  let ended = false;
  const live = () => {
    if (ended) throw new InvalidInputError('this import has ended');
  };
  return {
    get tx(): KeyNodeStoreTx {
      throw new LifeboatError('internal_error', 'a dry run has no store transaction', { status: 500 });
    },
    async insertKeys(keys) {
      live();
      for (const r of keyRows(keys)) {
        if (ids.has(r.key_id)) throw duplicate(r.key_id);
        ids.add(r.key_id);
      }
    },
    async putKeys(keys) {
      live();
      for (const r of keyRows(keys)) ids.add(r.key_id);
    },
    async setKeyStatus(keyId, status) {
      live();
      checkId(keyId, 'keyId');
      checkKeyStatus(status);
    },
    async deleteKey(keyId) {
      live();
      checkId(keyId, 'keyId');
      ids.delete(keyId);
    },
    async putApiKeys(apiKeys) {
      live();
      apiKeys.forEach(apiKeyToRow);
    },
    async revokeApiKey(id, at) {
      live();
      checkId(id, 'id');
      checkMillis(at, 'at');
    },
    async putMeta(entries) {
      live();
      for (const m of entries) {
        checkText(m?.key, 'meta key', 1);
        checkText(m?.value, 'meta value');
      }
    },
    async countKeys() {
      live();
      return ids.size;
    },
    async commit() {
      live();
      ended = true;
      ids.clear();
    },
    async rollback() {
      ended = true;
      ids.clear();
    },
  };
}
