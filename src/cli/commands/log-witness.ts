/** `lifeboat log witness …: co-signing a log's checkpoints (docs/log.md, "Witnesses"). */
import type { Command } from 'commander';

export function registerLogWitnessCommands(_log: Command): void {
  // Filled in by the change that builds this part of issue 9.
}
