/**
 * What a store conformance suite runs against: a SQLite file per case in a temp directory, or a
 * throwaway PostgreSQL database (test/helpers/postgres.ts), with raw SQL beside the store.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { parseStoreUrl } from '../../src/keynode/store/index.js';
import { execSql, postgresSkipReason, resetTestDatabase, startTestPostgres, type TestPostgres } from './postgres.js';

export interface StoreHarness {
  kind: 'sqlite' | 'postgres';
  skip: string | false;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** The url of an empty store for one case; no store may be open on the previous one. */
  fresh(): Promise<string>;
  /** Runs raw SQL on the store's database, beside the store. */
  exec(url: string, statement: string): Promise<void>;
  /** Runs a raw query on the store's database, beside the store, and returns its rows. */
  query(url: string, statement: string): Promise<Record<string, unknown>[]>;
}

/** The file path of a `sqlite:` store url. */
export function sqlitePathOf(url: string): string {
  const p = parseStoreUrl(url);
  assert.equal(p.kind, 'sqlite');
  return p.path;
}

/** A fresh SQLite file `<temp dir>/case-N/<file>` per case. */
export function sqliteHarness(prefix: string, file: string): StoreHarness {
  let dir = '';
  let n = 0;
  const withDb = <T>(url: string, readonly: boolean, fn: (db: Database.Database) => T): T => {
    const db = new Database(sqlitePathOf(url), { readonly });
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };
  return {
    kind: 'sqlite',
    skip: false,
    async setup() {
      dir = mkdtempSync(join(tmpdir(), prefix));
    },
    async teardown() {
      rmSync(dir, { recursive: true, force: true });
    },
    async fresh() {
      return `sqlite:${join(dir, `case-${++n}`, file)}`;
    },
    async exec(url, statement) {
      withDb(url, false, (db) => db.exec(statement));
    },
    async query(url, statement) {
      return withDb(url, true, (db) => db.prepare(statement).all() as Record<string, unknown>[]);
    },
  };
}

/** One throwaway PostgreSQL cluster for the suite, its database emptied for every case. */
export function postgresHarness(): StoreHarness {
  let server: TestPostgres | undefined;
  return {
    kind: 'postgres',
    skip: postgresSkipReason(),
    async setup() {
      server = await startTestPostgres();
    },
    async teardown() {
      await server?.stop();
    },
    async fresh() {
      assert.ok(server, 'postgresql did not start');
      await resetTestDatabase(server.url);
      return server.url;
    },
    exec: (url, statement) => execSql(url, statement),
    async query(url, statement) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return (await client.query(statement)).rows as Record<string, unknown>[];
      } finally {
        await client.end();
      }
    },
  };
}

/** Rows in `table`, counted beside the store. */
export async function countRows(h: StoreHarness, url: string, table: string): Promise<number> {
  return Number((await h.query(url, `select count(*) as n from ${table}`))[0]?.n);
}
