import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../src/drill/proc.js';
import { runScenarios } from '../src/drill/runner.js';
import { LifeboatError } from '../src/errors.js';

test('lifeboat drill --json: the worst day passes end to end with real processes', { timeout: 240_000 }, async () => {
  const r = await runCli(['drill', '--json'], { timeoutMs: 220_000 });
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { ok: boolean; scenarios: { name: string; ok: boolean; ms: number }[] };
  assert.equal(report.ok, true);
  const names = report.scenarios.map((s) => s.name);
  for (const expected of [/start two share holders/, /recovery init 2-of-3/, /put secrets/, /delete its data directory/, /reconstruct from one holder and the offline share/, /every secret is intact/, /rotate/, /verify every holder/, /old offline share opens nothing/]) {
    assert.ok(names.some((n) => expected.test(n)), `missing scenario ${expected}`);
  }
  for (const s of report.scenarios) {
    assert.equal(s.ok, true, s.name);
    assert.ok(Number.isInteger(s.ms) && s.ms >= 0);
  }
  assert.equal(r.stderr, '', 'with --json, progress is quiet');
});

test('drill runner: a failed scenario is reported with its code and the ones after it are skipped, not ok', async () => {
  const ran: string[] = [];
  const results = await runScenarios(
    [
      { name: 'one', run: async () => void ran.push('one') },
      { name: 'two', run: async () => { throw new LifeboatError('drill_check_failed', 'secret x differs'); } },
      { name: 'three', run: async () => void ran.push('three') },
    ],
    {},
  );
  assert.deepEqual(ran, ['one']);
  assert.deepEqual(results.map((r) => [r.name, r.ok, r.skipped ?? false]), [['one', true, false], ['two', false, false], ['three', false, true]]);
  assert.equal(results[1]!.error, 'drill_check_failed: secret x differs');
});
