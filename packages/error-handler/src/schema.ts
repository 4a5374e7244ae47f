/** What `bytes` reads: a number and a unit (b, kb, mb, gb, tb, pb), case-insensitive. */
export const SIZE_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*([kKmMgGtTpP]?[bB])?\\s*$';

/**
 * JSON Schema (draft-07) of the options that can be written in a JSON or YAML
 * config. `log` and `render` are functions: JS configs only.
 */
export const optionsSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: '@unblock/error-handler options',
  type: 'object',
  additionalProperties: false,
  properties: {
    debug: {
      description: 'Show messages and stack traces of every error in responses. Never switched on by NODE_ENV. Default false.',
      type: 'boolean',
      default: false,
    },
    expose: {
      description: 'Show error messages: false never, true always (5xx too, without stacks). Default: each error decides by its `expose` (true for 4xx).',
      type: 'boolean',
    },
    drainLimit: {
      description: 'An unread request body up to this size is discarded so the connection can be reused; a larger one, or of unknown length, closes the connection after the response. Default "64kb".',
      default: '64kb',
      anyOf: [
        { type: 'number', minimum: 0 },
        { type: 'string', pattern: SIZE_PATTERN },
      ],
    },
  },
} as const;
