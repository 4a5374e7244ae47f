// Environment substitution, as in Docker Compose: applied to the string
// values of a parsed YAML/JSON config (never to keys, never to the raw text,
// so that a value cannot break the file's structure and comments are left
// alone). JS configs read process.env themselves.
import { parse as parseYaml } from 'yaml';
import { ConfigEnvError } from './errors.js';

const REFERENCE = /\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])((?:[^{}\\]|\\.)*))?\}|\{[^}]*\}?)/g;

/**
 * Replaces `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}`
 * (unset), `${VAR:?message}` / `${VAR?message}` (fail when unset) and `$$`
 * (a literal `$`) in every string of `value`. A string that is exactly one
 * reference takes the type its text has in YAML (`"3000"` → 3000,
 * `"true"` → true), so `port: ${PORT:-3000}` is a number. Returns a new value.
 */
export function substituteEnv(value: unknown, env: NodeJS.ProcessEnv = process.env, file?: string): unknown {
  return walk(value, '', env, file);
}

function walk(value: unknown, path: string, env: NodeJS.ProcessEnv, file: string | undefined): unknown {
  if (typeof value === 'string') return substituteString(value, path, env, file);
  if (Array.isArray(value)) return value.map((item, i) => walk(item, `${path}[${i}]`, env, file));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = walk(item, joinPath(path, key), env, file);
    return out;
  }
  return value;
}

function substituteString(text: string, path: string, env: NodeJS.ProcessEnv, file: string | undefined): unknown {
  if (!text.includes('$')) return text;
  let whole = false;
  const result = text.replace(REFERENCE, (match: string, name: string | undefined, colon: string | undefined, operator: string | undefined, argument: string | undefined) => {
    if (match === '$$') return '$';
    if (name === undefined) {
      throw new ConfigEnvError(`${path || 'config'}: bad variable reference ${JSON.stringify(match)} (expected \${NAME}, \${NAME:-default} or \${NAME:?message})`, path, match, file);
    }
    whole = match.length === text.length;
    const raw = env[name];
    const missing = colon === ':' ? raw === undefined || raw === '' : raw === undefined;
    const arg = (argument ?? '').replace(/\\(.)/g, '$1');
    if (!missing) return raw!;
    if (operator === '-') return arg;
    if (operator === '?') throw new ConfigEnvError(`${path}: ${arg || `environment variable ${name} is required`}`, path, name, file);
    throw new ConfigEnvError(`${path}: environment variable ${name} is not set (give a default with \${${name}:-value})`, path, name, file);
  });
  return whole ? typedScalar(result) : result;
}

/** `"3000"` → 3000, `"true"` → true, `"null"`/`""` stays a string: the YAML core schema, less null. */
function typedScalar(text: string): unknown {
  if (text.trim() === '') return text;
  try {
    const parsed: unknown = parseYaml(text, { schema: 'core' });
    return typeof parsed === 'number' || typeof parsed === 'boolean' ? parsed : text;
  } catch {
    return text;
  }
}

/** `a.b`, or `a["odd key"]` for keys that are not identifiers (`error-handler` stays readable: dashes are allowed). */
export function joinPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  const segment = /^[A-Za-z_$][\w$-]*$/.test(key) ? key : JSON.stringify(key);
  if (segment !== key) return `${path}[${segment}]`;
  return path === '' ? key : `${path}.${key}`;
}
