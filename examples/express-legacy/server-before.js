// Before: the app served as it always was. While one request hashes a
// password or renders a big invoice, every other request waits.
import app from './app.js';
import { listen, runIfMain } from './listen.js';

export function start(options) {
  return listen(app, options);
}

await runIfMain(import.meta.url, start);
