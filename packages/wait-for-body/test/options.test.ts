import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { optionsSchema, waitForBody, type WaitForBodyOptions } from '../src/index.js';
import { SIZE_PATTERN, DURATION_PATTERN } from '../src/schema.js';

const invalid = (options: unknown) => () => waitForBody(options as WaitForBodyOptions);
const isInvalidOption = (err: unknown) => err instanceof TypeError && (err as { code?: string }).code === 'UNBLOCK_ERR_BODY_INVALID_OPTION';

describe('waitForBody(options) validation', () => {
  it('should take no options, or an empty object', () => {
    assert.equal(typeof waitForBody(), 'function');
    assert.equal(typeof waitForBody({}), 'function');
  });

  it('should take every documented option in its documented forms', () => {
    const middleware = waitForBody({
      limit: '1.5mb',
      type: ['json', 'text/*'],
      inflate: false,
      verify: () => {},
      encoding: 'latin1',
      timeout: '10s',
      replay: false,
      drainLimit: 0,
    });
    assert.equal(typeof middleware, 'function');
    assert.equal(typeof waitForBody({ limit: 0, timeout: 1, type: (req) => req.method === 'POST', encoding: true }), 'function');
  });

  for (const [what, options] of [
    ['a non-object', 'json'],
    ['null', null],
    ['an unknown option', { limits: '1mb' }],
    ['an unreadable limit (raw-body would take it as "no limit")', { limit: 'lots' }],
    ['a limit with trailing words', { limit: '10 bananas' }],
    ['a negative limit', { limit: -1 }],
    ['a fractional limit', { limit: 1.5 }],
    ['an infinite limit', { limit: Infinity }],
    ['a bad drainLimit', { drainLimit: '1 mile' }],
    ['a zero timeout', { timeout: 0 }],
    ['an unreadable timeout', { timeout: 'soon' }],
    ['a timeout longer than setTimeout allows', { timeout: '30d' }],
    ['an unknown charset', { encoding: 'klingon' }],
    ['a numeric encoding', { encoding: 8 }],
    ['a bad media type', { type: 'not a type' }],
    ['an empty type list', { type: [] }],
    ['a non-string type', { type: [42] }],
    ['a non-boolean inflate', { inflate: 'yes' }],
    ['a non-boolean replay', { replay: 1 }],
    ['a non-function verify', { verify: 'hmac' }],
  ] as const) {
    it(`should throw a TypeError with a code for ${what}`, () => {
      assert.throws(invalid(options), isInvalidOption);
    });
  }

  it('should not change the options object', () => {
    const options = Object.freeze({ limit: '1kb', type: Object.freeze(['json']) });
    waitForBody(options as WaitForBodyOptions);
    assert.deepEqual(options, { limit: '1kb', type: ['json'] });
  });
});

describe('optionsSchema', () => {
  it('should be a draft-07 object schema that refuses unknown properties', () => {
    assert.equal(optionsSchema.$schema, 'http://json-schema.org/draft-07/schema#');
    assert.equal(optionsSchema.type, 'object');
    assert.equal(optionsSchema.additionalProperties, false);
  });

  it('should describe every option that JSON can hold, and not verify', () => {
    assert.deepEqual(Object.keys(optionsSchema.properties).sort(), ['drainLimit', 'encoding', 'inflate', 'limit', 'replay', 'timeout', 'type']);
  });

  it('should accept exactly the size and duration strings the middleware accepts', () => {
    const size = new RegExp(SIZE_PATTERN);
    for (const value of ['0', '512', '100kb', '1.5MB', '2 gb', '10b']) {
      assert.ok(size.test(value), value);
      assert.doesNotThrow(() => waitForBody({ limit: value, drainLimit: value }), value);
    }
    for (const value of ['', 'lots', '-1kb', '10 bananas', '1e3']) {
      assert.ok(!size.test(value), value);
      assert.throws(invalid({ limit: value }), isInvalidOption, value);
    }
    const duration = new RegExp(DURATION_PATTERN);
    for (const value of ['500', '500ms', '10s', '1.5 minutes', '2h']) {
      assert.ok(duration.test(value), value);
      assert.doesNotThrow(() => waitForBody({ timeout: value }), value);
    }
    for (const value of ['', 'soon', '-5s', '10 S', '1 fortnight']) {
      assert.ok(!duration.test(value), value);
      assert.throws(invalid({ timeout: value }), isInvalidOption, value);
    }
  });

  it('should compile under a strict draft-07 validator and agree with the middleware on every option', () => {
    const validate = new Ajv({ strict: true, allErrors: true }).compile(optionsSchema);
    const accepted = [{}, { limit: 1024, drainLimit: '1.5mb' }, { type: 'json' }, { type: ['json', 'text/*'] }, { inflate: false, replay: false }, { encoding: 'latin1' }, { encoding: true }, { timeout: 500 }, { timeout: '2m' }];
    for (const options of accepted) {
      assert.ok(validate(options), JSON.stringify(options));
      assert.doesNotThrow(() => waitForBody(options as WaitForBodyOptions), JSON.stringify(options));
    }
    const refused = [{ limits: 1 }, { limit: -1 }, { limit: 'lots' }, { type: [] }, { type: '' }, { inflate: 'yes' }, { timeout: 0 }, { timeout: 'soon' }, { replay: 1 }, { verify: 'hmac' }];
    for (const options of refused) {
      assert.equal(validate(options), false, JSON.stringify(options));
      assert.throws(invalid(options), isInvalidOption, JSON.stringify(options));
    }
  });

  it('should state the defaults the middleware uses', () => {
    const { properties } = optionsSchema;
    assert.deepEqual(
      [properties.limit.default, properties.inflate.default, properties.encoding.default, properties.timeout.default, properties.replay.default, properties.drainLimit.default],
      ['100kb', true, false, '30s', true, '10mb'],
    );
  });
});
