// Writes src/schema.json, the JSON Schema of a whole config file, from the
// packages' optionsSchema. Run after changing a step or a package's options
// (`npm run generate-schema -w @unblock/config`); a test fails while the
// committed file is out of date.
import { writeFileSync } from 'node:fs';
import { composeSchema } from '../src/schema.js';

export const schemaFile = new URL('../src/schema.json', import.meta.url);

/** The file's text: the schema, pretty-printed, with a final newline. */
export function schemaText(): string {
  return `${JSON.stringify(composeSchema(), null, 2)}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(schemaFile, schemaText());
  console.log(`wrote ${schemaFile.pathname}`);
}
