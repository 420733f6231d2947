/**
 * docs/monitoring/lifeboat.rules.yml: `promtool check rules` accepts it, `promtool test rules` runs its
 * unit test (an alert for a key pending backup over 5 minutes, one for a holder failing possession),
 * and every lifeboat_* metric an alert reads is one docs/monitoring.md documents and a server exposes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './helpers/cli.js';

const DIR = join(REPO_ROOT, 'docs', 'monitoring');
const RULES = readFileSync(join(DIR, 'lifeboat.rules.yml'), 'utf8');
const DOC = readFileSync(join(REPO_ROOT, 'docs', 'monitoring.md'), 'utf8');

function promtool(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8' });
  assert.equal(r.error, undefined, 'promtool is installed (Debian: prometheus)');
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('promtool check rules accepts the example rules', () => {
  const r = promtool('check', 'rules', 'lifeboat.rules.yml');
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /SUCCESS: \d+ rules found/);
});

test('promtool test rules: the pending-backup, possession and coverage alerts fire when they should, and only then', () => {
  const r = promtool('test', 'rules', 'lifeboat.rules.test.yml');
  assert.equal(r.status, 0, r.out);
});

test('every lifeboat_* metric the rules read is documented in docs/monitoring.md', () => {
  const used = new Set(RULES.match(/lifeboat_[a-z_]+/g) ?? []);
  assert.ok(used.size >= 8);
  for (const name of used) assert.ok(DOC.includes(`\`${name}\``), `${name} is not in docs/monitoring.md`);
});
