/**
 * The README's tour runs as written (issue 13, point 1): its first block, then the vault, key node,
 * continuous backup and emergency recovery blocks, in one bash, in order, with the compiled CLI
 * (`npm test` builds first; by hand, `npm run build`). Each block is checked for what it says it
 * shows. The public log and key-share blocks run beside it: test/readme-tour-log.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { assertTourRan, runTour } from './helpers/doc-tour.js';
import { assertSigned, README, readmeRuns, signatures } from './helpers/readme-tour.js';
import { trackedTempDir } from './helpers/tmp.js';

describe('README tour: vault, key nodes, continuous backups, emergency recovery', { timeout: 300_000 }, () => {
  it('the blocks the tour leaves out are the three named here, each with its reason', () => {
    const { skipped } = readmeRuns();
    assert.deepEqual(
      skipped.map((b) => [b.heading, b.skip]),
      [
        ['The two commands', 'it runs the whole test suite and the drill, which test/drill.test.ts runs'],
        ['Recovery coverage: can every key still be recovered right now?', 'it needs a backup service monitor token and a monitor token per node; test/coverage.test.ts runs it'],
        ['Development', 'it runs the whole test suite'],
      ],
    );
  });

  it('runs as written and shows what each block says', async () => {
    const { setup, vaultAndKeyNodes } = readmeRuns();
    const blocks = [setup, ...vaultAndKeyNodes];
    const dir = trackedTempDir('lb-readme-tour-');
    const r = await runTour({ doc: README, blocks, dir, vars: ['PWD', 'BACKUP_KEY', 'KEY_ID', 'NEW_ID', 'GROUP_KEY', 'U[node1]'] });
    assertTourRan(r, blocks);
    const [, vault, keyNodes, backups, wallet, ers] = r.parts.map((p) => p.stdout);
    const tourDir = r.parts[0]!.vars.PWD!;
    assert.ok(tourDir.startsWith(dir), `the tour works in a fresh directory of its own (${tourDir})`);

    // the vault: both holders verified, the secret back after the primary was lost, the old paper share refused
    assert.match(vault!, /backup-key +64 /, 'vault list shows the entry');
    assert.match(vault!, /every check passed/);
    assert.match(vault!, /^reconstructed: vault of scheme \w+ opens \(1 entries/m);
    assert.match(vault!, /^backup-key is back$/m);
    assert.match(vault!, /^rotated: scheme \w+ -> \w+; the old shares open nothing any more$/m);
    assert.match(vault!, /FAIL member \? typed offline share: share_set_mismatch/);
    assert.match(vault!, /^refused, exit 3$/m);

    // key nodes: a key, three signatures under its group key, node 1's own id for it after its import
    const last = r.parts.at(-1)!.vars;
    assert.match(last.KEY_ID!, /^key_[0-9a-f]{32}$/);
    assert.match(last.NEW_ID!, /^key_[0-9a-f]{32}$/);
    assert.notEqual(last.NEW_ID, last.KEY_ID, 'node 1 holds the share under a new key id');
    const ref = JSON.parse(readFileSync(join(tourDir, 'key.ref'), 'utf8')) as { key_id: string; nodes: { url: string; key_id: string }[] };
    assert.equal(ref.key_id, last.KEY_ID);
    assert.deepEqual(ref.nodes.map((n) => n.key_id), [last.NEW_ID, last.KEY_ID, last.KEY_ID], 'key import --key-file recorded node 1\'s new id in key.ref');
    assert.equal(ref.nodes[0]!.url, last['U[node1]']);
    const groupKey = last.GROUP_KEY;
    const [hello, tx, again] = signatures(keyNodes!);
    assertSigned(hello, 'hello', groupKey, 'sign --message-text hello');
    assertSigned(tx, 'a transaction', groupKey, 'sign --message-file tx.bin');
    assertSigned(again, 'hello again', groupKey, 'sign after node 1 lost its database');
    assert.match(keyNodes!, /exported encrypted share of key_\w+ to node1\.export/);

    // continuous backups: the service acknowledged everything, node 1 was rebuilt from it and signs
    const status = JSON.parse(/^\{[\s\S]*?^\}$/m.exec(backups!)![0]) as { acked_seq: number; unacked: number; last_error: unknown };
    assert.ok(status.acked_seq > 0 && status.unacked === 0 && status.last_error === null, JSON.stringify(status));
    assert.match(backups!, /^restored node [0-9a-f:]+: 1 keys and 1 API keys from node-/m);
    assertSigned(signatures(backups!)[0], 'signed by a restored node', groupKey, 'the restored node signs');
    assert.equal(backups!.match(/^restore token {2}lbr_/gm)?.length, 1, 'backup-setup printed the restore token');

    // a wallet and a second factor: refused without the code, restored with the wallet and a recovery code, signs
    assert.match(wallet!, /^refused without the code, exit 1$/m);
    assert.match(wallet!, /^restored node [0-9a-f:]+: 1 keys and 1 API keys from node-/m);
    assertSigned(signatures(wallet!)[0], 'signed by a node restored with its wallet', groupKey, 'the node restored with its wallet signs');

    // emergency recovery: a package every node made its part of, verified offline, and the key back without any node
    assert.match(ers!, /verified, registered with 3 of 3 node\(s\)/);
    assert.match(ers!, /^ok: this package recovers the key$/m);
    assert.equal(statSync(join(tourDir, 'key.txt')).mode & 0o777, 0o600, 'key.txt is 0600');
    assertSigned(signatures(ers!)[0], 'still in control', groupKey, 'ers sign, with every node stopped');
    assert.ok(r.stoppedByItself, 'kill $(jobs -p) stopped every server the tour started');
    assert.ok(r.ms < 240_000, `the tour took ${r.ms} ms`);
  });
});
