import assert from 'node:assert/strict';
import { isLifeboatError } from '../../src/errors.js';

/** The error code `fn` throws (a typed error's `code`), 'no_error' when it does not throw. */
export function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? `untyped: ${String(err)}`;
  }
  return 'no_error';
}

/** Awaits `p`, which must reject with a LifeboatError of `code`; returns that error. */
export async function rejectsWith(p: Promise<unknown>, code: string): Promise<Error> {
  const err = await p.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(isLifeboatError(err), `not a LifeboatError: ${String(err)}`);
  assert.equal(err.code, code, err.message);
  return err;
}
