import { invalidArgument } from './errors.js';
import type { Handler, KoaAppLike } from './types.js';

/**
 * A Koa app as a plain `(req, res)` handler: the end of an unblock chain, an
 * app mounted under a path in Express or Connect, or the default export of a
 * module run by the worker pool.
 *
 * A Koa app always answers (404 when nothing matched): it never falls through
 * to a `next` of the surrounding app.
 */
export function fromKoa(app: KoaAppLike): Handler {
  if (app === null || (typeof app !== 'object' && typeof app !== 'function') || typeof (app as Partial<KoaAppLike>).callback !== 'function') {
    throw invalidArgument(`fromKoa() takes a Koa application (an object with callback()), got ${app === null ? 'null' : typeof app}`);
  }
  // Composed on the first request, not here, so middleware added to the app
  // after fromKoa() is called still counts (as with Koa's own listen()).
  let handle: ReturnType<KoaAppLike['callback']> | undefined;
  return function koaApp(req, res) {
    handle ??= app.callback();
    void handle(req, res);
  };
}
