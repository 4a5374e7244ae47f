import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { describe, it } from 'node:test';
import createError from 'http-errors';
import { listenHttp2 } from '../../../test/support/http2.js';
import { errorHandler } from '../src/index.js';
import { collecting, eventually } from './helpers.js';

describe('errorHandler(options) on the HTTP/2 compatibility API', () => {
  it('should render before headers and fail the stream after, with no HTTP/1 headers', async (t) => {
    const { options, logged } = collecting();
    const errors = errorHandler(options);
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.message);
    process.on('warning', onWarning);
    const server = http2.createServer((req, res) => {
      errors(req as never, res as never, () => {
        if (req.url === '/late') {
          res.write('started');
          setTimeout(() => errors.terminal(new Error('too late'), req as never, res as never, () => {}), 20);
        } else {
          errors.terminal(createError(413), req as never, res as never, () => {});
        }
      });
    });
    const served = await listenHttp2(server);
    t.after(() => {
      process.off('warning', onWarning);
      return served.close();
    });
    const request = async (path: string, body?: string) => {
      const { status, body: text, ending } = await served.send({ ':path': path, ':method': body === undefined ? 'GET' : 'POST' }, body === undefined ? undefined : [body]);
      return { status, body: text, ending };
    };

    assert.deepEqual(await request('/big', 'x'.repeat(100_000)), { status: 413, body: '413 Payload Too Large\n', ending: 'end' });
    assert.deepEqual(await request('/late'), { status: 200, body: 'started', ending: 'ERR_HTTP2_STREAM_ERROR' });
    await eventually(() => logged.length === 2, 'both errors logged');
    assert.deepEqual(warnings, []);
  });
});
