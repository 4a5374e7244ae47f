// Human units in configs: durations as "5s", "250ms", "2m"; sizes as "2mb",
// "512kb". Numbers stay numbers (milliseconds, bytes), as every unblock
// package takes them.
import bytes from 'bytes';
import ms from 'ms';

/** A duration in milliseconds, from a number of ms or a string such as "5s"; `undefined` when it is neither. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string' || !DURATION.test(value)) return undefined;
  const parsed = ms(withoutSpaces(value) as ms.StringValue);
  return Number.isFinite(parsed) && parsed >= 0 ? parsed : undefined;
}

/** A size in bytes, from a number of bytes or a string such as "2mb"; `undefined` when it is neither. */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string' || !SIZE.test(value)) return undefined;
  const parsed = bytes.parse(withoutSpaces(value));
  return parsed !== null && Number.isFinite(parsed) && parsed >= 0 ? parsed : undefined;
}

// The patterns allow spaces around the number and the unit, which ms and
// bytes do not read ("2s " is no duration to ms; bytes reads "2mb " as 2):
// without them the text means what the pattern accepted.
function withoutSpaces(value: string): string {
  return value.replace(/\s+/g, '');
}

/**
 * The longest delay Node's timers take (2^31 − 1 ms, about 24.8 days): a
 * longer one fires at once, with a TimeoutOverflowWarning.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

// The same grammars as the patterns the packages' schemas use, so that what
// validates also parses.
/** What `ms` reads: a number and a unit (ms, s, m, h, d, w, y and their long forms). */
export const DURATION_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*(ms|msecs?|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?|y|yrs?|years?)?\\s*$';
/** What `bytes` reads: a number and a unit (b, kb, mb, gb, tb, pb), case-insensitive. */
export const SIZE_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*([kKmMgGtTpP]?[bB])?\\s*$';
const DURATION = new RegExp(DURATION_PATTERN);
const SIZE = new RegExp(SIZE_PATTERN);

/** JSON Schema of a duration option, as the packages write it. */
export function durationSchema(description: string, defaultValue?: string | number): Record<string, unknown> {
  return {
    description,
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
    anyOf: [
      { type: 'number', minimum: 0 },
      { type: 'string', pattern: DURATION_PATTERN },
    ],
  };
}
