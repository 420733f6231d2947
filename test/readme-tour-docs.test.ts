/**
 * The one-machine procedures of docs/keynode-operations.md and docs/backup-server.md run as written
 * (issue 13, point 1): a restore from the backup timer's file and after a database-level restore, a
 * node on PostgreSQL (role and database made as the doc says, on a throwaway cluster), the backup
 * service's accounts and its PostgreSQL store. Each doc's paths live under a directory of the test,
 * and its systemd units run through test/helpers/doc-machine.ts. Blocks left out are skip-marked in
 * the doc with their reason, and listed here.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { machinePrelude, onMachine, unitsOf } from './helpers/doc-machine.js';
import { assertTourRan, blocksUnder, runTour, type ShBlock, shBlocks, testStep } from './helpers/doc-tour.js';
import { execSql, findPostgresBinDir, startTestPostgres, type TestPostgres } from './helpers/postgres.js';
import { assertSigned, signatures } from './helpers/readme-tour.js';
import { trackedTempDir } from './helpers/tmp.js';

const OPS = 'docs/keynode-operations.md';
const BACKUP = 'docs/backup-server.md';
const moved = (b: ShBlock): ShBlock => ({ ...b, code: onMachine(b.code) });
/** The `install -d` lines of a doc's skip-marked set-up block (the rest of it makes a system user), on the machine. */
const installLines = (doc: string, heading: string): string =>
  onMachine(blocksUnder(shBlocks(doc), heading)[0]!.code.split('\n').filter((l) => l.startsWith('install -d ')).join('\n'));

describe('docs: the procedures that run on one machine', { timeout: 300_000 }, () => {
  let pg: TestPostgres;
  const root = trackedTempDir('lb-docs-tour-');
  before(async () => {
    pg = await startTestPostgres();
  });
  after(async () => {
    await execSql(pg.url, 'drop database if exists node_a with (force)', 'drop database if exists lifeboat_backup with (force)').catch(() => undefined);
    await execSql(pg.url, 'drop role if exists lifeboat_node', 'drop role if exists lifeboat_backup').catch(() => undefined);
    await pg?.stop();
  });
  /** psql, createdb as the cluster's superuser (the doc's `sudo -u postgres`), the database at 127.0.0.1:PORT. */
  const pgEnv = (): Record<string, string> => {
    const u = new URL(pg.url);
    const bin = findPostgresBinDir();
    return { PGHOST: u.hostname, PGPORT: u.port, PGUSER: decodeURIComponent(u.username), PGDATABASE: u.pathname.slice(1), PATH: `${bin ? `${bin}:` : ''}${process.env.PATH}` };
  };
  const atDb = (b: ShBlock): ShBlock => ({ ...b, code: b.code.replace(/db\.internal:5432/g, `127.0.0.1:${new URL(pg.url).port}`).replace(/sslmode=verify-full/g, 'sslmode=disable') });

  it('the blocks left out are these, each with its reason; setting up makes every ReadWritePaths directory', () => {
    const skipped = [...shBlocks(OPS), ...shBlocks(BACKUP)].filter((b) => b.skip).map((b) => b.heading);
    assert.deepEqual(skipped, ['Sealing a node', 'Setting up a node', 'Fail-over pairing', 'Setting it up']);
    for (const [doc, heading] of [[OPS, 'Setting up a node'], [BACKUP, 'Setting it up']] as const) {
      const made = blocksUnder(shBlocks(doc), heading)[0]!.code.split('\n').filter((l) => l.startsWith('install -d ')).flatMap((l) => l.split(/\s+/).filter((w) => w.startsWith('/')));
      const needed = unitsOf(doc).flatMap((u) => u.readWritePaths);
      assert.ok(needed.length > 0, `${doc}: a unit with ReadWritePaths`);
      for (const dir of needed) assert.ok(made.includes(dir), `${doc}: "${heading}" makes ${dir}, which a unit's ReadWritePaths names`);
    }
  });

  it('keynode-operations.md: restore from the timer’s backup file, then after a database-level restore; the node signs after each', async () => {
    const machine = join(root, 'node-a');
    const ops = shBlocks(OPS);
    const [restore, restoreDatabase] = blocksUnder(ops, 'Restore');
    const [noRestart] = blocksUnder(ops, 'Operations without restarts');
    assert.ok(restore && restoreDatabase && noRestart);
    // node b is this machine's peer2: its wrapping key replaces the doc's example, and the unit's URL its port
    const example = /^NODE_B_WRAPPING_KEY='[^']*'\n/m;
    assert.match(noRestart.code, example, 'the block sets node b\'s wrapping key in a variable');
    const reloadBlock = { ...moved(noRestart), code: onMachine(noRestart.code.replace(example, '').replace(/http:\/\/127\.0\.0\.1:7401/g, '$(cat "$RUN/lifeboat-node.url")')) };
    const sign = (what: string): string => `lifeboat sign --key "$KEY_ID" --nodes "$(cat "$RUN/lifeboat-node.url")#$KEY_ID,$PEER" --message-text "${what}"`;
    const blocks = [
      testStep('a node as "Setting up a node" makes it, two peers, a key, a backup by the timer', `
        ${installLines(OPS, 'Setting up a node')}
        lifeboat node init --data-dir "$ROOT/var/lib/lifeboat-node" --no-mnemonic > /dev/null
        lifeboat node apikey create --role client --data-dir "$ROOT/var/lib/lifeboat-node" --secret-fd 3 3>"$RUN/client.key" > /dev/null
        lifeboat node apikey create --role operator --data-dir "$ROOT/var/lib/lifeboat-node" --secret-fd 3 3>"$RUN/operator.key" > /dev/null
        for p in 2 3; do
          lifeboat node init --data-dir "$RUN/peer$p" --no-mnemonic > /dev/null
          lifeboat node apikey import --role client --data-dir "$RUN/peer$p" < "$RUN/client.key" > /dev/null
          lifeboat node serve --data-dir "$RUN/peer$p" --listen 127.0.0.1:0 --json > "$RUN/peer$p.url" &
        done
        systemctl start lifeboat-node
        export LIFEBOAT_API_KEY=$(cat "$RUN/client.key")
        until [ -s "$RUN/peer2.url" ] && [ -s "$RUN/peer3.url" ]; do sleep 0.05; done
        PEER=$(head -n1 "$RUN/peer2.url" | jq -r .url); PEER3=$(head -n1 "$RUN/peer3.url" | jq -r .url)
        KEY_ID=$(lifeboat key create --nodes "$(cat "$RUN/lifeboat-node.url"),$PEER,$PEER3" --threshold 2 --json | jq -r .key_id)
        GROUP_KEY=$(lifeboat key info --node "$PEER" --key "$KEY_ID" --json | jq -r .group_public_key)
        systemctl start lifeboat-node-backup
        ${sign('before')}`),
      moved(restore),
      testStep('the restored node signs', `cd /; ${sign('restored from the file')}; systemctl stop lifeboat-node`),
      moved(restoreDatabase),
      testStep('the node signs after restore --database', `systemctl start lifeboat-node; ${sign('after restore --database')}`),
      testStep('node b\'s wrapping key; an operator API key', `NODE_B_WRAPPING_KEY=$(lifeboat node show --data-dir "$RUN/peer2" --json | jq -r .wrapping_public_key)
        export LIFEBOAT_API_KEY=$(cat "$RUN/operator.key"); PID_BEFORE=$(cat "$RUN/lifeboat-node.pid")
        lifeboat node config running --url "$(cat "$RUN/lifeboat-node.url")" --json | jq -c .whitelist`),
      reloadBlock,
      testStep('the same process serves: no restart', 'cat "$RUN/lifeboat-node.pid"'),
    ];
    const r = await runTour({ doc: OPS, blocks, dir: machine, cwd: machine, prelude: machinePrelude(machine, unitsOf(OPS)), vars: ['GROUP_KEY', 'NODE_B_WRAPPING_KEY', 'PID_BEFORE'] });
    assertTourRan(r, blocks);
    const groupKey = r.parts[0]!.vars.GROUP_KEY;
    assertSigned(signatures(r.parts[0]!.stdout)[0], 'before', groupKey, 'the node signs before');
    assert.match(r.parts[1]!.stdout, /restored|keys/i);
    assert.deepEqual(readdirSync(join(machine, 'var/lib/lifeboat-node/damaged')).sort().filter((f) => f.startsWith('store.sqlite'))[0], 'store.sqlite', 'the damaged store was moved aside');
    assert.equal(readdirSync(join(machine, 'var/backups/lifeboat-node')).filter((f) => /^node-\d{8}T\d{6}Z\.lbnb$/.test(f)).length, 1, 'the timer wrote node-<UTC time>.lbnb');
    assertSigned(signatures(r.parts[2]!.stdout)[0], 'restored from the file', groupKey, 'the restored node signs');
    assertSigned(signatures(r.parts[4]!.stdout)[0], 'after restore --database', groupKey, 'the node signs after restore --database');
    const nodeB = r.parts[5]!.vars.NODE_B_WRAPPING_KEY;
    assert.match(nodeB ?? '', /^[A-Za-z0-9+/]{43}=$/, 'node show printed node b\'s wrapping key');
    assert.equal(r.parts[5]!.stdout.trim(), '[]', 'nothing is whitelisted before');
    assert.match(r.parts[6]!.stdout, new RegExp(`whitelisted ${nodeB!.replace(/[+/]/g, '\\$&')}`), 'whitelist add wrote node.json');
    assert.match(r.parts[6]!.stdout, new RegExp(`^whitelist +1\\n +${nodeB!.replace(/[+/]/g, '\\$&')} +node b$`, 'm'), 'the running node holds node b after the reload');
    assert.equal(r.parts[7]!.stdout.trim(), r.parts[5]!.vars.PID_BEFORE, 'the node that reloaded is the process that served before: no restart');
  });

  it('keynode-operations.md: a node on PostgreSQL, its role and database made as the doc says', async () => {
    const machine = join(root, 'node-pg');
    const [roleAndDb, init] = blocksUnder(shBlocks(OPS), 'PostgreSQL');
    assert.ok(roleAndDb && init);
    const blocks = [
      testStep('the directories, as "Setting up a node" makes them', installLines(OPS, 'Setting up a node')),
      moved(atDb(roleAndDb)),
      moved(atDb(init)),
      testStep('the node serves from PostgreSQL', `systemctl start lifeboat-node; lifeboat node status --data-dir "$ROOT/var/lib/lifeboat-node" --json | jq -r .keys; psql -d node_a -Atc "select count(*) from information_schema.tables where table_schema = 'public'"`),
    ];
    const r = await runTour({ doc: OPS, blocks, dir: machine, cwd: machine, prelude: machinePrelude(machine, unitsOf(OPS)), env: pgEnv(), stdin: 'a node password\n' });
    assertTourRan(r, blocks);
    assert.match(r.parts[2]!.stdout, /store: +postgres:\/\/lifeboat_node@127\.0\.0\.1:\d+\/node_a\s/, 'node init made the node on node_a, no password in the URL');
    assert.match(r.parts[2]!.stdout, /write it down now/, 'node init showed the words on the terminal');
    const [keys, tables] = r.parts[3]!.stdout.trim().split('\n');
    assert.equal(keys, '0', 'node status reads the PostgreSQL store');
    assert.ok(Number(tables) > 0, `the node made its tables in node_a (${tables})`);
  });

  it('backup-server.md: accounts on the serving service, then its PostgreSQL store', async () => {
    const machine = join(root, 'backup');
    const blocks = [
      testStep('the directory, as "Setting it up" makes it; the unit started', `${installLines(BACKUP, 'Setting it up')}\nsystemctl start lifeboat-backup`),
      ...blocksUnder(shBlocks(BACKUP), 'Accounts').map(moved),
      testStep('a working directory on the machine (the token file is written where the command runs)', 'cd "$RUN"'),
      ...blocksUnder(shBlocks(BACKUP), 'Monitoring').map(moved),
      testStep('the monitor token reads the stream heads, and nothing without it', `U="$(cat "$RUN/lifeboat-backup.url")"; curl -sf -H "authorization: Bearer $(cat monitor.token)" "$U/v1/monitor/streams"; echo; curl -s -o /dev/null -w '%{http_code}\\n' "$U/v1/monitor/streams"`),
      ...blocksUnder(shBlocks(BACKUP), 'PostgreSQL').map((b) => moved(atDb(b))),
      testStep('the service answers from PostgreSQL', `curl -sf "$(cat "$RUN/lifeboat-backup.url")/v1/health"; echo; psql -d lifeboat_backup -Atc "select count(*) from information_schema.tables where table_schema = 'public'"`),
    ];
    const r = await runTour({ doc: BACKUP, blocks, dir: machine, cwd: machine, prelude: machinePrelude(machine, unitsOf(BACKUP)), env: pgEnv(), stdin: 'abackuppassword\n' });
    assertTourRan(r, blocks);
    const accounts = r.parts[1]!.stdout;
    assert.match(accounts, /lbi_[\w-]+/, 'account add printed the invite');
    assert.match(accounts, /node-a\s+invited/, 'account list shows it, from the store the unit serves');
    assert.ok(existsSync(join(machine, 'var/lib/lifeboat-backup/backup.sqlite')), 'the unit serves from the directory the account commands used');
    const [streams, unauthenticated] = r.parts[4]!.stdout.trim().split('\n');
    assert.ok(Array.isArray((JSON.parse(streams!) as { streams: unknown }).streams), `the monitor token reads the streams: ${streams}`);
    assert.equal(unauthenticated, '401', 'no token, no streams');
    const [health, tables] = r.parts[6]!.stdout.trim().split('\n');
    assert.match(health!, /ok/);
    assert.ok(Number(tables) > 0, `the service made its schema in lifeboat_backup (${tables})`);
  });
});
