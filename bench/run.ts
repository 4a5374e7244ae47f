// Runs the benchmarks named on the command line (default: all of them), one
// after the other: `npm run bench -- chain wait-for-body`. `npm run bench`
// compiles them first and runs the JavaScript on plain node, as a server
// would run in production: under a TypeScript loader such as tsx, every
// module the servers load (the packages' own dist included) goes through
// its transform, which made an offloaded request cost about 10 % more CPU.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const folder = fileURLToPath(new URL('.', import.meta.url));
// .js when compiled, .ts when run from source with a loader.
const extension = extname(self);
const available = readdirSync(folder)
  .filter((file) => file.endsWith(extension) && ![`run${extension}`, `support${extension}`].includes(file))
  .map((file) => file.slice(0, -extension.length));
const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${available.join(', ')}`);
  process.exit(2);
}
for (const name of wanted.length > 0 ? wanted : available) {
  console.log(`\n## ${name}\n`);
  // Each runs as this one does: compiled on plain node, or under the same loader.
  const { status } = spawnSync(process.execPath, [...process.execArgv, `${folder}${name}${extension}`], { stdio: 'inherit' });
  if (status !== 0) process.exit(status ?? 1);
}
