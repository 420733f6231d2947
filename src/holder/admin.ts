/**
 * The holder's local admin channel (docs/holder.md, "Administration while it runs"): `holder serve`
 * listens on a unix socket, `admin.sock` in its data directory (0600, in the 0700 directory), and
 * `holder enrol` and `holder release` send their change there while it runs, so the serving process
 * applies it through the same HolderService (one mutex, the audit log, the durable writes) without a
 * restart. Only the holder's own OS user can connect: the kernel checks the socket's mode, which is
 * the same trust as reading identity.json, so the channel gives nobody a power they did not have.
 *
 * Protocol: one request per connection, one JSON line each way (at most 64 KiB):
 *   {"op": "enrol", "primary"?: lb1, "add_operators": [lb1], "remove_operators": [lb1|fingerprint]}
 *     -> {"ok": true, "result": {"changes": [{what, fingerprint, changed}]}}
 *   {"op": "release", "request": <signed release request>}
 *     -> {"ok": true, "result": <release response>}
 *   a refusal -> {"ok": false, "error": {"err_type", "message", "hint"?}}
 * The answer is written after the service returned, i.e. after every file it changed was fsynced.
 */
import { chmodSync, lstatSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';
import { ForbiddenError, InvalidInputError, LifeboatError, PeerError } from '../errors.js';
import type { ReleaseResponse } from '../recovery/release.js';
import type { HolderService } from './service.js';

export const ADMIN_SOCKET = 'admin.sock';
const MAX_LINE = 64 * 1024;
const TIMEOUT_MS = 30_000;

const identityArg = z.string().min(1).max(200);
const adminRequest = z.discriminatedUnion('op', [
  z.object({ op: z.literal('enrol'), primary: identityArg.optional(), add_operators: z.array(identityArg).max(32).default([]), remove_operators: z.array(identityArg).max(32).default([]) }),
  z.object({ op: z.literal('release'), request: z.unknown() }),
]);
export type AdminRequest = z.input<typeof adminRequest>;

/** One line of `holder enrol`'s result. */
export interface EnrolChange {
  what: 'operator added' | 'operator removed' | 'primary enrolled';
  fingerprint: string;
  changed: boolean;
}

/** The socket path of a holder directory. */
export function adminSocketPath(dir: string): string {
  return join(dir, ADMIN_SOCKET);
}

/**
 * Applies an enrolment change as `holder enrol` asks it, locally or for the admin socket: operator
 * additions first, then removals (so replacing the only operator works in one go), then the primary.
 * Throws what HolderService.addOperator, removeOperator and enrol throw; changes made before a
 * refusal stay made (each is durable and audited on its own).
 */
export async function applyEnrol(service: HolderService, change: { primary?: string; addOperators: string[]; removeOperators: string[] }): Promise<EnrolChange[]> {
  const local = { kind: 'local' } as const;
  const changes: EnrolChange[] = [];
  for (const t of change.addOperators) changes.push({ what: 'operator added', ...(await service.addOperator(local, t)) });
  for (const t of change.removeOperators) changes.push({ what: 'operator removed', ...(await service.removeOperator(local, t)), changed: true });
  if (change.primary) {
    const r = await service.enrol(local, change.primary);
    changes.push({ what: 'primary enrolled', fingerprint: r.fingerprint, changed: r.changed });
  }
  return changes;
}

async function answer(service: HolderService, line: string): Promise<unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new InvalidInputError('the admin request is not json', { code: 'malformed' });
  }
  const r = adminRequest.safeParse(value);
  if (!r.success) throw new InvalidInputError('the admin request is not one this holder knows', { code: 'malformed', hint: 'use the same lifeboat version for `holder serve` and the command' });
  const req = r.data;
  if (req.op === 'release') return service.release({ kind: 'local' }, req.request);
  return { changes: await applyEnrol(service, { primary: req.primary, addOperators: req.add_operators, removeOperators: req.remove_operators }) };
}

function serveConnection(service: HolderService, sock: Socket, log: (line: string) => void): void {
  let buf = '';
  let done = false;
  sock.setEncoding('utf8');
  sock.setTimeout(TIMEOUT_MS, () => sock.destroy());
  sock.on('error', () => sock.destroy());
  sock.on('data', (chunk: string) => {
    if (done) return;
    buf += chunk;
    const nl = buf.indexOf('\n');
    if (nl < 0 && buf.length <= MAX_LINE) return;
    done = true;
    const reply = (doc: unknown) => sock.end(`${JSON.stringify(doc)}\n`);
    if (nl < 0 || nl > MAX_LINE) {
      reply({ ok: false, error: new InvalidInputError('the admin request is over 64 KiB', { code: 'request_too_large' }).toJSON() });
      return;
    }
    const op = /"op"\s*:\s*"(enrol|release)"/.exec(buf)?.[1] ?? 'unknown';
    answer(service, buf.slice(0, nl)).then(
      (result) => {
        log(`admin ${op}: ok`);
        reply({ ok: true, result });
      },
      (err: unknown) => {
        const e = err instanceof LifeboatError ? err : new LifeboatError('internal_error', 'the holder failed to apply the admin request', { status: 500 });
        log(`admin ${op}: refused (${e.code})`);
        reply({ ok: false, error: e.toJSON() });
      },
    );
  });
}

/**
 * Listens on the admin socket of the service's directory. A socket file left by a process that was
 * killed is removed first (the caller holds the directory lock, so it is not another holder's). The
 * socket is made 0600 before the directory (0700) would let anyone else near it. Resolves with a
 * close function that stops listening and removes the socket file.
 */
export async function startAdminSocket(service: HolderService, opts: { log?: (line: string) => void } = {}): Promise<{ path: string; close(): Promise<void> }> {
  const path = adminSocketPath(service.store.paths.dir);
  rmSync(path, { force: true });
  const log = opts.log ?? (() => {});
  const server: Server = createServer((sock) => serveConnection(service, sock, log));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path, readableAll: false, writableAll: false }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, 0o600);
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          rmSync(path, { force: true });
          resolve();
        });
      }),
  };
}

/**
 * Checks a holder's admin socket before a command trusts it: it must be a socket owned by the user
 * running the command, reachable by nobody else. Returns false when there is no socket (no running
 * holder: the command opens the directory itself). Throws ForbiddenError `admin_socket_not_owned`
 * (another user's socket: a planted one, or the command run as the wrong user) and InvalidInputError
 * `insecure_permissions` (group or others may connect).
 */
export function checkAdminSocket(dir: string): boolean {
  const path = adminSocketPath(dir);
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  if (!st.isSocket()) throw new InvalidInputError(`${path} is not a socket`, { code: 'admin_socket_invalid', hint: 'remove it; `holder serve` makes the socket when it starts' });
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new ForbiddenError(`the admin socket ${path} belongs to uid ${st.uid}, not to this user (uid ${uid})`, 'admin_socket_not_owned', 'run the command as the user that runs `holder serve` (e.g. sudo -u lifeboat-holder lifeboat holder …); a socket of another user is never trusted');
  }
  if ((st.mode & 0o077) !== 0) {
    throw new InvalidInputError(`the admin socket ${path} can be reached by others (mode ${(st.mode & 0o777).toString(8)})`, { code: 'insecure_permissions', hint: 'restart `holder serve`, which makes it 0600, and find out who changed it' });
  }
  return true;
}

/**
 * Sends one request to the running holder's admin socket and returns its result. Resolves undefined
 * when nothing listens there (a socket file left by a killed holder): the caller opens the directory
 * itself. Throws the holder's refusal as a LifeboatError with its err_type, and PeerError
 * `peer_bad_answer` for an answer that is not the protocol.
 */
export function sendAdminRequest(dir: string, req: { op: 'enrol'; primary?: string; add_operators: string[]; remove_operators: string[] }): Promise<{ changes: EnrolChange[] } | undefined>;
export function sendAdminRequest(dir: string, req: { op: 'release'; request: unknown }): Promise<ReleaseResponse | undefined>;
export function sendAdminRequest(dir: string, req: AdminRequest): Promise<unknown> {
  const path = adminSocketPath(dir);
  return new Promise((resolve, reject) => {
    const sock = createConnection({ path });
    let buf = '';
    let connected = false;
    sock.setEncoding('utf8');
    sock.setTimeout(TIMEOUT_MS, () => sock.destroy(new PeerError('peer_unreachable', 'the running holder did not answer on its admin socket in time')));
    sock.on('connect', () => {
      connected = true;
      sock.write(`${JSON.stringify(req)}\n`);
    });
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.length > 4 * MAX_LINE) sock.destroy(new PeerError('peer_bad_answer', 'the admin socket answered too much'));
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected && (err.code === 'ECONNREFUSED' || err.code === 'ENOENT')) resolve(undefined);
      else reject(err instanceof LifeboatError ? err : new PeerError('peer_unreachable', `the admin socket ${path} failed (${err.code ?? 'error'})`));
    });
    sock.on('close', (hadError) => {
      if (hadError) return;
      let doc: { ok?: unknown; result?: unknown; error?: { err_type?: unknown; message?: unknown; hint?: unknown } };
      try {
        doc = JSON.parse(buf) as typeof doc;
      } catch {
        reject(new PeerError('peer_bad_answer', 'the admin socket answered something that is not json'));
        return;
      }
      if (doc.ok === true) resolve(doc.result);
      else if (doc.error && typeof doc.error.err_type === 'string' && /^[a-z0-9_]{1,64}$/.test(doc.error.err_type)) {
        const e = doc.error;
        reject(new LifeboatError(e.err_type as string, String(e.message ?? 'refused'), { hint: typeof e.hint === 'string' ? e.hint : undefined }));
      } else reject(new PeerError('peer_bad_answer', 'the admin socket answered something that is not the protocol'));
    });
  });
}
