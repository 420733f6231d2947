/**
 * The CLI's writer of a node recovered from the log (recover-write.ts): every key into the node's store
 * (checked again as stored, nonce epoch 1 of an empty nonce table), and the log recorded as the channel
 * that holds each key at its epoch (`node status --keys` shows the entry).
 */
import { restoreNodeBackup } from '../keynode/backup.js';
import { openKeyNodeStore } from '../keynode/store/index.js';
import type { RecoveredNodeWriter } from './recover-write.js';

export const writeNodeStore: RecoveredNodeWriter = async (parts, storeUrl) => {
  const store = await openKeyNodeStore(storeUrl ?? parts.paths.defaultStore);
  try {
    const { epoch } = await restoreNodeBackup(store, parts.secrets, { keys: parts.keys, apiKeys: [], meta: parts.meta });
    const now = Date.now();
    for (const o of parts.opened) await store.recordKeyChannel(o.key.keyId, 'log', o.record.epoch, JSON.stringify({ index: o.index, checkpoint_size: parts.checkpointSize }), [], now);
    return { epoch, snapshot: null };
  } finally {
    await store.close();
  }
};
