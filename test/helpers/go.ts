/**
 * Building the Go interop peers in test/interop/ with Debian's golang-go and golang-golang-x-mod-dev
 * (.ci/run installs both): GOPATH mode over /usr/share/gocode, so nothing is downloaded. A missing Go
 * toolchain is an error, not a skip: the interop tests are part of the suite.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './cli.js';

const run = promisify(execFile);

/** Where Debian's golang-golang-x-mod-dev puts golang.org/x/mod. */
export const GOPATH = '/usr/share/gocode';

/**
 * Builds test/interop/<name>.go into a temp directory and returns the binary's path. The directory
 * is removed when the test process exits, passed or failed.
 */
export async function buildGoPeer(name: string): Promise<string> {
  if (!existsSync(join(GOPATH, 'src/golang.org/x/mod/sumdb/note'))) {
    throw new Error('golang.org/x/mod is not installed: apt-get install golang-go golang-golang-x-mod-dev (.ci/run does)');
  }
  const dir = mkdtempSync(join(tmpdir(), 'lifeboat-go-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, name);
  await run('go', ['build', '-o', out, join(REPO_ROOT, 'test/interop', `${name}.go`)], {
    env: { ...process.env, GO111MODULE: 'off', GOPATH, GOCACHE: join(tmpdir(), 'lifeboat-gocache'), GOFLAGS: '' },
  });
  return out;
}
