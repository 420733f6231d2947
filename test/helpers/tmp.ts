/** Temp directories for a test file, removed when the file's tests are done (or its process exits). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

const dirs: string[] = [];
function removeAll(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}
after(removeAll);
// A file whose tests time out or that is cut short still exits: nothing is left behind then either.
process.on('exit', removeAll);

/** A fresh directory under the system temp dir, deleted after the test file. */
export function trackedTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}
