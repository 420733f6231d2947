/** The error code `fn` throws (a typed error's `code`), 'no_error' when it does not throw. */
export function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? `untyped: ${String(err)}`;
  }
  return 'no_error';
}
