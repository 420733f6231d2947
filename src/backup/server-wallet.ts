/**
 * The backup service's routes for wallet accounts and second factors (docs/backup-server.md, "HTTP
 * API"), registered by createBackupApp (./server.ts) with its rate-limit hooks: a SIWE nonce, a wallet
 * registration, a wallet login, and TOTP enrolment under a login token.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseInput } from '../http/app.js';
import { API_PREFIX, decodeBase64, encodeBase64, isoTimeOf, walletLoginBody, walletRegisterBody } from './api.js';
import type { BackupService } from './service.js';

type Hook = (req: FastifyRequest) => Promise<void>;

export interface WalletRouteDeps {
  /** Nonces and wallet logins count as challenges and sessions do: a signature cannot be guessed. */
  sessionPerAddress: Hook;
  authPerAddress: Hook;
  /** Sets req.backupLoginToken from a login token of the URL's account. */
  loginToken: Hook;
  account: (req: FastifyRequest) => string;
}

export function registerWalletRoutes(app: FastifyInstance, service: BackupService, deps: WalletRouteDeps): void {
  const ACCOUNT = `${API_PREFIX}/accounts/:account`;
  const { account } = deps;

  // A nonce for any account name (existing or not), like a challenge.
  app.post(`${ACCOUNT}/wallet/nonce`, { onRequest: deps.sessionPerAddress }, async (req) => {
    const n = await service.walletNonce(account(req));
    return { nonce: n.nonce, domain: n.domain, chain_id: n.chainId, expires_at: isoTimeOf(n.expiresAt) };
  });
  app.post(`${ACCOUNT}/register/wallet`, { onRequest: deps.authPerAddress }, async (req) => {
    const name = account(req);
    const b = parseInput(walletRegisterBody, req.body, 'body');
    await service.walletRegister(name, b.invite, b.message, b.signature, {
      wrappedKey: decodeBase64(b.wrapped_key, 'wrapped_key'),
      authPublicKey: decodeBase64(b.auth_public_key, 'auth_public_key', 32),
    });
    return { ok: true };
  });
  app.post(`${ACCOUNT}/wallet/login`, { onRequest: deps.sessionPerAddress }, async (req) => {
    const name = account(req);
    const b = parseInput(walletLoginBody, req.body, 'body');
    const r = await service.walletLogin(name, b.message, b.signature, b.totp);
    return { wrapped_key: encodeBase64(r.wrappedKey), login_token: r.token, expires_at: isoTimeOf(r.expiresAt) };
  });

  // ---- second factor (a login token: the password or wallet, and the current code if there is one) ----
  app.post(`${ACCOUNT}/totp`, { onRequest: [deps.authPerAddress, deps.loginToken] }, async (req) => {
    const e = await service.totpEnrol(req.backupLoginToken!);
    return { otpauth_uri: e.otpauthUri, secret: e.secret, recovery_codes: e.recoveryCodes };
  });
  app.delete(`${ACCOUNT}/totp`, { onRequest: [deps.authPerAddress, deps.loginToken] }, async (req) => {
    await service.factors.disable(req.backupLoginToken!.account);
    return { ok: true };
  });
}
