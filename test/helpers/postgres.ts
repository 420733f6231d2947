/**
 * A real PostgreSQL server for tests.
 *
 * - With LIFEBOAT_TEST_POSTGRES_URL set (a role that may CREATE DATABASE), each test file gets a fresh
 *   database on that server, dropped when it stops.
 * - Otherwise a throwaway cluster: initdb into a temp dir, pg_ctl start on a free loopback port with
 *   its unix socket in that dir, stopped and removed afterwards (and on exit, if a test dies first).
 *   PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user (or
 *   `nobody`) with the temp dir chowned to it; node's spawn switches uid/gid, no su needed.
 *
 * The binaries are looked for in $LIFEBOAT_PG_BINDIR, `pg_config --bindir`, /usr/lib/postgresql/N/bin
 * (newest first), /usr/local/pgsql/bin, /usr/local/bin and $PATH. When none is found and CI is set,
 * postgresSkipReason() says not to skip, so the PostgreSQL tests fail loudly in CI.
 */
import { type SpawnOptions, spawn, spawnSync } from 'node:child_process';
import { accessSync, chownSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';

export interface TestPostgres {
  /** A database of its own on the server, empty at start. */
  url: string;
  /** 'cluster' when this helper started the server, 'external' for LIFEBOAT_TEST_POSTGRES_URL. */
  source: 'cluster' | 'external';
  stop(): Promise<void>;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function versionedBinDirs(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => join(root, v, 'bin'));
}

/** The directory holding initdb, pg_ctl and postgres, or undefined if PostgreSQL is not installed. */
export function findPostgresBinDir(): string | undefined {
  const candidates: string[] = [];
  if (process.env.LIFEBOAT_PG_BINDIR) candidates.push(process.env.LIFEBOAT_PG_BINDIR);
  const pgConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (pgConfig.status === 0) candidates.push(pgConfig.stdout.trim());
  candidates.push(...versionedBinDirs('/usr/lib/postgresql'), '/usr/local/pgsql/bin', '/usr/local/bin');
  candidates.push(...(process.env.PATH ?? '').split(delimiter).filter(Boolean));
  return candidates.find((dir) => ['initdb', 'pg_ctl', 'postgres'].every((b) => isExecutable(join(dir, b))));
}

function isCI(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

/**
 * Why the PostgreSQL tests should be skipped here, or false to run them. Never skips in CI: there a
 * missing PostgreSQL makes startTestPostgres throw, so the tests fail instead of passing vacuously.
 */
export function postgresSkipReason(): string | false {
  if (process.env.LIFEBOAT_TEST_POSTGRES_URL || isCI() || findPostgresBinDir() !== undefined) return false;
  return 'postgresql not found (install it, set LIFEBOAT_PG_BINDIR, or LIFEBOAT_TEST_POSTGRES_URL)';
}

/** Starts (or connects to) a server and creates this file's database. */
export async function startTestPostgres(): Promise<TestPostgres> {
  const external = process.env.LIFEBOAT_TEST_POSTGRES_URL;
  if (external) return createDatabaseOn(external, async () => undefined, 'external');
  const bin = findPostgresBinDir();
  if (bin === undefined) {
    throw new Error(
      'postgresql is needed for these tests and was not found: apt-get install postgresql (.ci/run does), ' +
        'set LIFEBOAT_PG_BINDIR to the directory of initdb and pg_ctl, or LIFEBOAT_TEST_POSTGRES_URL to a server',
    );
  }
  const cluster = await startCluster(bin);
  try {
    return await createDatabaseOn(cluster.adminUrl, cluster.stop, 'cluster');
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

/**
 * Empties a test database between cases: drops the public schema with everything in it (tables and
 * the migration table) and creates it anew. No connection may be using the database meanwhile.
 */
export async function resetTestDatabase(url: string): Promise<void> {
  await withClient(url, async (c) => {
    await c.query('drop schema if exists public cascade');
    await c.query('create schema public');
  });
}

/** Runs SQL statements on a database with a client of its own. */
export async function execSql(url: string, ...statements: string[]): Promise<void> {
  await withClient(url, async (c) => {
    for (const s of statements) await c.query(s);
  });
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function createDatabaseOn(adminUrl: string, stopServer: () => Promise<void>, source: TestPostgres['source']): Promise<TestPostgres> {
  const name = `lifeboat_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await execSql(adminUrl, `create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    source,
    async stop() {
      try {
        await execSql(adminUrl, `drop database if exists ${name} with (force)`);
      } finally {
        await stopServer();
      }
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** The uid/gid to run PostgreSQL as: ourselves, or when we are root the postgres user (else nobody). */
function clusterUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':'));
  const entry = passwd.find((f) => f[0] === 'postgres') ?? passwd.find((f) => f[0] === 'nobody');
  if (entry === undefined) throw new Error('running as root with neither a postgres nor a nobody user to run postgresql as');
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

function run(cmd: string, args: string[], opts: SpawnOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${out}`))));
  });
}

async function startCluster(bin: string): Promise<{ adminUrl: string; stop: () => Promise<void> }> {
  const user = clusterUser();
  // As another user, the temp dir's parents must be traversable by it: /tmp is, $TMPDIR may not be.
  const dir = mkdtempSync(join(user ? '/tmp' : tmpdir(), 'lifeboat-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'postgres.log');
  if (user) chownSync(dir, user.uid, user.gid);
  const opts: SpawnOptions = { cwd: dir, env: { ...process.env, LC_ALL: 'C' }, ...(user ?? {}) };
  const pgCtl = join(bin, 'pg_ctl');
  const stopSync = (): void => {
    spawnSync(pgCtl, ['stop', '-D', data, '-m', 'immediate', '-w'], { ...opts, stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopSync);
  try {
    // Throwaway: no fsync, trust auth on loopback and the socket dir only.
    await run(join(bin, 'initdb'), ['-D', data, '-U', 'lifeboat', '-A', 'trust', '-E', 'UTF8', '--no-locale', '--no-sync'], opts);
    const port = await freePort();
    const serverOpts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200`;
    await run(pgCtl, ['start', '-D', data, '-l', log, '-w', '-t', '60', '-o', serverOpts], opts);
    return {
      adminUrl: `postgres://lifeboat@127.0.0.1:${port}/postgres`,
      async stop() {
        process.removeListener('exit', stopSync);
        await run(pgCtl, ['stop', '-D', data, '-m', 'fast', '-w'], opts).catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    const logText = existsSync(log) ? readFileSync(log, 'utf8') : '';
    process.removeListener('exit', stopSync);
    stopSync();
    throw new Error(`could not start a throwaway postgresql cluster: ${(err as Error).message}\n${logText}`);
  }
}
