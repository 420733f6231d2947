/**
 * One machine for a production doc's blocks (docs/keynode-operations.md, docs/backup-server.md): its
 * absolute paths (/var/…, /etc/…) live under a directory of the test (`onMachine`), and a prelude puts
 * in place what a test process cannot do for real, each doing what the doc relies on:
 *   - `lifeboat` is the checkout's bin/lifeboat.js (as after `npm link`), on PATH;
 *   - `sudo -u USER …` and `--preserve-env=…` run the command as this user (there is one user here),
 *     `lifeboat node init` on a pseudo-terminal (util-linux `script`), where it shows the 24 words;
 *   - `install -o USER -g GROUP …` installs without the owner (the service users do not exist here);
 *   - `systemctl start|stop|restart UNIT` runs the doc's own unit file: like systemd, it refuses to start
 *     a unit whose ReadWritePaths directory is missing, reads its Environment and EnvironmentFile (a
 *     leading `-`: optional), runs its ExecStart (`%%` is `%`; a `--listen` port becomes 0, a free one,
 *     and the URL the server prints is kept in $RUN/UNIT.url), stops it with SIGTERM; a `Type=oneshot`
 *     unit runs to its end. Its stdout and stderr go to $RUN/UNIT.out and .err. `systemctl reload UNIT`
 *     runs the unit's ExecReload with $MAINPID, then waits for the server's log line that says the reload
 *     was done or refused ("… reloaded" / "… not reloaded"), as systemd's notify-reload would.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './cli.js';

export interface Unit {
  name: string;
  environment: string[];
  environmentFile?: string;
  execStart: string;
  execReload?: string;
  readWritePaths: string[];
  oneshot: boolean;
}

/** The systemd units (```ini blocks starting with `# /etc/systemd/system/NAME.service`) of a doc. */
export function unitsOf(doc: string): Unit[] {
  const text = readFileSync(join(REPO_ROOT, doc), 'utf8');
  const units: Unit[] = [];
  for (const block of text.matchAll(/^```ini\n([\s\S]*?)^```$/gm)) {
    for (const part of block[1]!.split(/^(?=# \/etc\/systemd\/system\/)/m)) {
      const name = /^# \/etc\/systemd\/system\/([\w-]+)\.service$/m.exec(part)?.[1];
      if (!name) continue;
      const values = (key: string): string[] => [...part.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!);
      const execStart = values('ExecStart')[0];
      if (!execStart) throw new Error(`${doc}: unit ${name} has no ExecStart`);
      const envFile = values('EnvironmentFile')[0];
      const execReload = values('ExecReload')[0];
      units.push({
        name,
        environment: values('Environment'),
        ...(envFile ? { environmentFile: envFile } : {}),
        execStart,
        ...(execReload ? { execReload } : {}),
        readWritePaths: values('ReadWritePaths').flatMap((v) => v.split(/\s+/)).filter(Boolean),
        oneshot: values('Type').includes('oneshot'),
      });
    }
  }
  return units;
}

/** The text with every absolute /var/… and /etc/… path moved under $ROOT (the machine's directory). */
export function onMachine(text: string): string {
  return text.replace(/(^|[\s'"=(:-])\/(var|etc)\//g, '$1$ROOT/$2/');
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

function unitFunctions(u: Unit): string {
  const exec = onMachine(u.execStart.replace(/%%/g, '%').replace(/\/usr\/bin\/lifeboat\b/g, 'lifeboat').replace(/--listen 127\.0\.0\.1:\d+/, '--listen 127.0.0.1:0'));
  const envFile = u.environmentFile ? onMachine(u.environmentFile) : undefined;
  const loadEnv = [
    ...(envFile ? [envFile.startsWith('-') ? `[ ! -f "${envFile.slice(1)}" ] || . "${envFile.slice(1)}"` : `. "${envFile}"`] : []),
    ...u.environment.map((e) => `export ${onMachine(e)}`),
  ].join('; ');
  const run = `( set -a; ${loadEnv || ':'}; set +a; exec ${exec} )`;
  const checks = u.readWritePaths.map((p) => `[ -d "${onMachine(p)}" ] || { echo "systemd: ${u.name}: ReadWritePaths ${p} does not exist" >&2; return 1; }`).join('\n  ');
  const reload = u.execReload
    ? `__reload_${u.name}() {
  local pid n; pid=$(cat "$RUN/${u.name}.pid"); n=$(grep -c 'reloaded' "$RUN/${u.name}.err" || true)
  ( MAINPID=$pid; ${u.execReload.replace(/\$MAINPID/g, '"$MAINPID"')} )
  until [ "$(grep -c 'reloaded' "$RUN/${u.name}.err" || true)" -gt "$n" ]; do kill -0 "$pid" 2>/dev/null || return 1; sleep 0.05; done
}\n`
    : '';
  if (u.oneshot) return `__start_${u.name}() {\n  ${checks || ':'}\n  ${run} >> "$RUN/${u.name}.out" 2>> "$RUN/${u.name}.err"\n}`;
  return `${reload}__start_${u.name}() {
  ${checks || ':'}
  rm -f "$RUN/${u.name}.out" "$RUN/${u.name}.url"
  ${run} > "$RUN/${u.name}.out" 2> "$RUN/${u.name}.err" &
  echo $! > "$RUN/${u.name}.pid"
  until grep -q '^listening on \\|"url"' "$RUN/${u.name}.out" 2>/dev/null; do kill -0 $! 2>/dev/null || { cat "$RUN/${u.name}.err" >&2; return 1; }; sleep 0.05; done
  grep -o 'http://[0-9.:]*' "$RUN/${u.name}.out" | head -n1 > "$RUN/${u.name}.url"
}`;
}

/** The prelude for blocks run on one machine whose directory is `root`, with the doc's units. */
export function machinePrelude(root: string, units: Unit[]): string {
  return [
    `export ROOT=${q(root)}; RUN="$ROOT/run"; mkdir -p "$RUN/bin"`,
    `printf '#!/bin/sh\\nexec node %s "$@"\\n' ${q(join(REPO_ROOT, 'bin/lifeboat.js'))} > "$RUN/bin/lifeboat"; chmod +x "$RUN/bin/lifeboat"; export PATH="$RUN/bin:$PATH"`,
    // node init shows the 24 words on the operator's terminal: it gets one (util-linux script)
    `sudo() { while [ $# -gt 0 ]; do case "$1" in -u) shift 2 ;; -*) shift ;; *) break ;; esac; done
  if [ "$1 $2 $3" = "lifeboat node init" ]; then script -qec "$(printf '%q ' "$@")" /dev/null < /dev/null; else "$@"; fi; }`,
    `install() { local a=(); while [ $# -gt 0 ]; do case "$1" in -o|-g) shift 2 ;; *) a+=("$1"); shift ;; esac; done; command install "\${a[@]}"; }`,
    `__stop() { [ -f "$RUN/$1.pid" ] || return 0; local pid; pid=$(cat "$RUN/$1.pid"); rm -f "$RUN/$1.pid"; kill "$pid" 2>/dev/null || return 0; wait "$pid" || true; }`,
    `systemctl() { local unit=\${2%.service}; case "$1" in start) "__start_$unit" ;; stop) __stop "$unit" ;; restart) __stop "$unit"; "__start_$unit" ;; reload) "__reload_$unit" ;; *) echo "systemctl $1: not here" >&2; return 1 ;; esac; }`,
    ...units.map(unitFunctions),
  ].join('\n');
}
