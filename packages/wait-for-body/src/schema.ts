// The JSON-representable options, as a JSON Schema (draft-07), for config
// files. The two patterns are also what the middleware itself accepts, so a
// config that validates never fails when the middleware is built.

/** A size: bytes, or a number with a unit, as in `"512"`, `"100kb"`, `"1.5mb"`. */
export const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)? *([kKmMgGtTpP]?[bB])?$';
/** A duration: milliseconds, or a number with a unit, as in `"500ms"`, `"10s"`, `"2m"`. */
export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)? *(ms|msecs?|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)?$';

const size = (description: string, fallback: string) => ({
  description,
  anyOf: [
    { type: 'integer', minimum: 0 },
    { type: 'string', pattern: SIZE_PATTERN },
  ],
  default: fallback,
});

/**
 * JSON Schema of the options that a config file can hold. `verify` and a
 * function `type` are JavaScript-only and not part of it.
 */
export const optionsSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: '@unblock/wait-for-body options',
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: size('Largest body accepted, decoded and on the wire.', '100kb'),
    type: {
      description: 'Content-Types to read ("json", "text/*", "application/*+json"); others pass through. Default: every request with a body.',
      anyOf: [
        { type: 'string', minLength: 1 },
        { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
      ],
    },
    inflate: { description: 'Decode gzip, deflate, br (and zstd where Node has it); when false, encoded bodies get 415.', type: 'boolean', default: true },
    encoding: {
      description: 'false: req.body is a Buffer. true or a charset: a string, decoded with the request charset or else this one.',
      anyOf: [{ type: 'boolean' }, { type: 'string', minLength: 1 }],
      default: false,
    },
    timeout: {
      description: 'Time allowed for the whole body; a slower sender gets 408.',
      anyOf: [
        { type: 'number', exclusiveMinimum: 0, maximum: 2147483647 },
        { type: 'string', pattern: DURATION_PATTERN },
      ],
      default: '30s',
    },
    replay: { description: 'Leave req readable again, as a stream of the buffered body.', type: 'boolean', default: true },
    drainLimit: size('After an error, how much more of the upload may be read and discarded to keep the connection alive.', '10mb'),
  },
} as const;
