// Mount paths. Matching is case-insensitive and sees through percent-encoding,
// so that `/ADMIN` and `/%61dmin` cannot slip past an `/admin` mount and reach
// a handler behind it that decodes the path itself (a static file server, say).
// Both sides are compared as "units": an ASCII character lower-cased, or one
// byte of a non-ASCII character as `%xx`.

import { invalidArgument } from './errors.js';

/** A mount path as the chain keeps it: its units, without a trailing slash; `[]` for `/`. */
export function normalizeRoute(route: string): string[] {
  if (typeof route !== 'string') throw invalidArgument(`a mount path must be a string, got ${typeof route}`);
  let path = route.startsWith('/') ? route : `/${route}`;
  if (path.endsWith('/')) path = path.slice(0, -1);
  return unitsOf(path);
}

/**
 * The length of the prefix of the raw `pathname` that the mount path covers,
 * or -1 when it does not match. As in Connect, the prefix must end the path or
 * be followed by `/` or `.` (here also by their encoded forms).
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

function unitsOf(path: string): string[] {
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
