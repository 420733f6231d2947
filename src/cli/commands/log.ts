/**
 * `lifeboat log …`: the public backup log (docs/log.md). The group is split by role, one file each:
 * running a log (./log-server.ts), witnessing one (./log-witness.ts), and auditing one from its public
 * read API alone (./log-audit.ts).
 */
import type { Command } from 'commander';
import { registerLogServerCommands } from './log-server.js';
import { registerLogWitnessCommands } from './log-witness.js';
import { registerLogAuditCommands } from './log-audit.js';

export function registerLogCommands(program: Command): void {
  const log = program
    .command('log')
    .description('the public backup log: an append-only transparency log (C2SP tlog-tiles) that anyone can audit');
  registerLogServerCommands(log);
  registerLogWitnessCommands(log);
  registerLogAuditCommands(log);
}
