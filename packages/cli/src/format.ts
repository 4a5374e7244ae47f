/** An error as the command prints it: its message, and its code when it has one. */
export function formatError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const { code, syscall } = err as { code?: unknown; syscall?: unknown };
  // Config errors are written for people, and a system error (a port in use,
  // an address that cannot be bound) says all in its message: no stack.
  // Anything else is a bug or a crash in an app module, where the stack helps.
  if (typeof code === 'string' && code.startsWith('UNBLOCK_ERR_')) return `${err.message} [${code}]`;
  if (typeof code === 'string' && typeof syscall === 'string') return err.message;
  return err.stack ?? err.message;
}
