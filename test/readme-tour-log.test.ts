/**
 * The README's public log and key-share blocks run as written (issue 13, point 1), after the tour's
 * first block, in one bash, beside test/readme-tour.test.ts: a log with two witnesses, an audit, a
 * fork refused; three key nodes publishing their shares to that log, one destroyed and recovered from
 * its words, signing again; a key node over TLS with a throwaway CA, a client with and without it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertTourRan, runTour } from './helpers/doc-tour.js';
import { assertSigned, README, readmeRuns, signatures } from './helpers/readme-tour.js';
import { trackedTempDir } from './helpers/tmp.js';

describe('README tour: public log and key shares under 24 words', { timeout: 300_000 }, () => {
  it('runs as written and shows what each block says', async () => {
    const { setup, logAndKeyShares } = readmeRuns();
    const blocks = [setup, ...logAndKeyShares];
    const r = await runTour({ doc: README, blocks, dir: trackedTempDir('lb-readme-log-'), vars: ['KS_KEY'] });
    assertTourRan(r, blocks);
    const [, log, keyShares, tls] = r.parts.map((p) => p.stdout);

    // the log: co-signed by both witnesses, a proof that checks, the later audit extends the first, the old copy refused
    assert.match(log!, /^witnesses +witness1\.example\.org, witness2\.example\.org \(2 of 2 required\)$/m);
    assert.match(log!, /^entry 0 is in example\.org\/backup-log at tree size 1$/m, 'log verify-proof checks the proof');
    assert.match(log!, /^previous +size 1 root \S+: consistent$/m, 'the second audit extends the first');
    assert.match(log!, /^refused, exit 3$/m);
    assert.match(r.stderr, /error: the log forked: .* \(log_forked\)/, 'the old copy is refused as log_forked');

    // key shares: the key is held by the log, every key recoverable from it, the node back from its words signs
    const ksKey = r.parts[2]!.vars.KS_KEY!;
    assert.match(ksKey, /^key_[0-9a-f]{32}$/);
    assert.match(keyShares!, new RegExp(`^${ksKey} .* held log#\\d+$`, 'm'), 'key list shows log#');
    assert.match(keyShares!, /^keys +1 key with backups in the log, 0 at risk$/m);
    const groupKey = new RegExp(`recoverable +${ksKey} .* group ([0-9a-f]{64})$`, 'm').exec(keyShares!)?.[1];
    assert.match(keyShares!, /^recovered node lb1\./m);
    const [hello, back] = signatures(keyShares!);
    assertSigned(hello, 'hello', groupKey, 'the key signs');
    assertSigned(back, 'signed by ks1, back from its words', groupKey, 'the recovered node signs');

    // over TLS: the node serves https, a client with the CA lists its keys, one without is refused
    assert.match(tls!, /^https:\/\/127\.0\.0\.1:\d+$/m, 'node serve --tls-cert prints an https URL');
    assert.match(tls!, /^\[\]$/m, 'key list --ca-file is answered');
    assert.match(tls!, /^refused, exit 1$/m);
    assert.match(r.stderr, /lifeboat: error: the certificate of https:\/\/127\.0\.0\.1:\d+ is not signed by a trusted ca: .* \(tls_untrusted\)/);
    assert.ok(r.ms < 240_000, `the tour took ${r.ms} ms`);
  });
});
