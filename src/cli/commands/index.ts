/** Registers every command group. Each group lives in its own file and exports one register function. */
import type { Command } from 'commander';
import { registerVaultCommands } from './vault.js';
import { registerHolderCommands } from './holder.js';
import { registerRecoveryCommands } from './recovery.js';
import { registerPrimaryCommands } from './primary.js';
import { registerDrillCommand } from './drill.js';
import { registerNodeCommands } from './node.js';
import { registerKeyCommands } from './key.js';
import { registerBackupCommands } from './backup.js';
import { registerLogCommands } from './log.js';
import { registerKeyshareCommands } from './keyshare.js';
import { registerErsCommands } from './ers.js';
import { pushToHoldersListener, refuseBehindHolders } from '../../recovery/sync.js';
import { createOutput } from '../io.js';

export function registerCommands(program: Command): void {
  registerPrimaryCommands(program);
  const { warn } = createOutput();
  registerVaultCommands(program, { onWrite: pushToHoldersListener(warn), guard: (path) => refuseBehindHolders(path, warn) });
  registerRecoveryCommands(program);
  registerHolderCommands(program);
  registerNodeCommands(program);
  registerKeyCommands(program);
  registerBackupCommands(program);
  registerLogCommands(program);
  registerKeyshareCommands(program);
  registerErsCommands(program);
  registerDrillCommand(program);
}
