/** Registers every command group. Each group lives in its own file and exports one register function. */
import type { Command } from 'commander';
import { registerVaultCommands } from './vault.js';
import { registerHolderCommands } from './holder.js';
import { registerRecoveryCommands } from './recovery.js';
import { registerPrimaryCommands } from './primary.js';
import { registerDrillCommand } from './drill.js';

export function registerCommands(program: Command): void {
  registerPrimaryCommands(program);
  registerVaultCommands(program);
  registerRecoveryCommands(program);
  registerHolderCommands(program);
  registerDrillCommand(program);
}
