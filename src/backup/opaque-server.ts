/**
 * The backup service's side of OPAQUE (@serenity-kit/opaque over the server setup): checking the
 * setup, the registration response, the check that a record deserializes, and the login's two steps.
 * The library's errors (strings about the bytes it got) become typed ones here. The accounts and
 * sessions built on these are ./service.ts.
 */
import * as opaque from '@serenity-kit/opaque';
import { InvalidInputError, type LifeboatError } from '../errors.js';
import { fromB64u, toB64u } from '../util/bytes.js';

const malformedOpaque = (what: string) => new InvalidInputError(`${what} is not a valid opaque message`);

/** Runs an OPAQUE call, mapping its errors (strings about the bytes it got) to `err`. */
function opaqueCall<T>(fn: () => T, err: () => LifeboatError): T {
  try {
    return fn();
  } catch {
    throw err();
  }
}

/** Waits for the OPAQUE module and checks the server setup. Throws InvalidInputError `invalid_opaque_setup`. */
export async function checkServerSetup(serverSetup: string): Promise<void> {
  await opaque.ready;
  try {
    opaque.server.getPublicKey(serverSetup);
  } catch {
    throw new InvalidInputError('the opaque server setup is malformed', { code: 'invalid_opaque_setup', hint: 'restore the opaque-server-setup file from a backup' });
  }
}

/** The OPAQUE server's static public key (base64url), which clients may pin. */
export function serverPublicKey(serverSetup: string): string {
  return opaque.server.getPublicKey(serverSetup);
}

/** OPAQUE registration's response to a registration request. Throws InvalidInputError for a malformed request. */
export function registrationResponse(serverSetup: string, account: string, request: Uint8Array): Uint8Array {
  const r = opaqueCall(
    () => opaque.server.createRegistrationResponse({ serverSetup, userIdentifier: account, registrationRequest: toB64u(request) }),
    () => malformedOpaque('registration_request'),
  );
  return fromB64u(r.registrationResponse, 'registration response');
}

/** A record that does not deserialize would lock the account out: refuse it now. Throws InvalidInputError. */
export function checkRecord(serverSetup: string, account: string, record: Uint8Array): void {
  const probe = opaque.client.startLogin({ password: 'probe' }).startLoginRequest;
  opaqueCall(
    () => opaque.server.startLogin({ serverSetup, userIdentifier: account, registrationRecord: toB64u(record), startLoginRequest: probe }),
    () => malformedOpaque('record'),
  );
}

/**
 * OPAQUE login, step one, against `record` (null: a dummy record, which looks the same to the client).
 * Returns the server state to keep until step two and the response (base64url). Throws InvalidInputError
 * for a malformed request.
 */
export function startLogin(serverSetup: string, account: string, record: Uint8Array | null, startLoginRequest: Uint8Array): { serverLoginState: string; loginResponse: string } {
  return opaqueCall(
    () =>
      opaque.server.startLogin({
        serverSetup,
        userIdentifier: account,
        registrationRecord: record ? toB64u(record) : null,
        startLoginRequest: toB64u(startLoginRequest),
      }),
    () => malformedOpaque('start_login_request'),
  );
}

/** OPAQUE login, step two. Throws `err()` when the client's finish does not match (a wrong password, a malformed message). */
export function finishLogin(serverLoginState: string, finishLoginRequest: Uint8Array, err: () => LifeboatError): void {
  opaqueCall(() => opaque.server.finishLogin({ serverLoginState, finishLoginRequest: toB64u(finishLoginRequest) }), err);
}
