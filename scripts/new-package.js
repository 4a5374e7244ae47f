#!/usr/bin/env node
// Starts a package from scripts/template, so that it has the shape
// scripts/check-packages.js expects: `npm run new-package -- <name> "<description>"`.
import { cpSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const [name, description = ''] = process.argv.slice(2);
if (!name || !/^[a-z][a-z0-9-]*$/.test(name)) {
  console.error('usage: npm run new-package -- <name> "<description>"  (name: lowercase, dashes)');
  process.exit(2);
}
const root = new URL('..', import.meta.url).pathname;
const target = join(root, 'packages', name);
if (existsSync(target)) {
  console.error(`packages/${name} already exists`);
  process.exit(2);
}
cpSync(join(root, 'scripts/template'), target, { recursive: true });
fill(target);
renameSync(join(target, 'test/__NAME__.test.ts'), join(target, `test/${name}.test.ts`));

const tsconfigPath = join(root, 'tsconfig.json');
const tsconfig = JSON.parse(readFileSync(tsconfigPath, 'utf8'));
tsconfig.references.push({ path: `packages/${name}` });
writeFileSync(tsconfigPath, `${JSON.stringify(tsconfig, null, 2)}\n`);
console.log(`created packages/${name}; run npm install to link it`);

function fill(dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) fill(path);
    else writeFileSync(path, readFileSync(path, 'utf8').replaceAll('__NAME__', name).replaceAll('__DESCRIPTION__', description));
  }
}
