#!/usr/bin/env node
// Keeps every package the same shape, so that none drifts from the others:
// files, package.json fields, tsconfig, root references, and the Errors
// catalogue (every code thrown in src/ is documented in README, and back).
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const rootPkg = readJson(join(root, 'package.json'));
const rootRefs = new Set(readJson(join(root, 'tsconfig.json')).references.map((r) => r.path));
const problems = [];

for (const dir of readdirSync(join(root, 'packages')).sort()) {
  const at = join(root, 'packages', dir);
  const fail = (what) => problems.push(`packages/${dir}: ${what}`);

  for (const file of ['package.json', 'tsconfig.json', 'README.md', 'CHANGELOG.md', 'src/index.ts', 'src/errors.ts']) {
    if (!existsSync(join(at, file))) fail(`missing ${file}`);
  }
  if (!existsSync(join(at, 'test')) || !readdirSync(join(at, 'test')).some((f) => f.endsWith('.test.ts'))) {
    fail('no test/*.test.ts');
  }
  if (!existsSync(join(at, 'package.json'))) continue;

  const pkg = readJson(join(at, 'package.json'));
  const expect = (field, actual, wanted) => {
    if (JSON.stringify(actual) !== JSON.stringify(wanted)) {
      fail(`package.json ${field} is ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}`);
    }
  };
  expect('type', pkg.type, 'module');
  expect('engines', pkg.engines, rootPkg.engines);
  expect('files', pkg.files, ['dist']);
  expect('sideEffects', pkg.sideEffects, false);
  expect('license', pkg.license, 'MIT');
  expect('repository.directory', pkg.repository?.directory, `packages/${dir}`);
  expect('exports["."]', pkg.exports?.['.'], { types: './dist/index.d.ts', default: './dist/index.js' });
  if (!pkg.name?.startsWith('@unblock/') && pkg.name !== 'unblock') fail(`package.json name ${pkg.name} is not @unblock/*`);
  if (!/^\d+\.\d+\.\d+/.test(pkg.version ?? '')) fail('package.json has no version');
  if (!pkg.description) fail('package.json has no description');

  const tsconfig = readJson(join(at, 'tsconfig.json'));
  expect('tsconfig extends', tsconfig.extends, '../../tsconfig.base.json');
  if (!rootRefs.has(`packages/${dir}`)) fail('not referenced from the root tsconfig.json');
  const refs = new Set((tsconfig.references ?? []).map((r) => r.path));
  for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies })) {
    if (dep.startsWith('@unblock/') && !refs.has(`../${dep.slice('@unblock/'.length)}`)) {
      fail(`depends on ${dep} but tsconfig.json does not reference it`);
    }
  }

  if (existsSync(join(at, 'README.md')) && existsSync(join(at, 'src'))) {
    const readme = readFileSync(join(at, 'README.md'), 'utf8');
    for (const heading of ['## Install', '## API', '## Errors', '## License']) {
      if (!readme.includes(`\n${heading}`)) fail(`README.md has no "${heading}" section`);
    }
    const thrown = codesIn(readdirSync(join(at, 'src')).filter((f) => f.endsWith('.ts')).map((f) => readFileSync(join(at, 'src', f), 'utf8')).join('\n'));
    const documented = codesIn(readme);
    for (const code of thrown) if (!documented.has(code)) fail(`error code ${code} is not documented in README.md`);
    for (const code of documented) if (!thrown.has(code)) fail(`README.md documents ${code}, which src/ never uses`);
  }
}

if (problems.length > 0) {
  console.error(`check-packages: ${problems.length} problem(s)\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  process.exit(1);
}
console.log('check-packages: every package has the expected shape');

function readJson(file) {
  return JSON.parse(readFileSync(file, 'utf8'));
}

function codesIn(text) {
  return new Set(text.match(/UNBLOCK_(?:ERR|WARN)_[A-Z0-9_]+/g) ?? []);
}
