/** `lifeboat log audit | prove | verify-proof: checking a log from its public read API (docs/log.md, "Auditing"). */
import type { Command } from 'commander';

export function registerLogAuditCommands(_log: Command): void {
  // Filled in by the change that builds this part of issue 9.
}
