export { main, parseCommandLine, USAGE, type ParsedCommand } from './cli.js';
export * from './errors.js';
export { applyOverrides, type Overrides } from './options.js';
