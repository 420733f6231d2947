import type { Command } from 'commander';

export function registerDrillCommand(_program: Command): void {}
