/**
 * `npm run build:kit [-- --out DIR]`: the recovery kit (docs/kit.md), in dist/ by default:
 *   lifeboat-kit         a Node single executable application (SEA): the CommonJS bundle of src/kit/main.ts
 *                        injected (postject) into a copy of the node binary running this script;
 *   lifeboat-kit.mjs     the same bundle as one ESM file, for a machine that has node (`node lifeboat-kit.mjs`);
 *   lifeboat-kit.sha256  their SHA-256 in sha256sum's format (`lifeboat kit sign` signs it).
 * The bundle is src/cli/main.ts with src/kit/commands.ts in place of src/cli/commands/index.ts (the
 * full CLI's lazily loaded groups): the CLI's voice and exit codes, the kit's subset of commands. It
 * must not hold a server, a database driver or a native add-on: the build reads esbuild's metafile and
 * fails naming any of them. Only this script writes these files; `npm run build` (which empties dist/)
 * does not make them.
 */
import { build } from 'esbuild';
import { inject } from 'postject';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outArg = process.argv.indexOf('--out');
const out = resolve(outArg > 0 ? process.argv[outArg + 1] : join(root, 'dist'));
/** Node's SEA sentinel (docs: "Single executable applications", Node 20). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** Packages and sources that must never be in the kit: servers, database drivers, native add-ons, OPAQUE. */
const FORBIDDEN_PACKAGES = /node_modules\/(fastify|@fastify\/[^/]+|pg|pg-[^/]+|better-sqlite3|kysely|@serenity-kit\/opaque|pino)\//;
const FORBIDDEN_SOURCES = /^src\/(http\/(?!trust-proxy\.ts$)|store\/|keynode\/store\/(?!(types|record-types)\.ts$)|keynode\/(server|service|runtime|failover)\.ts|backup\/(server|service|node-link|agent|client|client-http)\.ts|holder\/server\.ts|log\/server\/)/;

/** The esbuild resolver plugin that puts the kit's commands in place of the full CLI's groups. */
const kitCommands = {
  name: 'kit-commands',
  setup(b) {
    b.onResolve({ filter: /^\.\/commands\/index\.js$/ }, (args) => (args.importer.endsWith(join('src', 'cli', 'main.ts')) ? { path: join(root, 'src/kit/commands.ts') } : undefined));
  },
};

const common = {
  absWorkingDir: root,
  entryPoints: ['src/kit/main.ts'],
  bundle: true,
  platform: 'node',
  target: 'node20',
  metafile: true,
  write: false,
  legalComments: 'none',
  // Smaller source parses faster: the .mjs has no code cache (the single executable has one).
  minify: true,
  keepNames: true,
  logLevel: 'warning',
  plugins: [kitCommands],
  // main.ts runs itself when import.meta.url is its own file: in the kit, src/kit/main.ts runs it.
  define: { 'import.meta.url': '"lifeboat-kit:bundle"' },
};

/** Throws naming every forbidden input of a bundle and every import left outside it. */
function checkMetafile(meta, what) {
  const bad = Object.keys(meta.inputs).filter((p) => FORBIDDEN_PACKAGES.test(p) || FORBIDDEN_SOURCES.test(p) || p.endsWith('.node'));
  const external = Object.values(meta.inputs).flatMap((i) => i.imports.filter((x) => x.external && !x.path.startsWith('node:') && !x.path.startsWith('.') && x.path !== '<runtime>' && !/^[a-z_]+$/.test(x.path)).map((x) => x.path));
  if (bad.length || external.length) {
    throw new Error(`the ${what} bundle holds what the kit must not: ${[...bad, ...external.map((e) => `external ${e}`)].join(', ')}`);
  }
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

mkdirSync(out, { recursive: true });
const cjs = await build({ ...common, format: 'cjs', outfile: join(out, 'lifeboat-kit.cjs') });
checkMetafile(cjs.metafile, 'CommonJS');
// The .mjs is the same CommonJS bundle inside an ES module: an ESM bundle would load every Node
// built-in any command uses at start-up (ESM imports are hoisted), a third of a second here. Not in
// parentheses: V8 compiles a parenthesised function eagerly, all of it.
const mjs = Buffer.concat([
  Buffer.from(
    "#!/usr/bin/env node\n// The Lifeboat recovery kit (docs/kit.md): its CommonJS bundle, run from an ES module file.\n" +
      "import { createRequire } from 'node:module';\nimport { fileURLToPath } from 'node:url';\nimport { dirname } from 'node:path';\n" +
      'const __kitFile = fileURLToPath(import.meta.url);\nconst kit = function (exports, require, module, __filename, __dirname) {\n',
  ),
  Buffer.from(cjs.outputFiles[0].contents),
  Buffer.from('\n};\nkit.call({}, {}, createRequire(import.meta.url), { exports: {} }, __kitFile, dirname(__kitFile));\n'),
]);

const work = mkdtempSync(join(tmpdir(), 'lb-kit-build-'));
try {
  const main = join(work, 'kit.cjs');
  const blob = join(work, 'kit.blob');
  writeFileSync(main, cjs.outputFiles[0].contents);
  writeFileSync(join(work, 'sea-config.json'), JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }));
  execFileSync(process.execPath, ['--experimental-sea-config', join(work, 'sea-config.json')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exe = join(work, 'lifeboat-kit');
  copyFileSync(process.execPath, exe);
  chmodSync(exe, 0o755);
  await inject(exe, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE });
  renameOrCopy(exe, join(out, 'lifeboat-kit'));
} finally {
  rmSync(work, { recursive: true, force: true });
}
writeFileSync(join(out, 'lifeboat-kit.mjs'), mjs, { mode: 0o755 });
chmodSync(join(out, 'lifeboat-kit.mjs'), 0o755);
const exeBytes = readFileSync(join(out, 'lifeboat-kit'));
writeFileSync(join(out, 'lifeboat-kit.sha256'), `${sha256(exeBytes)}  lifeboat-kit\n${sha256(mjs)}  lifeboat-kit.mjs\n`);
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
process.stdout.write(`recovery kit: ${join(out, 'lifeboat-kit')} (${mb(statSync(join(out, 'lifeboat-kit')).size)}, node ${process.version}), ${join(out, 'lifeboat-kit.mjs')} (${mb(mjs.length)}), lifeboat-kit.sha256\n`);

/** rename(2) when on one file system (tmp and out may not be), else a copy. */
function renameOrCopy(from, to) {
  try {
    renameSync(from, to);
  } catch {
    copyFileSync(from, to);
    chmodSync(to, 0o755);
  }
}
