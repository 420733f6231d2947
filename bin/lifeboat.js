#!/usr/bin/env node
// Entry point of the installed CLI: runs the compiled code in dist/ (npm run build).
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv);
