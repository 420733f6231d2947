/** Runs drill scenarios in order, timing each; a failed scenario stops those that depend on it. */
import { LifeboatError } from '../errors.js';
import type { RunResult } from './proc.js';

/** A CLI step that must succeed; throws `drill_step_failed` quoting the command's error line. */
export function expectOk(r: RunResult, what: string): RunResult {
  if (r.code !== 0) {
    const err = r.stderr.split('\n').find((l) => l.includes('error:')) ?? r.stderr.trim();
    throw new LifeboatError('drill_step_failed', `${what} failed: ${err}`);
  }
  return r;
}

export interface ScenarioResult {
  name: string;
  ok: boolean;
  ms: number;
  /** The err_type or message of the failure; never a secret. */
  error?: string;
  skipped?: boolean;
}

export interface Scenario<C> {
  name: string;
  run(ctx: C): Promise<void>;
}

/** Runs every scenario; after the first failure the rest are reported as skipped (not ok). */
export async function runScenarios<C>(scenarios: Scenario<C>[], ctx: C, onResult: (r: ScenarioResult) => void = () => {}): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  let failed = false;
  for (const s of scenarios) {
    if (failed) {
      const r = { name: s.name, ok: false, ms: 0, skipped: true, error: 'skipped: an earlier scenario failed' };
      results.push(r);
      onResult(r);
      continue;
    }
    const t0 = performance.now();
    try {
      await s.run(ctx);
      const r = { name: s.name, ok: true, ms: Math.round(performance.now() - t0) };
      results.push(r);
      onResult(r);
    } catch (err) {
      failed = true;
      const code = (err as { code?: string }).code;
      const message = err instanceof Error ? err.message : String(err);
      const r = { name: s.name, ok: false, ms: Math.round(performance.now() - t0), error: code ? `${code}: ${message}` : message };
      results.push(r);
      onResult(r);
    }
  }
  return results;
}
