#!/usr/bin/env node
import { main } from './cli.js';

const code = await main(process.argv.slice(2));
// Exit at once: a built chain (app modules, pools) may hold handles open.
process.exit(code);
