// Mount paths. Matching is case-insensitive and sees through percent-encoding,
// so that `/ADMIN` and `/%61dmin` cannot slip past an `/admin` mount and reach
// a handler behind it that decodes the path itself (a static file server, say).
// Both sides are compared as "units": an ASCII character lower-cased, or one
// byte of a non-ASCII character as `%xx`.
//
// Such a handler also resolves the path: `/x/%2e%2e/admin/a` and `//admin/a`
// are its `/admin/a`. So a mount is entered when the path as sent matches (as
// in Connect, and as a handler that compares req.url as a string reads it)
// or, failing that, when the path resolved by `resolvePath` does: it is
// skipped only when neither reading is inside it. Resolving rather than
// refusing keeps working the clients that join URLs carelessly and send `//`,
// and the item inside gets a req.url consistent with the match. Only a path
// that servers resolve in different ways is refused (AmbiguousPathError, 400):
// no req.url would be consistent with all of them.

import { invalidArgument } from './errors.js';

/** A mount path as given, as Connect keeps it: with a leading slash, without a trailing one; `''` for the root. */
export function mountPath(route: string): string {
  if (typeof route !== 'string') throw invalidArgument(`a mount path must be a string, got ${typeof route}`);
  const path = route.startsWith('/') ? route : `/${route}`;
  return path.endsWith('/') ? path.slice(0, -1) : path;
}

/**
 * The length of the prefix of `pathname` that the mount path covers, or -1
 * when it does not match. As in Connect, the prefix must end the path or be
 * followed by `/` or `.` (here also by their encoded forms).
 */
export function matchRoute(pathname: string, route: readonly string[]): number {
  let at = 0;
  for (const unit of route) {
    if (at >= pathname.length) return -1;
    const [found, length] = unitAt(pathname, at);
    if (found !== unit) return -1;
    at += length;
  }
  if (at === pathname.length) return at;
  const [next] = unitAt(pathname, at);
  return next === '/' || next === '.' ? at : -1;
}

/** The units a mount path is matched by; `[]` for the root, which matches every path. */
export function routeUnits(path: string): string[] {
  const units: string[] = [];
  for (let at = 0; at < path.length; ) {
    const code = path.codePointAt(at)!;
    if (code >= 0x80) {
      // A non-ASCII character of a mount path: one unit per UTF-8 byte.
      const char = String.fromCodePoint(code);
      units.push(...encodeURIComponent(char).toLowerCase().match(/%[0-9a-f]{2}/g)!);
      at += char.length;
      continue;
    }
    const [unit, length] = unitAt(path, at);
    units.push(unit);
    at += length;
  }
  return units;
}

// What a path can hold that a handler further down resolves away: a
// separator other than a single `/` (`%2F`, `\`, `%5C`, `//`) or a dot
// segment, plain or encoded. A path without any of these resolves to itself.
const RESOLVABLE = /%2[ef]|%5c|\\|\/\/|\/\.\.?(?:\/|$)/i;
const SEPARATORS = /[/\\]|%2f|%5c/i;
const ODD_SEPARATOR = /%2f|%5c|\\/i;
const ENCODED_DOT = /%2e/gi;

/**
 * `pathname` as a server that decodes it resolves it: `%2F`, `\` and `%5C`
 * read as `/` (decoding file servers; WHATWG URL for `\`), empty segments
 * dropped, `.` and `..` segments (also `%2e`) removed as RFC 3986 does.
 * Other characters stay as sent. Returns `pathname` itself when there is
 * nothing to resolve, which is every ordinary path.
 *
 * Returns null for dot segments together with an empty segment or a
 * separator other than `/`: there, readers disagree. `/a//../b` is `/a/b` to
 * RFC 3986 and WHATWG URL (`..` removes the empty segment) but `/b` to a file
 * server (path.normalize drops it first); `/a%2F..` is one segment to WHATWG
 * URL, two to a decoding file server; `/a\..` two to WHATWG URL and Windows,
 * one to a file server on Linux.
 */
export function resolvePath(pathname: string): string | null {
  if (!RESOLVABLE.test(pathname)) return pathname;
  const parts = pathname.split(SEPARATORS);
  const segments: string[] = [];
  let hasDotSegment = false;
  let hasEmptySegment = false;
  let endsInSlash = false;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const dots = part.replace(ENCODED_DOT, '.');
    const isDotSegment = dots === '.' || dots === '..';
    if (isDotSegment) {
      hasDotSegment = true;
      if (dots === '..') segments.pop();
    } else if (part !== '') {
      segments.push(part);
    } else if (i > 0 && i < parts.length - 1) {
      // Not the empty part before a leading or after a trailing separator.
      hasEmptySegment = true;
    }
    endsInSlash = part === '' || isDotSegment;
  }
  if (hasDotSegment && (hasEmptySegment || ODD_SEPARATOR.test(pathname))) return null;
  return segments.length === 0 ? '/' : `/${segments.join('/')}${endsInSlash ? '/' : ''}`;
}

/** The unit at `at` and how many characters of `text` it spans. */
function unitAt(text: string, at: number): [unit: string, length: number] {
  const code = text.charCodeAt(at);
  if (code === 0x25 /* % */ && isHex(text.charCodeAt(at + 1)) && isHex(text.charCodeAt(at + 2))) {
    const byte = Number.parseInt(text.slice(at + 1, at + 3), 16);
    return [byte < 0x80 ? lower(String.fromCharCode(byte)) : `%${text.slice(at + 1, at + 3).toLowerCase()}`, 3];
  }
  // Raw non-ASCII in a request line is not valid URL syntax: it never equals a unit of a mount path.
  return [code < 0x80 ? lower(text[at]!) : text[at]!, 1];
}

function lower(char: string): string {
  return char >= 'A' && char <= 'Z' ? char.toLowerCase() : char;
}

function isHex(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x46) || (code >= 0x61 && code <= 0x66);
}
