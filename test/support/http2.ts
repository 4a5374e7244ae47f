// Real HTTP/2 servers on loopback for the tests of every package that runs
// on node:http2's compatibility API: listen on port 0, hold one client
// session to it, send requests on that session.
import { once } from 'node:events';
import http2, { type ClientHttp2Session, type Http2SecureServer, type Http2Server, type IncomingHttpHeaders, type OutgoingHttpHeaders, type SecureClientSessionOptions } from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface Http2Outcome {
  status: number | undefined;
  headers: IncomingHttpHeaders;
  body: string;
  /** What came after the body (empty when nothing did). */
  trailers: IncomingHttpHeaders;
  /** `end` for a complete response, else the code of the error the client saw. */
  ending: string;
}

export interface Http2Listening {
  /** One session to the server, shared by every request sent. */
  client: ClientHttp2Session;
  send(headers: OutgoingHttpHeaders, parts?: string[]): Promise<Http2Outcome>;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 and connects a client session (for a secure server, trusting `ca`). */
export async function listenHttp2(server: Http2Server | Http2SecureServer, secure?: Pick<SecureClientSessionOptions, 'ca'>): Promise<Http2Listening> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const client = http2.connect(`${secure ? 'https' : 'http'}://127.0.0.1:${port}`, secure ?? {});
  return {
    client,
    send: (headers, parts) => http2Request(client, headers, parts),
    close: async () => {
      client.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * One request on `client`. A body given as several parts goes out as separate
 * DATA frames, 20 ms apart, with no Content-Length unless `headers` has one;
 * without parts the stream ends with the headers.
 */
export function http2Request(client: ClientHttp2Session, headers: OutgoingHttpHeaders, parts?: string[]): Promise<Http2Outcome> {
  return new Promise((resolve) => {
    const stream = client.request(headers, { endStream: parts === undefined });
    let response: IncomingHttpHeaders = {};
    let body = '';
    let trailers: IncomingHttpHeaders = {};
    const outcome = (ending: string): Http2Outcome => ({ status: response[':status'] as number | undefined, headers: response, body, trailers, ending });
    stream.on('response', (received) => (response = received));
    stream.on('trailers', (received) => (trailers = received));
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => resolve(outcome('end')));
    stream.on('error', (err: NodeJS.ErrnoException) => resolve(outcome(err.code ?? 'error')));
    if (parts === undefined) return;
    const next = (i: number): void => {
      if (i === parts.length - 1) {
        stream.end(parts[i]);
        return;
      }
      stream.write(parts[i]);
      setTimeout(() => next(i + 1), 20);
    };
    next(0);
  });
}
