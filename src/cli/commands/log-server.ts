/** `lifeboat log init | serve | enrol | submitters | add | witnesses: running a log (docs/log.md, "Running a log"). */
import type { Command } from 'commander';

export function registerLogServerCommands(_log: Command): void {
  // Filled in by the change that builds this part of issue 9.
}
