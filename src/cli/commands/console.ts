/** `lifeboat console serve`: the coverage report as a web page for signed-in operators (docs/coverage.md, "The console"). */
import type { Command } from 'commander';
import { loadFleet, resolveCredential } from '../../coverage/fleet.js';
import { startConsole } from '../../console/server.js';
import { InvalidInputError, UsageError } from '../../errors.js';
import { parseListenAddress } from '../../http/listen.js';
import { createOutput, untilSignalled } from '../io.js';
import { MONITORING_HELP } from '../server-log.js';
import { intIn } from '../options.js';
import { FLEET_HELP, fleetPath, runCoverage } from './coverage.js';
import { serverTls, TLS_CERT_HELP, TLS_KEY_HELP, type TlsOpts } from '../tls-options.js';

/** 127.0.0.0/8, ::1 or localhost: the only hosts the console serves plain http on. */
function isLoopbackHost(host: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1' || host.toLowerCase() === 'localhost';
}

export function registerConsoleCommands(program: Command): void {
  const c = program.command('console').description('the coverage console: a web page of `lifeboat coverage` (docs/coverage.md)');
  c.command('serve')
    .description('serve the console until SIGTERM (first stdout line: listening on URL); operators sign in with the console token')
    .option('--fleet <file>', FLEET_HELP)
    .option('--listen <host:port>', 'address to listen on (loopback, or any with --tls-cert/--tls-key)', '127.0.0.1:8490')
    .option('--tls-cert <file>', TLS_CERT_HELP)
    .option('--tls-key <file>', TLS_KEY_HELP)
    .option('--token-file <file>', 'a 0600 file holding the operator token the login form asks for')
    .option('--token-fd <n>', 'read that token from this file descriptor instead', intIn(3, 1023))
    .option('--interval <seconds>', 'how often it asks the fleet (and the page reloads)', intIn(2, 86_400), 30)
    .option('--secure-cookies', 'mark the cookies Secure: the console is reached over TLS through a proxy in front (on by itself with --tls-cert)')
    .option('--log-level <level>', 'request log level on stderr: info, warn, error or silent', 'silent')
    .option('--json', 'print {"url"} as the first stdout line')
    .addHelpText('after', `${MONITORING_HELP}\nThese three need no console session; /readyz fails until a report younger than three intervals is in.`)
    .action(async (o: TlsOpts & { fleet?: string; listen: string; tokenFile?: string; tokenFd?: number; interval: number; secureCookies?: boolean; logLevel: string; json?: boolean }) => {
      const tls = serverTls(o);
      if ((o.tokenFile === undefined) === (o.tokenFd === undefined)) throw new UsageError('give one of --token-file FILE or --token-fd N', { hint: 'the operator token signs operators in; it never goes on the command line' });
      // The token and the session cookie cross the network: plain http only on loopback.
      if (!tls && !isLoopbackHost(parseListenAddress(o.listen).host)) throw new UsageError(`--listen ${o.listen} is not loopback, and the console would serve it plain http`, { hint: 'give --tls-cert FILE --tls-key FILE, or listen on 127.0.0.1 with a TLS proxy in front (and --secure-cookies)' });
      const token = resolveCredential(o.tokenFile !== undefined ? { file: o.tokenFile } : { fd: o.tokenFd! });
      if (token.length < 16) throw new InvalidInputError('the console token is shorter than 16 characters', { code: 'weak_token', hint: 'make one with: openssl rand -hex 32 > console.token; chmod 600 console.token' });
      const fleet = loadFleet(fleetPath(o.fleet));
      const server = await startConsole({ token, collect: () => runCoverage(fleet), intervalS: o.interval, secureCookies: !!o.secureCookies || tls !== undefined, tls, listen: o.listen, logger: o.logLevel === 'silent' ? false : { level: o.logLevel, stream: process.stderr } });
      process.stdout.write(o.json ? `${JSON.stringify({ url: server.url })}\n` : `listening on ${server.url}\n`);
      createOutput({ quiet: o.json }).info(`console for ${fleet.nodes.length} nodes, ${fleet.backup_services.length} backup services; every ${o.interval} s`);
      await untilSignalled();
      await server.close();
    });
}
