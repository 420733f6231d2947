import type { Command } from 'commander';

export function registerHolderCommands(_program: Command): void {}
