/**
 * `lifeboat drill --tls`: a throwaway CA and a server certificate for 127.0.0.1 and localhost, made
 * with the openssl CLI in the drill's directory, valid for a day. Its key files are 0600.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LifeboatError } from '../errors.js';

export interface DrillTls {
  /** The CA certificate every client is given (`LIFEBOAT_CA_FILE`). */
  ca: string;
  /** The servers' certificate and key (`--tls-cert`, `--tls-key`). */
  cert: string;
  key: string;
}

/** Makes the CA and the certificate in `dir`. Throws LifeboatError `openssl_failed` when openssl is missing or fails. */
export function makeDrillTls(dir: string): DrillTls {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const run = (...args: string[]): void => {
    try {
      execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'openssl is not installed' : String((err as { stderr?: Buffer }).stderr ?? '').trim().split('\n')[0];
      throw new LifeboatError('openssl_failed', `cannot make the drill's certificates: ${why}`, { hint: 'drill --tls needs the openssl command on the PATH' });
    }
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=lifeboat drill CA');
  run('req', '-new', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'server.ext', '-out', 'server.pem');
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') };
}
