import type { Command } from 'commander';

export function registerVaultCommands(_program: Command): void {}
