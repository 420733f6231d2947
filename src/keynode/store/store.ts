/**
 * The KeyNodeStore both backends share: StoreOps on the main connection(s), plus transactions and
 * snapshots. A backend supplies only how to open a consistent read transaction and how to close.
 */
import type Database from 'better-sqlite3';
import { sql } from 'kysely';
import { ConflictError, InvalidInputError } from '../../errors.js';
import { openStoreImport } from './bulk-import.js';
import { type Db, guarded, StoreOps } from './queries.js';
import { apiKeyToRow, checkId, checkText, keyToRow, rowToKey } from './records.js';
import { TABLES, type StoreSchema } from './schema.js';
import type { KeyNodeStore, KeyNodeStoreTx, NonceClaim, NonceRecord, StoreImport, StoreKind, StoreSnapshot } from './types.js';

/** Rows per page when reading a snapshot, and per INSERT when importing one. */
const PAGE = 500;

export interface Backend {
  kind: StoreKind;
  db: Db;
  /** Runs `fn` inside one read transaction that sees a single consistent state of every table. */
  readConsistent<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  /** Stores a round-one nonce its own way (SQLite: without an fsync, see ./sqlite.ts); default: StoreOps'. */
  insertNonce?(nonce: NonceRecord): Promise<void>;
  /** Consumes a nonce its own way (SQLite: the WAL synced apart, see ./sqlite.ts); default: consumeNonce, synced at once. */
  claimNonce?(keyId: string, nonceId: string): Promise<NonceClaim | undefined>;
  /** SQLite: the one connection `db` runs on, for a bulk import's prepared statements (./bulk-import.ts). */
  sqlite?: Database.Database;
  close(): Promise<void>;
}

/** Lets timers and sockets run between snapshot pages: better-sqlite3 answers synchronously. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Reads the snapshot tables with the snapshot's own transaction handle. */
class SnapshotReader extends StoreOps {
  async read(): Promise<StoreSnapshot> {
    const keys: StoreSchema['keys'][] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.keyPage(after, PAGE);
      keys.push(...page);
      if (page.length < PAGE) break;
      after = page[page.length - 1]?.key_id;
      await yieldToEventLoop();
    }
    const apiKeys = await this.listApiKeys();
    const meta = await this.listMeta();
    return { keys: keys.map(rowToKey), apiKeys, meta };
  }

  async isEmpty(): Promise<boolean> {
    for (const table of TABLES) if ((await this.count(table)) > 0) return false;
    return true;
  }
}

export class KyselyKeyNodeStore extends StoreOps implements KeyNodeStore {
  readonly kind: StoreKind;
  #backend: Backend;
  #closed: Promise<void> | undefined;

  constructor(backend: Backend) {
    super(backend.db);
    this.kind = backend.kind;
    this.#backend = backend;
  }

  transaction<T>(fn: (tx: KeyNodeStoreTx) => Promise<T>): Promise<T> {
    return guarded(() => this.db.transaction().execute((trx) => fn(new StoreOps(trx))));
  }

  override insertNonce(nonce: NonceRecord): Promise<void> {
    return this.#backend.insertNonce ? guarded(() => this.#backend.insertNonce!(nonce)) : super.insertNonce(nonce);
  }

  async claimNonce(keyId: string, nonceId: string): Promise<NonceClaim | undefined> {
    if (!this.#backend.claimNonce) {
      const nonce = await super.consumeNonce(keyId, nonceId);
      return nonce && { nonce, synced: Promise.resolve() };
    }
    checkId(keyId, 'keyId');
    checkId(nonceId, 'nonceId');
    return guarded(() => this.#backend.claimNonce!(keyId, nonceId));
  }

  exportSnapshot(): Promise<StoreSnapshot> {
    return guarded(() => this.#backend.readConsistent((db) => new SnapshotReader(db).read()));
  }

  async importSnapshot(snapshot: StoreSnapshot): Promise<void> {
    const { keyRows, apiKeyRows, meta } = checkSnapshot(snapshot);
    await guarded(() =>
      this.db.transaction().execute(async (trx) => {
        await lockForImport(trx, this.#backend.sqlite !== undefined);
        if (!(await new SnapshotReader(trx).isEmpty())) {
          throw new ConflictError('the store is not empty', 'store_not_empty', 'restore into a new, empty database');
        }
        for (let i = 0; i < keyRows.length; i += PAGE) await trx.insertInto('keys').values(keyRows.slice(i, i + PAGE)).execute();
        for (let i = 0; i < apiKeyRows.length; i += PAGE) await trx.insertInto('api_keys').values(apiKeyRows.slice(i, i + PAGE)).execute();
        for (let i = 0; i < meta.length; i += PAGE) await trx.insertInto('meta').values(meta.slice(i, i + PAGE)).execute();
      }),
    );
  }

  async beginImport(): Promise<StoreImport> {
    const trx = await guarded(() => this.db.startTransaction().execute());
    try {
      await lockForImport(trx, this.#backend.sqlite !== undefined);
      if (!(await new SnapshotReader(trx).isEmpty())) {
        throw new ConflictError('the store is not empty', 'store_not_empty', 'restore into a new, empty database');
      }
    } catch (err) {
      await trx.rollback().execute().catch(() => {});
      throw err;
    }
    return openStoreImport(trx, this.#backend.sqlite);
  }

  close(): Promise<void> {
    this.#closed ??= this.#backend.close();
    return this.#closed;
  }
}

/** The PostgreSQL advisory lock an import holds for its transaction ("LBKI"). */
const IMPORT_LOCK = 0x4c424b49;

/**
 * Takes the database's write lock before an import checks that the store is empty, so two restores
 * into one database run one after the other: the second waits for the first's commit or rollback, then
 * finds the store as the first left it (store_not_empty after a commit). On PostgreSQL a
 * transaction-scoped advisory lock, released by the commit or rollback (without it, both would see an
 * empty store and the second would fail on a unique key midway). SQLite's write transactions already
 * begin IMMEDIATE (src/store/sqlite.ts): the second waits up to the busy timeout, then store_busy.
 */
async function lockForImport(trx: Db, sqlite: boolean): Promise<void> {
  if (!sqlite) await sql`select pg_advisory_xact_lock(${IMPORT_LOCK})`.execute(trx);
}

/** Checks every record of a snapshot before anything is written, and refuses repeated ids. */
function checkSnapshot(snapshot: StoreSnapshot): {
  keyRows: StoreSchema['keys'][];
  apiKeyRows: StoreSchema['api_keys'][];
  meta: StoreSchema['meta'][];
} {
  if (typeof snapshot !== 'object' || snapshot === null || ![snapshot.keys, snapshot.apiKeys, snapshot.meta].every(Array.isArray)) {
    throw new InvalidInputError('a snapshot has arrays keys, apiKeys and meta');
  }
  const keyRows = snapshot.keys.map(keyToRow);
  const apiKeyRows = snapshot.apiKeys.map(apiKeyToRow);
  const meta = snapshot.meta.map((m) => ({ key: checkText(m?.key, 'meta key', 1), value: checkText(m?.value, 'meta value') }));
  unique(keyRows.map((r) => r.key_id), 'key id');
  unique(apiKeyRows.map((r) => r.id), 'api key id');
  unique(meta.map((r) => r.key), 'meta key');
  return { keyRows, apiKeyRows, meta };
}

function unique(ids: string[], what: string): void {
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) throw new InvalidInputError(`the snapshot repeats ${what} ${id}`);
    seen.add(id);
  }
}
