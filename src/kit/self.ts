/** The running kit's own file, for `kit verify` without FILE. */
import { isSea } from 'node:sea';
import { resolve } from 'node:path';

/** The single executable itself (SEA), else the script node runs (dist/lifeboat-kit.mjs). */
export function selfPath(): string {
  return isSea() ? process.execPath : resolve(process.argv[1] ?? '.');
}
