import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  build,
  buildChain,
  checkHandlers,
  ConfigValidationError,
  type ConfigIssue,
  findConfig,
  formatTree,
  loadConfig,
  parseDuration,
  parseSize,
  substituteEnv,
  validateConfig,
  type BuiltChain,
} from '../src/index.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
let scratch: string;

before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'unblock-config-'));
});
after(() => rmSync(scratch, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = join(scratch, name);
  writeFileSync(file, text);
  return file;
}

async function rejectsWith(promise: Promise<unknown> | (() => unknown), code: string): Promise<Error & { code: string; issues?: { path: string; message: string; suggestion?: string }[] }> {
  let caught: unknown;
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof Error, `expected an error with code ${code}`);
  assert.equal((caught as { code?: unknown }).code, code, (caught as Error).message);
  return caught as Error & { code: string };
}

function issuesOf(value: unknown): ConfigIssue[] {
  try {
    validateConfig(value, { dir: fixtures });
  } catch (err) {
    assert.ok(err instanceof ConfigValidationError, String(err));
    assert.equal(err.code, 'UNBLOCK_ERR_CONFIG_INVALID');
    assert.equal(err.status, 500);
    assert.equal(err.expose, false);
    return [...err.issues];
  }
  assert.fail('expected the config to be invalid');
}

async function serve(handler: BuiltChain | ((req: never, res: never) => void)): Promise<{ url: string; server: Server }> {
  const server = createServer(handler as never);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('loadConfig(file)', () => {
  it('should read YAML with environment substitution and resolve defaults', async () => {
    const file = write('a.yaml', 'server:\n  port: ${UNBLOCK_TEST_PORT:-4000}\n  headersTimeout: 2s\nchain:\n  - app: ./app.js\n');
    const config = await loadConfig(file, { env: {} });
    assert.equal(config.file, file);
    assert.equal(config.dir, scratch);
    assert.equal(config.servers.length, 1);
    const [server] = config.servers;
    assert.equal(server!.port, 4000);
    assert.equal(server!.host, '127.0.0.1');
    assert.equal(server!.headersTimeout, 2000);
    assert.equal(server!.requestTimeout, 60_000);
    assert.equal(server!.keepAliveTimeout, 5000);
    assert.equal(config.shutdownTimeout, 10_000);
    assert.equal(config.workers, 1);
    assert.deepEqual(server!.chain, [{ kind: 'app', module: './app.js', path: 'chain[0]' }]);
    const withPort = await loadConfig(file, { env: { UNBLOCK_TEST_PORT: '5005' } });
    assert.equal(withPort.servers[0]!.port, 5005);
  });

  it('should read JSON', async () => {
    const file = write('b.json', JSON.stringify({ server: { port: '${P}', workers: 'auto' }, chain: [{ app: 'x' }] }));
    const config = await loadConfig(file, { env: { P: '81' } });
    assert.equal(config.servers[0]!.port, 81);
    assert.equal(config.workers, 'auto');
  });

  it('should load a JS module exporting an object', async () => {
    const config = await loadConfig(join(fixtures, 'config-object.mjs'));
    assert.equal(config.servers[0]!.port, 0);
    assert.equal(config.dir, fixtures);
  });

  it('should call a JS module exporting a function with the environment', async () => {
    const config = await loadConfig(join(fixtures, 'config-function.js'), { env: { FIXTURE_PORT: '7' } });
    assert.equal(config.servers[0]!.port, 7);
    assert.equal(config.servers[0]!.chain[0]!.kind, 'item');
  });

  it('should load a TypeScript config where a loader is present (tsx runs these tests)', async () => {
    const config = await loadConfig(join(fixtures, 'config-typed.ts'));
    assert.equal(config.servers[0]!.chain.length, 1);
  });

  it('should explain that plain Node 20 cannot import a TypeScript config', async () => {
    const script = `import('@unblock/config').then((m) => m.loadConfig(${JSON.stringify(join(fixtures, 'config-typed.ts'))})).then(() => console.log('loaded'), (e) => console.log(e.code))`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: fixtures, timeout: 20_000 });
    // Node >= 22.18 strips types by itself; older Node needs a loader.
    const strips = (process.features as { typescript?: unknown }).typescript;
    assert.equal(stdout.trim(), strips ? 'loaded' : 'UNBLOCK_ERR_CONFIG_UNSUPPORTED');
  });

  it('should report YAML syntax errors with the line', async () => {
    const file = write('bad.yaml', 'chain:\n  - app: ./x.js\n   - app: [\n');
    const err = await rejectsWith(loadConfig(file), 'UNBLOCK_ERR_CONFIG_PARSE');
    assert.match(err.message, /bad\.yaml:\d+:\d+/);
  });

  it('should report an alias to an undefined anchor, and too many alias expansions, with the line of the alias', async () => {
    const undefinedAnchor = await rejectsWith(loadConfig(write('alias.yaml', 'chain:\n  - app: *nope\n')), 'UNBLOCK_ERR_CONFIG_PARSE');
    assert.match(undefinedAnchor.message, /alias\.yaml:2:10: not valid YAML: Unresolved alias .*nope/);
    const tens = ['a: &a [x, x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]', 'chain: []'];
    const expanding = await rejectsWith(loadConfig(write('laughs.yaml', `${tens.join('\n')}\n`)), 'UNBLOCK_ERR_CONFIG_PARSE');
    assert.match(expanding.message, /laughs\.yaml:3:\d+: not valid YAML: Excessive alias count/);
  });

  it('should read YAML and JSON that start with a byte order mark', async () => {
    assert.equal((await loadConfig(write('bom.json', '\uFEFF{"server": {"port": 81}, "chain": []}'))).servers[0]!.port, 81);
    assert.equal((await loadConfig(write('bom.yaml', '\uFEFFserver: { port: 82 }\nchain: []\n'))).servers[0]!.port, 82);
  });

  it('should report JSON syntax errors', async () => {
    await rejectsWith(loadConfig(write('bad.json', '{"chain": [}')), 'UNBLOCK_ERR_CONFIG_PARSE');
  });

  it('should reject duplicate YAML keys instead of keeping the last', async () => {
    await rejectsWith(loadConfig(write('dup.yaml', 'chain: []\nchain: []\n')), 'UNBLOCK_ERR_CONFIG_PARSE');
  });

  it('should refuse an unknown extension', async () => {
    await rejectsWith(loadConfig(write('x.toml', 'a = 1')), 'UNBLOCK_ERR_CONFIG_UNSUPPORTED');
  });

  it('should fail clearly for a missing file', async () => {
    await rejectsWith(loadConfig(join(scratch, 'nope.yaml')), 'UNBLOCK_ERR_CONFIG_NOT_FOUND');
  });

  it('should report a JS config that throws', async () => {
    await rejectsWith(loadConfig(write('throws.mjs', 'export default () => { throw new Error("boom"); };')), 'UNBLOCK_ERR_CONFIG_PARSE');
  });
});

describe('findConfig([file])', () => {
  it('should find the default names in a folder, YAML first', () => {
    const dir = mkdtempSync(join(scratch, 'find-'));
    writeFileSync(join(dir, 'unblock.config.json'), '{}');
    assert.equal(findConfig(undefined, dir), join(dir, 'unblock.config.json'));
    writeFileSync(join(dir, 'unblock.config.yaml'), '');
    assert.equal(findConfig(undefined, dir), join(dir, 'unblock.config.yaml'));
    assert.equal(findConfig(dir), join(dir, 'unblock.config.yaml'));
  });

  it('should throw UNBLOCK_ERR_CONFIG_NOT_FOUND when there is none', async () => {
    const err = await rejectsWith(() => findConfig(undefined, mkdtempSync(join(scratch, 'empty-'))), 'UNBLOCK_ERR_CONFIG_NOT_FOUND');
    assert.match(err.message, /unblock\.config\.yaml/);
  });
});

describe('substituteEnv(value, env)', () => {
  const env = { HOST: 'example.test', EMPTY: '', N: '12', YES: 'true' };

  it('should substitute inside strings and keep their type', () => {
    assert.deepEqual(substituteEnv({ a: 'http://${HOST}:80/', b: ['$${HOST}'] }, env), { a: 'http://example.test:80/', b: ['${HOST}'] });
  });

  it('should give a whole-value reference the type of its text', () => {
    assert.deepEqual(substituteEnv({ n: '${N}', t: '${YES}', s: '${HOST}', partial: '${N}0' }, env), { n: 12, t: true, s: 'example.test', partial: '120' });
  });

  it('should apply defaults: ":-" when unset or empty, "-" only when unset', () => {
    assert.deepEqual(substituteEnv(['${EMPTY:-d}', '${EMPTY-d}', '${UNSET-d}', '${UNSET:-}'], env), ['d', '', 'd', '']);
  });

  it('should fail on an unset variable without a default, naming the path', async () => {
    const err = await rejectsWith(() => substituteEnv({ server: { port: '${NOPE}' } }, env), 'UNBLOCK_ERR_CONFIG_ENV');
    assert.match(err.message, /server\.port/);
    assert.match(err.message, /NOPE/);
  });

  it('should fail with the given message for ${VAR:?message}', async () => {
    const err = await rejectsWith(() => substituteEnv({ k: '${EMPTY:?set EMPTY to the secret}' }, env), 'UNBLOCK_ERR_CONFIG_ENV');
    assert.match(err.message, /set EMPTY to the secret/);
  });

  it('should fail on a malformed reference', async () => {
    await rejectsWith(() => substituteEnv({ k: '${not valid}' }, env), 'UNBLOCK_ERR_CONFIG_ENV');
    await rejectsWith(() => substituteEnv({ k: '${OPEN' }, env), 'UNBLOCK_ERR_CONFIG_ENV');
  });

  it('should not touch keys', () => {
    assert.deepEqual(substituteEnv({ '${HOST}': 1 }, env), { '${HOST}': 1 });
  });
});

describe('parseDuration / parseSize', () => {
  it('should read human units and numbers', () => {
    assert.equal(parseDuration('5s'), 5000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('2m'), 120_000);
    assert.equal(parseDuration(42), 42);
    assert.equal(parseSize('2mb'), 2 * 1024 * 1024);
    assert.equal(parseSize('1KB'), 1024);
    assert.equal(parseSize(10), 10);
  });

  it('should read spaces around the number and the unit as the patterns allow them', () => {
    assert.equal(parseDuration(' 2s '), 2000);
    assert.equal(parseDuration('2 minutes\t'), 120_000);
    assert.equal(parseSize('2mb '), 2 * 1024 * 1024);
    assert.equal(parseSize(' 1 kb'), 1024);
  });

  it('should return undefined for anything else', () => {
    for (const bad of ['5 parsecs', '', '-1s', -1, Number.NaN, true, null]) assert.equal(parseDuration(bad), undefined, String(bad));
    for (const bad of ['2 potatoes', '-5kb', -1, Infinity]) assert.equal(parseSize(bad), undefined, String(bad));
  });
});

describe('validateConfig(value)', () => {
  it('should suggest the intended name for a typo in an option', () => {
    const issues = issuesOf({ server: { prot: 3000 }, chain: [] });
    assert.deepEqual(issues, [{ path: 'server.prot', message: 'unknown option', found: 'prot', suggestion: 'port' }]);
  });

  it('should list the known options when nothing is close', () => {
    const [issue] = issuesOf({ server: { zzzzzz: 1 }, chain: [] });
    assert.equal(issue!.suggestion, undefined);
    assert.match(issue!.message, /known: port, host/);
  });

  it('should say what was expected and what was found', () => {
    const [issue] = issuesOf({ server: { keepAliveTimeout: '5 parsecs' }, chain: [] }) as { path: string; expected?: string; found?: string }[];
    assert.equal(issue!.path, 'server.keepAliveTimeout');
    assert.match(issue!.expected!, /duration/);
    assert.equal(issue!.found, '"5 parsecs"');
  });

  it('should report every problem at once, with paths into nested chains', () => {
    const issues = issuesOf({
      server: { port: -1 },
      chain: [{ app: './a.js' }, { mount: '/x', chain: [{ uze: 'compression' }, { use: 'x', optoins: {} }] }, 'oops'],
    });
    assert.deepEqual(
      issues.map((i) => [i.path, i.suggestion]),
      [
        ['server.port', undefined],
        ['chain[1].chain[0]', 'use'],
        ['chain[1].chain[1].optoins', 'options'],
        ['chain[2]', undefined],
      ],
    );
  });

  it('should refuse two steps in one list item', () => {
    const [issue] = issuesOf({ chain: [{ app: './a.js', use: 'b' }] });
    assert.match(issue!.message, /one step per list item/);
  });

  it('should refuse a mount without a leading slash or without a chain', () => {
    const issues = issuesOf({ chain: [{ mount: 'api', chain: [] }, { mount: '/b' }] });
    assert.deepEqual(
      issues.map((i) => i.path),
      ['chain[0].mount', 'chain[1].chain'],
    );
  });

  it('should require chain or servers, not both', () => {
    assert.match(issuesOf({ server: {} })[0]!.message, /no "chain"/);
    assert.match(issuesOf({ chain: [], servers: [{ chain: [] }] })[0]!.message, /both/);
  });

  it('should give paths into the chains of several servers', () => {
    const issues = issuesOf({ servers: [{ chain: [] }, { port: 1, chain: [{ app: './a.js' }, { 'wait-for-body': { limit: true } }] }] });
    assert.deepEqual(
      issues.map((i) => i.path),
      ['servers[1].chain[1].wait-for-body.limit'],
    );
  });

  it('should refuse two servers on the same address', () => {
    const [issue] = issuesOf({ servers: [{ port: 8080, chain: [] }, { port: 8080, chain: [] }] });
    assert.equal(issue!.path, 'servers[1].port');
  });

  it('should refuse a headersTimeout longer than the requestTimeout', () => {
    const [issue] = issuesOf({ server: { headersTimeout: '2m', requestTimeout: '1m' }, chain: [] });
    assert.equal(issue!.path, 'server.headersTimeout');
  });

  it('should refuse server timeouts that are not whole milliseconds within timer range', () => {
    const issues = issuesOf({ server: { headersTimeout: '0.5ms', requestTimeout: 60000.5, keepAliveTimeout: 1000.5, shutdownTimeout: '30d' }, chain: [] });
    assert.deepEqual(
      issues.map((i) => [i.path, i.found]),
      [
        ['server.headersTimeout', '"0.5ms" (0.5 ms)'],
        ['server.requestTimeout', '60000.5'],
        ['server.keepAliveTimeout', '1000.5'],
        ['server.shutdownTimeout', '"30d" (2592000000 ms)'],
      ],
    );
    assert.match(issues[0]!.message, /whole number of milliseconds up to 2147483647/);
    assert.equal(validateConfig({ server: { headersTimeout: '1.5s', shutdownTimeout: 2 ** 31 - 1 }, chain: [] }).servers[0]!.headersTimeout, 1500);
  });

  it('should read a duration with spaces around it, not fall back to the default', () => {
    assert.equal(validateConfig({ server: { keepAliveTimeout: '2s ' }, chain: [] }).servers[0]!.keepAliveTimeout, 2000);
  });

  it('should report a setting a server inherits from server where it is written', () => {
    const issues = issuesOf({ server: { headersTimeout: 0.5 }, servers: [{ name: 'a', port: 1, chain: [] }, { name: 'b', port: 2, headersTimeout: '2m', requestTimeout: '1m', chain: [] }] });
    assert.deepEqual(
      issues.map((i) => i.path),
      ['server.headersTimeout', 'servers[1].headersTimeout'],
    );
  });

  it('should refuse two servers with the same name, given or default', () => {
    const [given] = issuesOf({ servers: [{ name: 'api', port: 0, chain: [] }, { name: 'api', port: 0, chain: [] }] });
    assert.deepEqual([given!.path, given!.message], ['servers[1].name', '"api" is already the name of servers[0]: give each server its own name']);
    const [byDefault] = issuesOf({ servers: [{ port: 0, chain: [] }, { name: 'server', port: 0, chain: [] }] });
    assert.equal(byDefault!.path, 'servers[1].name');
    assert.match(byDefault!.message, /servers\[0\] \(its default name\)/);
    const [unnamed] = issuesOf({ servers: [{ port: 0, chain: [] }, { name: 'server-3', port: 0, chain: [] }, { port: 0, chain: [] }] });
    assert.deepEqual([unnamed!.path, unnamed!.message], ['servers[2]', 'has no name, and its default name "server-3" is already the name of servers[1]: give it a name']);
  });

  it('should refuse process-wide settings on one of several servers', () => {
    const [issue] = issuesOf({ servers: [{ workers: 2, chain: [] }] });
    assert.equal(issue!.path, 'servers[0].workers');
  });

  it('should refuse a value that is not an object', () => {
    for (const value of [null, [], 'chain', 3]) assert.equal(issuesOf(value).length, 1);
  });

  it('should let servers inherit settings from server and keep their own', () => {
    const config = validateConfig(
      { server: { host: '0.0.0.0', keepAliveTimeout: '1s', workers: 2, shutdownTimeout: '3s' }, servers: [{ port: 1, chain: [] }, { name: 'admin', port: 2, keepAliveTimeout: 500, health: '/health', chain: [] }] },
      { dir: fixtures },
    );
    assert.deepEqual(
      config.servers.map((s) => [s.name, s.host, s.port, s.keepAliveTimeout, s.health]),
      [
        ['server', '0.0.0.0', 1, 1000, undefined],
        ['admin', '0.0.0.0', 2, 500, '/health'],
      ],
    );
    assert.equal(config.workers, 2);
    assert.equal(config.shutdownTimeout, 3000);
  });

  it('should resolve TLS files against the config folder, and let servers inherit or replace them', () => {
    const config = validateConfig(
      {
        server: { tls: { key: 'certs/key.pem', cert: '/etc/ssl/cert.pem', passphrase: 'secret' } },
        servers: [{ port: 1, chain: [] }, { port: 2, tls: { key: 'admin.key', cert: 'admin.crt' }, chain: [] }],
      },
      { dir: fixtures },
    );
    assert.deepEqual(config.servers[0]!.tls, { key: join(fixtures, 'certs/key.pem'), cert: '/etc/ssl/cert.pem', passphrase: 'secret', path: 'server.tls' });
    assert.deepEqual(config.servers[1]!.tls, { key: join(fixtures, 'admin.key'), cert: join(fixtures, 'admin.crt'), passphrase: undefined, path: 'servers[1].tls' });
    assert.equal(validateConfig({ chain: [] }).servers[0]!.tls, undefined);
  });

  it('should refuse TLS settings without a key and certificate, or with unknown keys', () => {
    const [missing] = issuesOf({ server: { tls: { key: 'key.pem' } }, chain: [] });
    assert.deepEqual([missing!.path, missing!.message], ['server.tls', 'missing required option "cert"']);
    const [unknown] = issuesOf({ server: { tls: { key: 'k.pem', cert: 'c.pem', pfx: 'x.pfx' } }, chain: [] });
    assert.equal(unknown!.path, 'server.tls.pfx');
    assert.equal(issuesOf({ server: { tls: true }, chain: [] })[0]!.path, 'server.tls');
  });

  it('should read accessLog: true as "auto"', () => {
    assert.equal(validateConfig({ server: { accessLog: true }, chain: [] }).servers[0]!.accessLog, 'auto');
    assert.equal(validateConfig({ server: { accessLog: 'json' }, chain: [] }).servers[0]!.accessLog, 'json');
  });
});

describe('buildChain(config)', () => {
  it('should build apps, factories and mounts, resolving paths and packages from the config file', async () => {
    const app = await buildChain(await loadConfig(join(fixtures, 'full.yaml'), { env: { FIXTURE_STAMP: 'from-env' } }));
    const { url, server } = await serve(app);
    try {
      const users = await fetch(`${url}/api/users`);
      assert.equal(users.status, 200);
      assert.equal(users.headers.get('x-outer'), 'from-env');
      assert.deepEqual(await users.json(), { users: ['ada'], url: '/users', originalUrl: '/api/users' });

      const echo = await fetch(`${url}/api/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
      assert.deepEqual(await echo.json(), { body: { a: 1 } });
      // body-parser's own limit from `options: { limit: 1kb }`.
      const big = await fetch(`${url}/api/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ a: 'x'.repeat(2000) }) });
      assert.equal(big.status, 413);

      const plain = await fetch(`${url}/plain/there`);
      assert.equal(await plain.text(), 'hello /there');
      assert.equal((await fetch(`${url}/elsewhere`)).status, 404);
    } finally {
      server.close();
      await app.close();
    }
  });

  it('should take functions placed in the chain of a JS config', async () => {
    const app = await buildChain(await loadConfig(join(fixtures, 'config-function.js'), { env: { FIXTURE_TAG: 'tagged' } }));
    const { url, server } = await serve(app);
    try {
      const res = await fetch(`${url}/x`);
      assert.equal(res.headers.get('x-from-js'), 'tagged');
      assert.equal(await res.text(), 'hello /x');
    } finally {
      server.close();
    }
  });

  it('should accept a config object, relative to the current folder', async () => {
    const app = await buildChain({ chain: [{ app: join(fixtures, 'hello.js') }] });
    assert.equal(typeof app, 'function');
    assert.equal(app.stack.length, 1);
  });

  it('should fail with UNBLOCK_ERR_CONFIG_MODULE for a module that does not exist', async () => {
    const err = await rejectsWith(buildChain(validateConfig({ chain: [{ app: './missing.js' }] }, { dir: fixtures })), 'UNBLOCK_ERR_CONFIG_MODULE');
    assert.match(err.message, /^chain\[0\]\.app: /);
  });

  it('should fail with UNBLOCK_ERR_CONFIG_MODULE for a package that is not installed', async () => {
    const err = await rejectsWith(buildChain(validateConfig({ chain: [{ use: 'surely-not-installed-unblock-pkg' }] }, { dir: fixtures })), 'UNBLOCK_ERR_CONFIG_MODULE');
    assert.match(err.message, /surely-not-installed-unblock-pkg/);
  });

  it('should fail when an app module exports no app', async () => {
    await rejectsWith(buildChain(validateConfig({ chain: [{ app: './not-an-app.js' }] }, { dir: fixtures })), 'UNBLOCK_ERR_CONFIG_MODULE');
  });

  it('should fail when use names something that is not a factory, or a missing export', async () => {
    await rejectsWith(buildChain(validateConfig({ chain: [{ use: './stamp.js', export: 'notAFactory' }] }, { dir: fixtures })), 'UNBLOCK_ERR_CONFIG_MODULE');
    await rejectsWith(buildChain(validateConfig({ chain: [{ use: './stamp.js', export: 'nothingHere' }] }, { dir: fixtures })), 'UNBLOCK_ERR_CONFIG_MODULE');
  });

  it('should fail with UNBLOCK_ERR_CONFIG_STEP when a factory returns no middleware or throws', async () => {
    await rejectsWith(buildChain(validateConfig({ chain: [{ use: './stamp.js', export: 'returnsNothing' }] }, { dir: fixtures })), 'UNBLOCK_ERR_CONFIG_STEP');
    const err = await rejectsWith(buildChain(validateConfig({ chain: [{ use: './stamp.js', export: 'throwsTypeError', options: {} }] }, { dir: fixtures })), 'UNBLOCK_ERR_CONFIG_STEP');
    assert.equal((err.cause as { code?: unknown }).code, 'STAMP_BAD');
    assert.match(err.message, /^chain\[0\]: bad stamp option/);
  });

  it('should refuse a config with several servers', async () => {
    await rejectsWith(buildChain(await loadConfig(join(fixtures, 'servers.yaml'))), 'UNBLOCK_ERR_CONFIG_INVALID_ARGUMENT');
  });
});

describe('build(config)', () => {
  it('should build one chain per server', async () => {
    const built = await build(await loadConfig(join(fixtures, 'servers.yaml')));
    try {
      assert.deepEqual(
        built.servers.map((s) => [s.config.name, s.config.health]),
        [
          ['public', undefined],
          ['admin', '/healthz'],
        ],
      );
      const { url, server } = await serve(built.servers[1]!.chain);
      try {
        const res = await fetch(`${url}/y`);
        assert.equal(res.headers.get('x-stamp'), 'yes');
      } finally {
        server.close();
      }
    } finally {
      await built.close();
    }
  });
});

describe('checkHandlers(config)', () => {
  it('should import every offload handler, in mounts too, without calling its init()', async () => {
    write('handler-with-init.mjs', 'export function init() { throw new Error("init ran"); }\nexport default (req, res) => res.end();\n');
    const config = validateConfig({ chain: [{ offload: { handler: './handler-with-init.mjs' } }, { mount: '/m', chain: [{ offload: { handler: join(fixtures, 'blocking.js'), inline: true } }] }] }, { dir: scratch });
    await checkHandlers(config);
  });

  it('should fail with UNBLOCK_ERR_CONFIG_MODULE for a handler that throws on import, or exports no handler', async () => {
    write('handler-throws.mjs', 'throw new Error("handler boom");\n');
    const throws = validateConfig({ chain: [{ offload: { handler: 'handler-throws.mjs' } }] }, { dir: scratch });
    const thrown = await rejectsWith(checkHandlers(throws), 'UNBLOCK_ERR_CONFIG_MODULE');
    assert.match(thrown.message, /^chain\[0\]\.offload\.handler: cannot import .*handler-throws\.mjs: handler boom$/);
    const notHandler = validateConfig({ chain: [{ mount: '/m', chain: [{ offload: { handler: './not-an-app.js' } }] }] }, { dir: fixtures });
    const refused = await rejectsWith(checkHandlers(notHandler), 'UNBLOCK_ERR_CONFIG_MODULE');
    assert.match(refused.message, /^chain\[0\]\.chain\[0\]\.offload\.handler: the default export of .*not-an-app\.js is string, not a handler/);
  });
});

describe('formatTree(config)', () => {
  it('should draw servers, mounts and resolved modules', async () => {
    const tree = formatTree(await loadConfig(join(fixtures, 'full.yaml'), { env: {} }), { cwd: fixtures });
    assert.equal(
      tree,
      [
        'server http://127.0.0.1:0',
        '├─ use ./stamp.js { header: "x-outer", value: "outer" }',
        '├─ mount /api',
        '│  ├─ use body-parser → ../../../../node_modules/body-parser/index.js .json { limit: "1kb" }',
        '│  └─ app ./express-app.cjs',
        '└─ mount /plain',
        '   └─ app ./hello.js',
      ].join('\n'),
    );
  });
});

describe('app: a Koa app', () => {
  it('should be adapted with fromKoa and mounted', async () => {
    const app = await buildChain(validateConfig({ chain: [{ mount: '/k', chain: [{ app: './koa-app.js' }] }] }, { dir: fixtures }));
    const { url, server } = await serve(app);
    try {
      const res = await fetch(`${url}/k/inside`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'koa /inside');
    } finally {
      server.close();
    }
  });
});

describe('error-handler step', () => {
  it('should render the errors of the steps after it', async () => {
    const app = await buildChain(validateConfig({ chain: [{ 'error-handler': null }, { app: './fails.js' }] }, { dir: fixtures }));
    const { url, server } = await serve(app);
    try {
      const teapot = await fetch(`${url}/teapot`, { headers: { accept: 'application/json' } });
      assert.equal(teapot.status, 418);
      assert.match(await teapot.text(), /short and stout/);
      const hidden = await fetch(`${url}/x`, { headers: { accept: 'application/json' } });
      assert.equal(hidden.status, 500);
      assert.doesNotMatch(await hidden.text(), /secret internals/);
    } finally {
      server.close();
    }
  });

  it('should pass its options on (expose: true shows 5xx messages)', async () => {
    const app = await buildChain(validateConfig({ chain: [{ 'error-handler': { expose: true, drainLimit: '1kb' } }, { app: './fails.js' }] }, { dir: fixtures }));
    const { url, server } = await serve(app);
    try {
      const res = await fetch(`${url}/x`, { headers: { accept: 'application/json' } });
      assert.equal(res.status, 500);
      assert.match(await res.text(), /secret internals/);
    } finally {
      server.close();
    }
  });

  it('should validate its options against @unblock/error-handler\'s schema', () => {
    assert.deepEqual(issuesOf({ chain: [{ 'error-handler': { expos: true } }] }), [
      { path: 'chain[0].error-handler.expos', message: 'unknown option', found: 'expos', suggestion: 'expose' },
    ]);
    const [size] = issuesOf({ chain: [{ 'error-handler': { drainLimit: 'lots' } }] });
    assert.equal(size!.path, 'chain[0].error-handler.drainLimit');
    assert.match(size!.message, /size/);
  });

  it('should explain options written beside the step instead of under it', () => {
    // - error-handler:
    //   expose: true        ← same indentation: a sibling key in YAML
    const [issue] = issuesOf({ chain: [{ 'error-handler': null, expose: true }] });
    assert.equal(issue!.path, 'chain[0].expose');
    assert.match(issue!.message, /indent/);
  });
});

describe('wait-for-body step', () => {
  it('should read the body before the app, with the limit from the config', async () => {
    const app = await buildChain(validateConfig({ chain: [{ 'wait-for-body': { limit: '16b' } }, { app: './body-length.js' }] }, { dir: fixtures }));
    const { url, server } = await serve(app);
    try {
      const small = await fetch(url, { method: 'POST', body: 'hello' });
      assert.equal(await small.text(), '5');
      const big = await fetch(url, { method: 'POST', body: 'x'.repeat(100) });
      assert.equal(big.status, 413);
    } finally {
      server.close();
    }
  });

  it('should validate its options against @unblock/wait-for-body\'s schema', () => {
    assert.deepEqual(
      issuesOf({ chain: [{ 'wait-for-body': { limt: '1mb' } }] }).map((i) => [i.path, i.suggestion]),
      [['chain[0].wait-for-body.limt', 'limit']],
    );
  });
});

describe('offload step', () => {
  it('should run the handler on a thread of the shared default pool', async () => {
    const config = validateConfig(
      {
        pool: { maxThreads: 1, maxQueue: 8, idleTimeout: '1s' },
        chain: [
          { mount: '/a', chain: [{ offload: { handler: './blocking.js', timeout: '5s' } }] },
          { mount: '/b', chain: [{ offload: { handler: './blocking.js' } }] },
        ],
      },
      { dir: fixtures },
    );
    assert.deepEqual(Object.keys(config.pools), ['default']);
    const built = await build(config);
    const { url, server } = await serve(built.servers[0]!.chain);
    try {
      const a = (await (await fetch(`${url}/a/x`)).json()) as { threadId: number; url: string };
      const b = (await (await fetch(`${url}/b/y`)).json()) as { threadId: number; url: string };
      assert.notEqual(a.threadId, 0);
      assert.equal(a.url, '/x');
      assert.equal(b.threadId, a.threadId, 'one pool of one thread serves both steps');
      assert.equal(built.pools.size, 1);
      const stats = built.poolStats().default!;
      assert.equal(stats.shedding, false);
      assert.equal(stats.maxThreads, 1);
      assert.equal(stats.maxQueue, 8);
    } finally {
      server.close();
      await built.close();
    }
  });

  it('should use a named pool, and tell a wrong pool name', async () => {
    const config = validateConfig({ pools: { reports: { maxThreads: 1 } }, chain: [{ offload: { handler: './blocking.js', pool: 'reports' } }] }, { dir: fixtures });
    assert.deepEqual(Object.keys(config.pools), ['reports']);
    assert.deepEqual(
      issuesOf({ pools: { reports: {} }, chain: [{ offload: { handler: './blocking.js', pool: 'report' } }] }).map((i) => [i.path, i.suggestion]),
      [['chain[0].offload.pool', 'reports']],
    );
  });

  it('should require a handler and check the package\'s options', () => {
    assert.deepEqual(
      issuesOf({ chain: [{ offload: { timout: '5s' } }] }).map((i) => [i.path, i.message, i.suggestion]),
      [
        ['chain[0].offload.timout', 'unknown option', 'timeout'],
        ['chain[0].offload', 'missing required option "handler"', undefined],
      ].sort((x, y) => (x[0]! < y[0]! ? -1 : 1)),
    );
    const [kind] = issuesOf({ chain: [{ offload: { handler: './x.js', kind: 'nod' } }] });
    assert.equal(kind!.suggestion, 'node');
  });

  it('should validate the pool section against @unblock/worker-pool\'s schema', () => {
    assert.deepEqual(
      issuesOf({ pool: { maxThread: 2 }, chain: [] }).map((i) => [i.path, i.suggestion]),
      [['pool.maxThread', 'maxThreads']],
    );
  });

  it('should refuse more minThreads than maxThreads in every pool, used or not', () => {
    assert.deepEqual(
      issuesOf({ pool: { maxThreads: 2, minThreads: 4 }, pools: { r: { maxThreads: 1, minThreads: 2 } }, chain: [{ offload: { handler: './blocking.js', pool: 'r' } }] }).map((i) => [i.path, i.message]),
      [
        ['pool.minThreads', 'must not be more than maxThreads (2), found 4'],
        ['pools.r.minThreads', 'must not be more than maxThreads (1), found 2'],
      ],
    );
    const [byDefault] = issuesOf({ pool: { minThreads: availableParallelism() + 1 }, chain: [] });
    assert.equal(byDefault!.path, 'pool.minThreads');
    assert.match(byDefault!.message, /by default the \d+ CPUs of this machine/);
  });

  it('should have no pool when nothing offloads', () => {
    assert.deepEqual(validateConfig({ chain: [] }).pools, {});
  });
});
