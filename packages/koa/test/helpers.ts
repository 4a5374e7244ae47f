import Koa from 'koa';
import Koa2 from 'koa2';

/** Koa 3 and Koa 2 (installed as the `koa2` alias): each suite runs against both. */
export const koaVersions: ReadonlyArray<readonly [string, typeof Koa]> = [
  ['Koa 3', Koa],
  ['Koa 2', Koa2],
];

/** Errors Koa reports on its app's `error` event, collected instead of logged. */
export function collectErrors(app: Koa): unknown[] {
  const errors: unknown[] = [];
  app.on('error', (err: unknown) => errors.push(err));
  return errors;
}
