import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { schemaFile, schemaText } from '../scripts/generate-schema.js';
import { composeSchema, stepNames } from '../src/index.js';

describe('schema.json', () => {
  it('should be up to date with the packages\' schemas (npm run generate-schema -w @unblock/config)', () => {
    assert.equal(readFileSync(schemaFile, 'utf8'), schemaText());
  });

  it('should be shipped as @unblock/config/schema.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { exports: Record<string, unknown> };
    assert.equal(pkg.exports['./schema.json'], './dist/schema.json');
  });

  describe('as an editor uses it', () => {
    const ajv = new Ajv({ strict: false });
    const validate = ajv.compile(composeSchema());

    it('should accept a config of every structural step', () => {
      const ok = validate({
        $schema: './node_modules/@unblock/config/dist/schema.json',
        server: { port: 3000, headersTimeout: '5s', workers: 'auto' },
        chain: [{ use: 'compression', options: { threshold: 1024 } }, { mount: '/r', chain: [{ app: './app.js' }] }],
      });
      assert.equal(ok, true, JSON.stringify(validate.errors));
    });

    it('should reject an unknown step and an unknown option', () => {
      assert.equal(validate({ chain: [{ nope: 1 }] }), false);
      assert.equal(validate({ chain: [{ app: './a.js', typo: 1 }] }), false);
      assert.equal(validate({ server: { prot: 1 }, chain: [] }), false);
    });

    it('should describe every step', () => {
      const definitions = composeSchema().definitions as Record<string, unknown>;
      for (const name of stepNames()) assert.ok(definitions[`step:${name}`], name);
    });
  });
});
