/**
 * Queries kysely builds and compiles once, then runs many times with other values: on the signing path
 * the builder and the compiler cost more than SQLite's own work on these statements (about 30 µs for
 * getKeyForSigning's join, against the statement's 50-80). The SQL is still kysely's, for either
 * dialect, and the values still travel as bound parameters.
 */
import type { Compilable, CompiledQuery, DialectAdapter, QueryResult } from 'kysely';
import { LifeboatError } from '../../errors.js';
import type { Db } from './queries.js';

/** What a compiled query's `build` gets for each named value: a marker that lands in the parameters. */
const marker = (name: string): string => `\u0000lifeboat-precompiled:${name}`;

interface Compiled<N, R> {
  query: CompiledQuery<R>;
  slots: [number, N][];
}

/**
 * One query, compiled once per store: the SQL differs by dialect, and a process may open stores of
 * both (a restore from SQLite into PostgreSQL), so each store's adapter keeps its own.
 */
export class Precompiled<N extends string, R> {
  readonly #compiled = new WeakMap<DialectAdapter, Compiled<N, R>>();

  /** `build` makes the query from a db and one string per name in `names` (called once per store). */
  constructor(
    private readonly names: readonly N[],
    private readonly build: (db: Db, values: Record<N, string>) => Compilable<R>,
  ) {}

  /**
   * Runs the query on `db` (the store's connection or a transaction) with `values` in place of the
   * markers. Throws what the driver throws, and LifeboatError `internal_error` if a name never
   * reached the parameters (a bug in `build`).
   */
  async run(db: Db, values: Record<N, unknown>): Promise<QueryResult<R>> {
    const adapter = db.getExecutor().adapter;
    let c = this.#compiled.get(adapter);
    if (c === undefined) this.#compiled.set(adapter, (c = this.compile(db)));
    const parameters = [...c.query.parameters];
    for (const [i, name] of c.slots) parameters[i] = values[name];
    return db.executeQuery<R>({ ...c.query, parameters });
  }

  private compile(db: Db): Compiled<N, R> {
    const markers = Object.fromEntries(this.names.map((n) => [n, marker(n)])) as Record<N, string>;
    const query = this.build(db, markers).compile();
    const slots: [number, N][] = [];
    query.parameters.forEach((p, i) => {
      const name = this.names.find((n) => p === markers[n]);
      if (name !== undefined) slots.push([i, name]);
    });
    const missing = this.names.filter((n) => !slots.some(([, s]) => s === n));
    if (missing.length > 0) throw new LifeboatError('internal_error', `precompiled query without a parameter for ${missing.join(', ')}`, { status: 500 });
    return { query, slots };
  }
}
