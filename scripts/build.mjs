/**
 * `npm run build`: the CLI as one bundle with lazily loaded chunks (dist/cli/main.js + chunk-*.js),
 * made by esbuild from src/cli/main.ts. A command loads only its own group's chunks, and a bundle
 * starts in a fraction of the time that ~200 separate modules and their packages take: the suite
 * starts hundreds of processes, and an operator's every command is one. Type checking is
 * `npm run typecheck` (tsc), not this. Native and optional packages stay outside the bundle and load
 * from node_modules: better-sqlite3 (a native add-on) and pg-native (pg's optional binding).
 */
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist');

rmSync(out, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/main.ts'],
  outdir: join(out, 'cli'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunk-[hash]',
  external: ['better-sqlite3', 'pg-native'],
  // CommonJS packages inside an ESM bundle call require() for Node's built-ins: give every chunk one.
  banner: { js: "import { createRequire as __lifeboatRequire } from 'node:module'; const require = __lifeboatRequire(import.meta.url);" },
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
});
