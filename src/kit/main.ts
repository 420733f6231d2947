/**
 * The recovery kit's entry (docs/kit.md): the CLI's main with the kit's commands (src/kit/commands.ts,
 * put in place of the full CLI's groups by scripts/build-kit.mjs). Built twice: a CommonJS bundle
 * injected into a copy of node as a single executable (dist/lifeboat-kit), and an ESM bundle for a
 * machine that has node (dist/lifeboat-kit.mjs). No top-level await: a single executable runs CommonJS.
 */
import { main } from '../cli/main.js';

void main(process.argv).then((code) => {
  process.exitCode = code;
});
