// The default rendering of an error: what may be shown of it, and the three
// formats a client can ask for. No I/O here.
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import escapeHtml from 'escape-html';
import Negotiator from 'negotiator';
import type { ErrorDetails, ErrorMediaType, RenderedError } from './types.js';

// On a tie (`*/*`, or no Accept at all) the first wins: plain text is what a
// terminal (curl) and an unknown client read best.
const MEDIA_TYPES: ErrorMediaType[] = ['text/plain', 'application/problem+json', 'application/json', 'text/html'];

/** The error's `status` or `statusCode` when it is a 4xx/5xx integer, else 500 (the http-errors convention). */
export function statusOf(err: unknown): number {
  if (err === null || typeof err !== 'object') return 500;
  for (const key of ['status', 'statusCode'] as const) {
    const value = (err as Record<string, unknown>)[key];
    if (Number.isInteger(value) && (value as number) >= 400 && (value as number) <= 599) return value as number;
  }
  return 500;
}

export interface Disclosure {
  debug: boolean;
  expose: boolean | undefined;
}

export function detailsOf(err: unknown, req: IncomingMessage, status: number, disclosure: Disclosure): ErrorDetails {
  const fields = err !== null && typeof err === 'object' ? (err as Record<string, unknown>) : {};
  const shown = disclosure.debug || (disclosure.expose ?? fields.expose === true);
  const message = typeof fields.message === 'string' ? fields.message : typeof err === 'string' ? err : undefined;
  const title = STATUS_CODES[status] ?? 'Error';
  return {
    status,
    title,
    // http-errors' default message is the reason phrase: no need to say it twice.
    message: shown && message !== '' && message !== title ? message : undefined,
    code: shown && typeof fields.code === 'string' ? fields.code : undefined,
    stack: disclosure.debug && typeof fields.stack === 'string' ? fields.stack : undefined,
    mediaType: negotiate(req),
  };
}

function negotiate(req: IncomingMessage): ErrorMediaType {
  return (new Negotiator(req).mediaType(MEDIA_TYPES) as ErrorMediaType | undefined) ?? 'text/plain';
}

export function renderDefault(details: ErrorDetails): RenderedError {
  const { status, title, message, code, stack, mediaType } = details;
  switch (mediaType) {
    case 'application/problem+json':
    case 'application/json': {
      // RFC 9457: "about:blank" says the status alone explains the problem,
      // and its title is then the reason phrase. code and stack are extensions.
      const problem = { type: 'about:blank', title, status, detail: message, code, stack };
      return { type: `${mediaType}; charset=utf-8`, body: JSON.stringify(problem) };
    }
    case 'text/html': {
      const heading = escapeHtml(`${status} ${title}`);
      const parts = [
        '<!DOCTYPE html>',
        '<html lang="en">',
        '<head>',
        '<meta charset="utf-8">',
        `<title>${heading}</title>`,
        '</head>',
        '<body>',
        `<h1>${heading}</h1>`,
        ...(message === undefined ? [] : [`<p>${escapeHtml(message)}</p>`]),
        ...(code === undefined ? [] : [`<p><code>${escapeHtml(code)}</code></p>`]),
        ...(stack === undefined ? [] : [`<pre>${escapeHtml(stack)}</pre>`]),
        '</body>',
        '</html>',
        '',
      ];
      return { type: 'text/html; charset=utf-8', body: parts.join('\n') };
    }
    default: {
      const lines = [`${status} ${title}`, message, code === undefined ? undefined : `code: ${code}`, stack].filter((line) => line !== undefined);
      return { type: 'text/plain; charset=utf-8', body: `${lines.join('\n')}\n` };
    }
  }
}
