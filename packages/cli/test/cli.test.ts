import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as connectTls } from 'node:tls';
import { describe, it } from 'node:test';
import { Agent, fetch } from 'undici';
import { check } from '../src/cli.js';
import { parseCommandLine } from '../src/index.js';
import { listening, project, run, sleep, workerPids } from './helpers.js';

const APP = `
server: { port: 0, keepAliveTimeout: 1s, shutdownTimeout: 5s }
chain:
  - app: ./app.js
`;

describe('parseCommandLine(argv)', () => {
  it('should read serve with its flags', () => {
    assert.deepEqual(parseCommandLine(['serve', 'x.yaml', '--port', '8080', '--host', '0.0.0.0', '--workers', 'auto', '--threads', '4']), {
      command: 'serve',
      config: 'x.yaml',
      overrides: { port: 8080, host: '0.0.0.0', workers: 'auto', threads: 4 },
    });
  });

  it('should throw UNBLOCK_ERR_CLI_USAGE for bad flags and commands', () => {
    for (const argv of [[], ['start'], ['check', ''], ['serve', ''], ['serve', '--port', '-1'], ['serve', '--port', '70000'], ['serve', '--workers', '0'], ['serve', '--nope'], ['check', 'a', 'b'], ['check', '--port', '1']]) {
      assert.throws(() => parseCommandLine(argv), { code: 'UNBLOCK_ERR_CLI_USAGE' }, argv.join(' '));
    }
  });
});

describe('unblock check', { timeout: 180_000 }, () => {
  it('should print the resolved chain and exit 0 for a valid config (found by its default name)', async () => {
    const dir = project('chain:\n  - error-handler: { expose: false }\n  - mount: /api\n    chain:\n      - app: ./app.js\n');
    const r = run(['check'], dir);
    assert.equal(await r.exited(), 0, r.stderr());
    assert.match(r.stdout(), /unblock\.config\.yaml: valid/);
    assert.match(r.stdout(), /├─ error-handler \{ expose: false \}\n└─ mount \/api\n {3}└─ app \.\/app\.js/);
  });

  it('should exit 1 with every problem, its path and a suggestion', async () => {
    const dir = project('server: { prot: 80 }\nchain:\n  - error-handler: { expos: true }\n  - ap: ./app.js\n');
    const r = run(['check'], dir);
    assert.equal(await r.exited(), 1);
    assert.match(r.stderr(), /server\.prot: unknown option — did you mean "port"\?/);
    assert.match(r.stderr(), /chain\[0\]\.error-handler\.expos: unknown option — did you mean "expose"\?/);
    assert.match(r.stderr(), /chain\[1\]: unknown step "ap" — did you mean "app"\?/);
    assert.match(r.stderr(), /UNBLOCK_ERR_CONFIG_INVALID/);
  });

  it('should exit 1 when a module cannot be imported', async () => {
    const dir = project('chain:\n  - app: ./broken-app.js\n');
    const r = run(['check'], dir);
    assert.equal(await r.exited(), 1);
    assert.match(r.stderr(), /chain\[0\]\.app: cannot import \.\/broken-app\.js: broken on import/);
  });

  it('should exit 1 when an offload handler module throws on import', async () => {
    const dir = project('chain:\n  - offload: { handler: ./broken-app.js }\n');
    const r = run(['check'], dir);
    assert.equal(await r.exited(), 1);
    assert.match(r.stderr(), /chain\[0\]\.offload\.handler: cannot import .*broken-app\.js: broken on import \[UNBLOCK_ERR_CONFIG_MODULE\]/);
  });

  it('should exit 1 with UNBLOCK_ERR_CLI_START when an import waits on nothing, at once', async () => {
    const dir = project('chain:\n  - app: ./never-settles.mjs\n');
    copyFileSync(new URL('./fixtures/never-settles.mjs', import.meta.url), join(dir, 'never-settles.mjs'));
    const r = run(['check'], dir);
    assert.equal(await r.exited(5_000), 1);
    assert.match(r.stderr(), /the chain cannot be built: a module's import \(a top-level await\) or a factory waits on nothing .*\[UNBLOCK_ERR_CLI_START\]/);
  });

  it('should give up with UNBLOCK_ERR_CLI_START when building outlasts the start timeout', async () => {
    const dir = project('chain:\n  - app: ./never-settles.mjs\n');
    copyFileSync(new URL('./fixtures/never-settles.mjs', import.meta.url), join(dir, 'never-settles.mjs'));
    // A timer that keeps the process alive, as a module's own polling would: only the timeout ends the wait.
    const alive = setInterval(() => {}, 1_000);
    try {
      await assert.rejects(check(join(dir, 'unblock.config.yaml'), 200), { code: 'UNBLOCK_ERR_CLI_START', message: /not built within 0\.2 s/ });
    } finally {
      clearInterval(alive);
    }
  });

  it('should exit 1 when there is no config', async () => {
    const dir = project('', { name: 'other.yaml' });
    const r = run(['check'], dir);
    assert.equal(await r.exited(), 1);
    assert.match(r.stderr(), /UNBLOCK_ERR_CONFIG_NOT_FOUND/);
  });

  it('should exit 2 with the usage for a wrong command line', async () => {
    const r = run(['serve', '--port', 'eighty'], project(APP));
    assert.equal(await r.exited(), 2);
    assert.match(r.stderr(), /^unblock: --port must be a whole number.* \[UNBLOCK_ERR_CLI_USAGE\]\n/);
    assert.match(r.stderr(), /Usage:/);
    const unknown = run(['bogus'], project(APP));
    assert.equal(await unknown.exited(), 2);
    assert.match(unknown.stderr(), /^unblock: unknown command "bogus" \[UNBLOCK_ERR_CLI_USAGE\]\n/);
    const empty = run(['check', ''], project(APP));
    assert.equal(await empty.exited(), 2);
    assert.match(empty.stderr(), /^unblock: the config is an empty string.* \[UNBLOCK_ERR_CLI_USAGE\]\n/);
  });
});

describe('unblock serve', { timeout: 180_000 }, () => {
  it('should refuse a bad config before starting anything', async () => {
    const dir = project('server: { port: 0 }\nchain:\n  - app: ./app.js\n    timout: 5s\n');
    const r = run(['serve'], dir);
    assert.equal(await r.exited(), 1);
    assert.match(r.stderr(), /chain\[0\]\.timout: unexpected key beside "app"/);
    assert.ok(!r.events.some((e) => e.event === 'listening'));
  });

  it('should exit 1 when a worker cannot start, saying why', async () => {
    const r = run(['serve'], project('server: { port: 0 }\nchain:\n  - app: ./broken-app.js\n'));
    assert.equal(await r.exited(), 1);
    assert.match(r.stderr(), /failed to start: chain\[0\]\.app: cannot import .*\[UNBLOCK_ERR_CONFIG_MODULE\]\n$/);
  });

  it('should exit 1 when the port is taken', async () => {
    const first = run(['serve'], project(APP));
    const url = await listening(first);
    try {
      const second = run(['serve', '--port', new URL(url).port], project(APP));
      assert.equal(await second.exited(), 1);
      assert.match(second.stderr(), /EADDRINUSE/);
    } finally {
      first.child.kill('SIGTERM');
      assert.equal(await first.exited(), 0);
    }
  });

  it('should serve, print addresses and chain, and stop on SIGTERM with exit 0', async () => {
    const r = run(['serve', '--workers', '2'], project(APP));
    const event = await r.waitFor((e) => e.event === 'listening');
    assert.equal(event.workers, 2);
    assert.match(String(event.text), /└─ app \.\/app\.js/);
    const url = (event.servers as { url: string }[])[0]!.url;
    const res = await fetch(`${url}/pid`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^\d+ v1$/);
    r.child.kill('SIGTERM');
    assert.equal(await r.exited(), 0);
    await assert.rejects(fetch(`${url}/pid`));
  });

  it('should let in-flight requests finish on SIGTERM, and refuse new connections meanwhile', async () => {
    const r = run(['serve'], project(APP));
    const url = await listening(r);
    const slow = fetch(`${url}/slow?ms=1500`);
    await sleep(300);
    r.child.kill('SIGTERM');
    await sleep(300);
    await assert.rejects(fetch(`${url}/pid`, { dispatcher: new Agent() }), 'a new connection during the drain');
    const res = await slow;
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^slow \d+$/);
    assert.equal(res.headers.get('connection'), 'close');
    assert.equal(await r.exited(), 0);
  });

  it('should cut off requests that outlast shutdownTimeout, and still exit 0', async () => {
    const r = run(['serve'], project('server: { port: 0, shutdownTimeout: 500ms }\nchain:\n  - app: ./app.js\n'));
    const url = await listening(r);
    const hanging = fetch(`${url}/hang`).then(
      () => 'answered',
      () => 'failed',
    );
    await sleep(200);
    r.child.kill('SIGTERM');
    assert.equal(await r.exited(), 0);
    assert.equal(await hanging, 'failed');
  });

  it('should force the exit on a second signal', async () => {
    const r = run(['serve'], project('server: { port: 0, shutdownTimeout: 30s }\nchain:\n  - app: ./app.js\n'));
    const url = await listening(r);
    void fetch(`${url}/hang`).catch(() => {});
    await sleep(200);
    r.child.kill('SIGINT');
    await r.waitFor((e) => String(e.msg).startsWith('SIGINT: shutting down'));
    r.child.kill('SIGINT');
    assert.equal(await r.exited(5_000), 1);
  });

  it('should stop a worker still loading its code on SIGTERM, without ever serving', async () => {
    const preload = fileURLToPath(new URL('./fixtures/slow-boot.mjs', import.meta.url));
    const r = run(['serve'], project(APP), { NODE_OPTIONS: `--import ${preload}` });
    await r.waitFor((e) => e.msg === 'worker booting');
    r.child.kill('SIGTERM');
    assert.equal(await r.exited(5_000), 0);
    assert.ok(!r.events.some((e) => e.event === 'listening'), r.stdout());
  });

  it('should restart a crashed worker', async () => {
    const r = run(['serve'], project(APP));
    const url = await listening(r);
    const before = await (await fetch(`${url}/pid`)).text();
    await fetch(`${url}/crash`).catch(() => {});
    await r.waitFor((e) => String(e.msg).includes('exited (code 3)'));
    let after = '';
    for (let i = 0; i < 50 && after === ''; i++) {
      after = await fetch(`${url}/pid`, { dispatcher: new Agent() }).then(
        (res) => res.text(),
        () => '',
      );
      if (after === '') await sleep(100);
    }
    assert.match(after, /^\d+ v1$/);
    assert.notEqual(after, before);
    r.child.kill('SIGTERM');
    assert.equal(await r.exited(), 0);
  });

  it('should run several servers from one config', async () => {
    const config = 'servers:\n  - name: a\n    port: 0\n    chain: [{ app: ./app.js }]\n  - name: b\n    port: 0\n    health: /healthz\n    chain: [{ app: ./app.js }]\n';
    const r = run(['serve'], project(config));
    const event = await r.waitFor((e) => e.event === 'listening');
    const [a, b] = event.servers as { name: string; url: string; health?: string }[];
    assert.deepEqual([a!.name, b!.name, b!.health], ['a', 'b', '/healthz']);
    assert.notEqual(a!.url, b!.url);
    assert.equal((await fetch(`${a!.url}/pid`)).status, 200);
    assert.equal((await fetch(`${a!.url}/healthz`)).status, 404, 'no health endpoint on a');
    const health = await fetch(`${b!.url}/healthz`);
    assert.equal(health.status, 200);
    const body = (await health.json()) as { status: string; eventLoopDelay: { mean: number }; pools: object };
    assert.equal(body.status, 'ok');
    assert.equal(typeof body.eventLoopDelay.mean, 'number');
    assert.equal(typeof body.pools, 'object');
    r.child.kill('SIGTERM');
    assert.equal(await r.exited(), 0);
  });

  it('should answer 503 on the health path while draining', async () => {
    const r = run(['serve'], project('server: { port: 0, health: /healthz, shutdownTimeout: 5s }\nchain:\n  - app: ./app.js\n'));
    const url = await listening(r);
    // A keep-alive connection opened before the drain is still served during it.
    const agent = new Agent({ connections: 1 });
    assert.equal((await fetch(`${url}/healthz`, { dispatcher: agent })).status, 200);
    const slow = fetch(`${url}/slow?ms=1500`);
    await sleep(200);
    r.child.kill('SIGTERM');
    await sleep(300);
    const draining = await fetch(`${url}/healthz`, { dispatcher: agent });
    assert.equal(draining.status, 503);
    assert.equal(((await draining.json()) as { status: string }).status, 'draining');
    assert.equal((await slow).status, 200);
    assert.equal(await r.exited(), 0);
    await agent.close();
  });

  it('should write a JSON line per request when accessLog is on', async () => {
    const r = run(['serve'], project('server: { port: 0, accessLog: true }\nchain:\n  - app: ./app.js\n'));
    const url = await listening(r);
    await (await fetch(`${url}/pid?x=1`)).text();
    const line = await r.waitFor((e) => e.msg === 'request');
    assert.equal(line.method, 'GET');
    assert.equal(line.url, '/pid?x=1');
    assert.equal(line.status, 200);
    assert.equal(typeof line.duration, 'number');
    r.child.kill('SIGTERM');
    assert.equal(await r.exited(), 0);
  });

  it('should print human-readable lines on a terminal (forced here with UNBLOCK_LOG_FORMAT)', async () => {
    const r = run(['serve'], project('server: { port: 0, accessLog: human }\nchain:\n  - app: ./app.js\n'), { UNBLOCK_LOG_FORMAT: 'human' });
    const banner = await r.waitFor((e) => typeof e.text === 'string' && e.text.startsWith('  server: http://127.0.0.1:'));
    const url = String(banner.text).trim().slice('server: '.length);
    await r.waitFor((e) => e.text === '└─ app ./app.js');
    await (await fetch(`${url}/pid`)).text();
    const line = await r.waitFor((e) => typeof e.text === 'string' && e.text.startsWith('GET /pid '));
    assert.match(String(line.text), /^GET \/pid 200 [\d.]+ms$/);
    r.child.kill('SIGTERM');
    assert.equal(await r.exited(), 0);
  });

  it('should log the steps that hold the event loop past blockingThreshold', async () => {
    const r = run(['serve'], project('server: { port: 0, blockingThreshold: 20ms }\nchain:\n  - mount: /m\n    chain:\n      - app: ./app.js\n'));
    const url = await listening(r);
    assert.equal(await (await fetch(`${url}/m/spin?ms=60`)).text(), 'spun');
    const line = await r.waitFor((e) => String(e.msg).startsWith('blocking: '));
    assert.match(String(line.msg), /^blocking: "app" at \/m held the event loop for \d+\.\d ms on GET \/m\/spin\?ms=60$/);
    r.child.kill('SIGTERM');
    assert.equal(await r.exited(), 0);
  });

  it('should cut off a client that sends its headers too slowly (headersTimeout, any whole number of ms)', async () => {
    const r = run(['serve'], project('server: { port: 0, headersTimeout: 301ms, requestTimeout: 1s }\nchain:\n  - app: ./app.js\n'));
    const url = new URL(await listening(r));
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => socket.write('GET /pid HTTP/1.1\r\nHost: x\r\n'));
      let data = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => (data += chunk));
      socket.on('close', () => resolve(data));
      socket.on('error', reject);
      setTimeout(() => reject(new Error('the server kept the slow connection open')), 5_000).unref();
    });
    assert.match(reply, /^HTTP\/1\.1 408/);
    r.child.kill('SIGTERM');
    assert.equal(await r.exited(), 0);
  });
});

describe('unblock serve: SIGHUP', { timeout: 180_000 }, () => {
  it('should roll every worker over to new code and config with zero failed requests under load', async () => {
    const dir = project('server: { port: 0, workers: 2, keepAliveTimeout: 2s, shutdownTimeout: 5s }\nchain:\n  - app: ./app.js\n');
    const r = run(['serve'], dir);
    const url = await listening(r);
    // A lost request fails the test within seconds, not after undici's 300 s default.
    const agent = new Agent({ connections: 8, headersTimeout: 10_000, bodyTimeout: 10_000 });
    const seen = new Set<string>();
    let ok = 0;
    const failures: string[] = [];
    let stop = false;
    const loop = async () => {
      while (!stop) {
        try {
          const res = await fetch(`${url}/pid`, { dispatcher: agent });
          const text = await res.text();
          if (res.status === 200) {
            ok++;
            seen.add(text);
          } else failures.push(`status ${res.status}`);
        } catch (err) {
          failures.push(String((err as Error).cause ?? err));
        }
      }
    };
    const loops = Array.from({ length: 8 }, loop);
    await sleep(500);
    writeFileSync(join(dir, 'VERSION'), 'v2');
    r.child.kill('SIGHUP');
    await r.waitFor((e) => e.msg === 'reload: done', 15_000);
    // Let the old workers drain while the load goes on.
    await sleep(2_500);
    stop = true;
    await Promise.all(loops);
    await agent.close();
    r.child.kill('SIGTERM');
    assert.equal(await r.exited(), 0);

    assert.deepEqual(failures, []);
    assert.ok(ok > 100, `only ${ok} requests in the run`);
    const versions = new Set([...seen].map((s) => s.split(' ')[1]));
    assert.deepEqual([...versions].sort(), ['v1', 'v2']);
    const pids = new Set([...seen].map((s) => s.split(' ')[0]));
    assert.ok(pids.size >= 4, `expected 2 old and 2 new worker pids, saw ${[...pids].join(', ')}`);
  });

  describe('when a worker crashes around a reload', () => {
    const SLOW = 'server: { port: 0, workers: 2, keepAliveTimeout: 1s, shutdownTimeout: 5s }\nchain:\n  - app: ./slow-start.js\n';

    /** Waits for the old workers to drain, then checks that the configured count is left for good. */
    const assertWorkers = async (r: ReturnType<typeof run>, expected: number) => {
      const deadline = Date.now() + 8_000;
      while (workerPids(r).length > expected && Date.now() < deadline) await sleep(100);
      // A restart the reload did not count would be forked by now.
      await sleep(300);
      assert.equal(workerPids(r).length, expected, r.stdout());
    };

    it('should leave the configured count when one crashes during the reload', async () => {
      const r = run(['serve'], project(SLOW));
      try {
        const url = await listening(r);
        r.child.kill('SIGHUP');
        await r.waitFor((e) => e.msg === 'reload: starting new workers');
        // The new worker is still starting: an old one answers, and crashes.
        await fetch(`${url}/crash`, { dispatcher: new Agent() }).catch(() => {});
        await r.waitFor((e) => String(e.msg).includes('exited (code 3)'));
        await r.waitFor((e) => e.msg === 'reload: done');
        await assertWorkers(r, 2);
      } finally {
        r.child.kill('SIGTERM');
      }
      assert.equal(await r.exited(), 0);
    });

    it('should leave the configured count when the reload comes while a crashed one restarts', async () => {
      const r = run(['serve'], project(SLOW));
      try {
        const url = await listening(r);
        await fetch(`${url}/crash`, { dispatcher: new Agent() }).catch(() => {});
        await r.waitFor((e) => String(e.msg).includes('exited (code 3)'));
        r.child.kill('SIGHUP');
        await r.waitFor((e) => e.msg === 'reload: done');
        await assertWorkers(r, 2);
      } finally {
        r.child.kill('SIGTERM');
      }
      assert.equal(await r.exited(), 0);
    });
  });

  it('should keep serving the previous version when the new config is invalid', async () => {
    const dir = project(APP);
    const r = run(['serve'], dir);
    const url = await listening(r);
    const before = await (await fetch(`${url}/pid`)).text();
    writeFileSync(join(dir, 'unblock.config.yaml'), 'chain:\n  - ap: ./app.js\n');
    r.child.kill('SIGHUP');
    await r.waitFor((e) => String(e.msg).startsWith('reload: the config is invalid'));
    assert.equal(await (await fetch(`${url}/pid`)).text(), before);
    r.child.kill('SIGTERM');
    assert.equal(await r.exited(), 0);
  });
});

describe('unblock serve: worker pools', { timeout: 180_000 }, () => {
  const POOLED = `
server: { port: 0, health: /healthz, accessLog: json, keepAliveTimeout: 1s }
pool: { maxThreads: 1, maxQueue: 0 }
chain:
  - offload: { handler: ./busy.js, serverTiming: true }
`;

  it('should offload, log the queue wait, and report the pool on the health path (503 while it sheds)', async () => {
    const r = run(['serve'], project(POOLED));
    const url = await listening(r);
    assert.equal(await (await fetch(`${url}/?ms=5`)).text(), 'busy 5');
    const line = await r.waitFor((e) => e.msg === 'request' && e.url === '/?ms=5');
    assert.equal(typeof line.queueWait, 'number');

    const idle = (await (await fetch(`${url}/healthz`)).json()) as { status: string; pools: { default: { maxThreads: number; shedding: boolean } } };
    assert.equal(idle.status, 'ok');
    assert.equal(idle.pools.default.maxThreads, 1);
    assert.equal(idle.pools.default.shedding, false);

    // One thread, no queue: while it is busy the pool sheds.
    const busy = fetch(`${url}/?ms=1500`);
    await sleep(400);
    const shedding = await fetch(`${url}/healthz`);
    assert.equal(shedding.status, 503);
    assert.equal(((await shedding.json()) as { status: string }).status, 'shedding');
    assert.equal((await fetch(`${url}/?ms=1`)).status, 503, 'the offload step sheds too');
    assert.equal((await busy).status, 200);
    r.child.kill('SIGTERM');
    assert.equal(await r.exited(), 0);
  });

  it('should take --threads over the config', async () => {
    const r = run(['serve', '--threads', '3'], project(POOLED));
    const url = await listening(r);
    await (await fetch(`${url}/?ms=1`)).text();
    const body = (await (await fetch(`${url}/healthz`)).json()) as { pools: { default: { maxThreads: number } } };
    assert.equal(body.pools.default.maxThreads, 3);
    r.child.kill('SIGTERM');
    assert.equal(await r.exited(), 0);
  });

  it('should refuse --threads when nothing uses a pool', async () => {
    const r = run(['serve', '--threads', '3'], project(APP));
    assert.equal(await r.exited(), 2);
    assert.match(r.stderr(), /--threads: this config has no worker pool/);
  });
});

/** The fixture key and certificate named `pair` ("first" or "renewed"), copied into `dir` as tls-key.pem and tls-cert.pem. */
function installCertificate(dir: string, pair: string): void {
  for (const part of ['key', 'cert']) copyFileSync(new URL(`./fixtures/tls-${pair}-${part}.pem`, import.meta.url), join(dir, `tls-${part}.pem`));
}

const trusted = ['first', 'renewed'].map((pair) => readFileSync(new URL(`./fixtures/tls-${pair}-cert.pem`, import.meta.url)));

/** The common name of the certificate the server at `url` presents to a new connection. */
function servedCertificate(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: hostname, port: Number(port), ca: trusted }, () => {
      resolve(String(socket.getPeerCertificate().subject.CN));
      socket.end();
    });
    socket.on('error', reject);
  });
}

describe('unblock serve: TLS', { timeout: 180_000 }, () => {
  const TLS_APP = 'server: { port: 0, keepAliveTimeout: 1s, shutdownTimeout: 5s, tls: { key: ./tls-key.pem, cert: ./tls-cert.pem } }\nchain:\n  - app: ./app.js\n';

  it('should serve HTTPS and, after SIGHUP, the certificate renewed on disk', async () => {
    const dir = project(TLS_APP);
    installCertificate(dir, 'first');
    const checked = run(['check'], dir);
    assert.equal(await checked.exited(), 0, checked.stderr());
    assert.match(checked.stdout(), /^server https:\/\/127\.0\.0\.1:0$/m);

    const r = run(['serve'], dir);
    const url = await listening(r);
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const agent = new Agent({ connect: { ca: trusted } });
    const res = await fetch(`${url}/pid`, { dispatcher: agent });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^\d+ v1$/);
    await agent.close();
    assert.equal(await servedCertificate(url), 'unblock test first');

    installCertificate(dir, 'renewed');
    r.child.kill('SIGHUP');
    await r.waitFor((e) => e.msg === 'reload: done', 15_000);
    // The old worker stops accepting connections once it is told to drain, just after.
    const deadline = Date.now() + 5_000;
    while ((await servedCertificate(url)) !== 'unblock test renewed' && Date.now() < deadline) await sleep(50);
    assert.equal(await servedCertificate(url), 'unblock test renewed');
    r.child.kill('SIGTERM');
    assert.equal(await r.exited(), 0);
  });

  it('should refuse a key that is not the certificate\'s, and a file it cannot read, naming the setting', async () => {
    const mismatched = project(TLS_APP);
    installCertificate(mismatched, 'first');
    copyFileSync(new URL('./fixtures/tls-renewed-key.pem', import.meta.url), join(mismatched, 'tls-key.pem'));
    const checked = run(['check'], mismatched);
    assert.equal(await checked.exited(), 1);
    assert.match(checked.stderr(), /server\.tls: .*key values mismatch.*\[UNBLOCK_ERR_CLI_TLS\]/);

    const missing = project(TLS_APP);
    const served = run(['serve'], missing);
    assert.equal(await served.exited(), 1);
    assert.match(served.stderr(), /failed to start: server\.tls\.key: cannot read .*tls-key\.pem \(ENOENT\) \[UNBLOCK_ERR_CLI_TLS\]\n$/);
  });

  it('should name a TLS setting that servers inherit from server where it is written', async () => {
    const inherited = project('server: { tls: { key: ./tls-key.pem, cert: ./tls-cert.pem } }\nservers:\n  - { name: a, port: 0, chain: [{ app: ./app.js }] }\n  - { name: b, port: 0, chain: [{ app: ./app.js }] }\n');
    const checked = run(['check'], inherited);
    assert.equal(await checked.exited(), 1);
    assert.match(checked.stderr(), /^unblock: server\.tls\.key: cannot read .*tls-key\.pem \(ENOENT\) \[UNBLOCK_ERR_CLI_TLS\]\n$/);
  });
});

