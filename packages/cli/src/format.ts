/** An error as the command prints it: its message, and its code when it has one. */
export function formatError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  // Config errors are written for people: no stack. Anything else is a bug or
  // a crash in an app module, where the stack is what helps.
  if (typeof code === 'string' && code.startsWith('UNBLOCK_ERR_')) return `${err.message} [${code}]`;
  return err.stack ?? err.message;
}
