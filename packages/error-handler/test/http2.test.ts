import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import createError from 'http-errors';
import { errorHandler } from '../src/index.js';
import { collecting, eventually } from './helpers.js';

interface Outcome {
  status: number | undefined;
  body: string;
  /** `end` for a complete response, else the error the client saw. */
  ending: string;
}

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
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    t.after(() => {
      process.off('warning', onWarning);
      client.close();
      server.close();
    });

    const request = (path: string, body?: string) =>
      new Promise<Outcome>((resolve) => {
        const stream = client.request({ ':path': path, ':method': body === undefined ? 'GET' : 'POST' });
        let status: number | undefined;
        let text = '';
        stream.on('response', (headers) => (status = headers[':status']));
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => (text += chunk));
        stream.on('end', () => resolve({ status, body: text, ending: 'end' }));
        stream.on('error', (err: NodeJS.ErrnoException) => resolve({ status, body: text, ending: err.code ?? 'error' }));
        stream.end(body);
      });

    assert.deepEqual(await request('/big', 'x'.repeat(100_000)), { status: 413, body: '413 Payload Too Large\n', ending: 'end' });
    assert.deepEqual(await request('/late'), { status: 200, body: 'started', ending: 'ERR_HTTP2_STREAM_ERROR' });
    await eventually(() => logged.length === 2, 'both errors logged');
    assert.deepEqual(warnings, []);
  });
});
