import type { Command } from 'commander';

export function registerRecoveryCommands(_program: Command): void {}
