/**
 * What the steps of bench/scale.bench.ts share: their arguments, the synthetic node keys and backup key
 * (DIR/../secrets.json, 0600, nothing of value), timing, and the JSON line each prints:
 * {"seconds", "cpu_seconds" (user and system, every thread, since its modules were loaded), "base_rss_mb"
 * (when its modules were loaded), "max_rss_mb" (its peak), ...}.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fromHex } from '../src/util/bytes.js';

// What the process holds before its step (node and the modules): printed beside the peak.
const baseRss = process.memoryUsage().rss / 2 ** 20;
const baseCpu = process.cpuUsage();

export const args = process.argv.slice(2) as [string, string, string, string];

export function benchSecrets(dir: string) {
  const s = JSON.parse(readFileSync(join(dirname(dir), 'secrets.json'), 'utf8')) as Record<'account' | 'password' | 'backupKey' | 'identity' | 'storageKey' | 'exportKey' | 'wrappingKey', string>;
  return {
    account: s.account,
    password: s.password,
    backupKey: fromHex(s.backupKey, 'backup key', 32),
    secrets: { identity: fromHex(s.identity, 'identity', 64), storageKey: fromHex(s.storageKey, 'storage key', 32), exportKey: fromHex(s.exportKey, 'export key', 32), wrappingKey: fromHex(s.wrappingKey, 'wrapping key', 32) },
  };
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; result: T }> {
  const t0 = performance.now();
  const result = await fn();
  return { seconds: (performance.now() - t0) / 1000, result };
}

export function report(out: Record<string, unknown>): void {
  const cpu = process.cpuUsage(baseCpu);
  console.log(JSON.stringify({ ...out, cpu_seconds: (cpu.user + cpu.system) / 1e6, base_rss_mb: baseRss, max_rss_mb: process.resourceUsage().maxRSS / 1024 }));
}
