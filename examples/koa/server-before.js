// Before: the Koa app served as it always was. While one request hashes a
// password or renders a big invoice, every other request waits.
import { listen, runIfMain } from '../express-legacy/listen.js';
import app from './app.js';

export function start(options) {
  return listen(app.callback(), options);
}

await runIfMain(import.meta.url, start);
