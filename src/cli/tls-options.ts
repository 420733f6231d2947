/**
 * A server command's TLS options (docs/operations.md, "TLS"): `--tls-cert/--tls-key`, read and checked
 * before anything listens. Clients' `--ca-file` is src/cli/ca-file.ts (the recovery kit has it too,
 * and none of src/http).
 */
import type { Command } from 'commander';
import { loadTls, tlsFilesOf, type TlsMaterial } from '../http/tls.js';

export interface TlsOpts {
  tlsCert?: string;
  tlsKey?: string;
}

/** Adds `--tls-cert FILE --tls-key FILE` to a server command. */
export function addTlsOptions(cmd: Command): Command {
  return cmd.option('--tls-cert <file>', TLS_CERT_HELP).option('--tls-key <file>', TLS_KEY_HELP);
}

export const TLS_CERT_HELP = 'serve https with this PEM certificate (its chain after it); needs --tls-key';
export const TLS_KEY_HELP = 'the PEM private key of --tls-cert (keep it 0600)';

/**
 * The server's TLS from its options: undefined for plain http. Throws UsageError when only one of the
 * two is given, and what loadTls throws (tls_file_unreadable, tls_cert_invalid, tls_key_invalid,
 * tls_key_mismatch), before anything listens.
 */
export function serverTls(o: TlsOpts): TlsMaterial | undefined {
  const files = tlsFilesOf(o);
  return files ? loadTls(files) : undefined;
}
