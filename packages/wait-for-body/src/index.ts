export { waitForBody, type RequestWithBody, type WaitForBodyMiddleware } from './wait-for-body.js';
export type { WaitForBodyOptions } from './options.js';
export { optionsSchema } from './schema.js';
export * from './errors.js';
