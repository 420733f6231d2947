/** The drill's "the company is gone" scenarios (src/drill/ers-scenarios.ts), run as the drill runs them. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { runScenarios } from '../src/drill/runner.js';
import { ersScenarios, type ErsDrillContext } from '../src/drill/ers-scenarios.js';
import type { RunningServer } from '../src/drill/proc.js';
import { trackedTempDir } from './helpers/tmp.js';

it('drill: the company is gone, the key comes back from the package and the RSA key alone and signs', async () => {
  const servers: RunningServer[] = [];
  const ctx: ErsDrillContext = { dir: trackedTempDir('lifeboat-ers-drill-'), servers };
  try {
    const results = await runScenarios(ersScenarios, ctx);
    assert.deepEqual(
      results.map((r) => [r.name.slice(0, 24), r.ok, r.error ?? '']),
      ersScenarios.map((s) => [s.name.slice(0, 24), true, '']),
    );
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
});
