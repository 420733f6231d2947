/**
 * The store side of a streamed restore (types.ts StoreImport, KeyNodeStore.beginImport): one
 * transaction, held open across the import, that writes batch after batch of key rows. On SQLite the
 * rows go through prepared statements run on the store's own connection (better-sqlite3 binds and
 * steps one row in microseconds; kysely would compile and bind a multi-row statement per page), on
 * PostgreSQL through multi-row INSERTs of up to PG_ROWS rows (one round trip per page).
 *
 * One transaction rather than one per batch: a rollback, or a process killed at any instant, leaves the
 * store exactly as empty as it was (PostgreSQL and SQLite undo an unfinished transaction themselves),
 * so an external PostgreSQL store never keeps half a restore that would make the retry fail with
 * store_not_empty; SQLite syncs once, at the commit.
 */
import type Database from 'better-sqlite3';
import type { ControlledTransaction } from 'kysely';
import { InvalidInputError } from '../../errors.js';
import { guarded, StoreOps } from './queries.js';
import { apiKeyToRow, checkId, checkKeyStatus, checkMillis, checkText, keyToRow } from './records.js';
import type { KeysTable, StoreSchema } from './schema.js';
import type { ApiKeyRecord, KeyRecord, KeyStatus, MetaEntry, StoreImport } from './types.js';

/** Rows per INSERT on PostgreSQL: 14 parameters a key row, well under the protocol's 65,535. */
const PG_ROWS = 1000;
const KEY_COLUMNS = [
  'key_id',
  'curve',
  'threshold',
  'max_signers',
  'identifier',
  'group_public_key',
  'public_package',
  'encrypted_share',
  'status',
  'origin',
  'created_at',
  'tenant',
  'ers_policy',
  'epoch',
] as const satisfies readonly (keyof KeysTable)[];

export function duplicate(keyId: string): InvalidInputError {
  return new InvalidInputError(`the restore repeats key id ${keyId}`, {
    code: 'duplicate_key_id',
    hint: 'a backup holds each key once; this one was altered or mixed with another: nothing was restored',
  });
}

/** The rows of `keys`, each checked (keyToRow); throws `duplicate_key_id` for an id repeated among them. */
export function keyRows(keys: readonly KeyRecord[]): KeysTable[] {
  if (!Array.isArray(keys)) throw new InvalidInputError('keys must be an array');
  const rows = keys.map(keyToRow);
  const seen = new Set<string>();
  for (const r of rows) {
    if (seen.has(r.key_id)) throw duplicate(r.key_id);
    seen.add(r.key_id);
  }
  return rows;
}

/** The SQLite statements of an import, prepared once on the store's connection. */
function sqliteStatements(conn: Database.Database) {
  const cols = KEY_COLUMNS.join(', ');
  const params = KEY_COLUMNS.map(() => '?').join(', ');
  const update = KEY_COLUMNS.slice(1)
    .map((c) => `${c} = excluded.${c}`)
    .join(', ');
  return {
    insert: conn.prepare(`insert into keys (${cols}) values (${params}) on conflict (key_id) do nothing`),
    upsert: conn.prepare(`insert into keys (${cols}) values (${params}) on conflict (key_id) do update set ${update}`),
  };
}

const rowValues = (r: KeysTable) => KEY_COLUMNS.map((c) => r[c]);

/**
 * The StoreImport of `trx` (begun by the store, which checked it empty). `sqlite`: the store's one
 * better-sqlite3 connection, which `trx` holds (kysely's driver lets nothing else run on it until the
 * transaction ends); absent on PostgreSQL. Throws nothing itself; its methods throw as StoreImport says.
 */
export function openStoreImport(trx: ControlledTransaction<StoreSchema>, sqlite?: Database.Database): StoreImport {
  const stmts = sqlite ? sqliteStatements(sqlite) : undefined;
  let ended = false;
  const live = () => {
    if (ended) throw new InvalidInputError('this import has ended');
  };

  async function insertKeys(keys: readonly KeyRecord[]): Promise<void> {
    live();
    const rows = keyRows(keys);
    if (stmts) {
      await guarded(async () => {
        for (const r of rows) if (stmts.insert.run(...rowValues(r)).changes === 0) throw duplicate(r.key_id);
      });
      return;
    }
    for (let i = 0; i < rows.length; i += PG_ROWS) {
      const page = rows.slice(i, i + PG_ROWS);
      const done = await guarded(() =>
        trx
          .insertInto('keys')
          .values(page)
          .onConflict((oc) => oc.column('key_id').doNothing())
          .returning('key_id')
          .execute(),
      );
      if (done.length < page.length) {
        const inserted = new Set(done.map((d) => d.key_id));
        throw duplicate(page.find((r) => !inserted.has(r.key_id))!.key_id);
      }
    }
  }

  async function putKeys(keys: readonly KeyRecord[]): Promise<void> {
    live();
    const rows = keyRows(keys);
    if (stmts) {
      await guarded(async () => {
        for (const r of rows) stmts.upsert.run(...rowValues(r));
      });
      return;
    }
    for (let i = 0; i < rows.length; i += PG_ROWS) {
      const page = rows.slice(i, i + PG_ROWS);
      await guarded(() =>
        trx
          .insertInto('keys')
          .values(page)
          .onConflict((oc) => oc.column('key_id').doUpdateSet((eb) => Object.fromEntries(KEY_COLUMNS.slice(1).map((c) => [c, eb.ref(`excluded.${c}`)]))))
          .execute(),
      );
    }
  }

  return {
    tx: new StoreOps(trx),
    insertKeys,
    putKeys,
    async setKeyStatus(keyId: string, status: KeyStatus) {
      live();
      checkId(keyId, 'keyId');
      checkKeyStatus(status);
      await guarded(() => trx.updateTable('keys').set({ status }).where('key_id', '=', keyId).execute());
    },
    async deleteKey(keyId: string) {
      live();
      checkId(keyId, 'keyId');
      await guarded(() => trx.deleteFrom('keys').where('key_id', '=', keyId).execute());
    },
    async putApiKeys(apiKeys: readonly ApiKeyRecord[]) {
      live();
      const rows = apiKeys.map(apiKeyToRow);
      for (const r of rows) {
        await guarded(() =>
          trx
            .insertInto('api_keys')
            .values(r)
            .onConflict((oc) => oc.column('id').doUpdateSet({ secret_hash: r.secret_hash, role: r.role, label: r.label, created_at: r.created_at, revoked_at: r.revoked_at, tenant: r.tenant }))
            .execute(),
        );
      }
    },
    async revokeApiKey(id: string, at: number) {
      live();
      checkId(id, 'id');
      checkMillis(at, 'at');
      await guarded(() => trx.updateTable('api_keys').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).execute());
    },
    async putMeta(entries: readonly MetaEntry[]) {
      live();
      const rows = entries.map((m) => ({ key: checkText(m?.key, 'meta key', 1), value: checkText(m?.value, 'meta value') }));
      for (const r of rows) {
        await guarded(() =>
          trx
            .insertInto('meta')
            .values(r)
            .onConflict((oc) => oc.column('key').doUpdateSet({ value: r.value }))
            .execute(),
        );
      }
    },
    async countKeys() {
      live();
      const r = await guarded(() => trx.selectFrom('keys').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow());
      return Number(r.n);
    },
    async commit() {
      live();
      ended = true;
      try {
        await guarded(() => trx.commit().execute());
      } catch (err) {
        await trx.rollback().execute().catch(() => {});
        throw err;
      }
    },
    async rollback() {
      if (ended) return;
      ended = true;
      await trx.rollback().execute().catch(() => {});
    },
  };
}
