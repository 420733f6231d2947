/**
 * What a share holder does, whoever asks (HTTP routes in ./server.ts, local commands in the CLI):
 * keep sealed shares and vault copies, prove possession, release a share when a signed release
 * request authorises it, and let an operator enrol a new primary. Every call is serialised through
 * one mutex, checks who may make it, and is recorded in the audit log (outcome and, when refused,
 * the err_type) before it returns. Rules: docs/format.md, "Share holder".
 * Who may ask for what is ./access.ts; opening, proving and re-sealing a share is ./sealing.ts.
 */
import { existsSync } from 'node:fs';
import { ConflictError, ForbiddenError, InvalidInputError, LifeboatError, NotFoundError } from '../errors.js';
import { encodePublicIdentity, generateIdentity, type Identity, identityFingerprint, loadIdentity, parsePublicIdentity, type PublicIdentity, saveIdentity } from '../identity.js';
import { parseReleaseRequest, type ReleaseResponse, verifyReleaseRequest } from '../recovery/release.js';
import { ctEqual, fromB64, toHex } from '../util/bytes.js';
import { ensurePrivateDir } from '../util/files.js';
import { readVaultHeader } from '../vault/format.js';
import { actorOf, authorizeReleaseSigner, type Caller, type HolderRole, roleIn } from './access.js';
import { MAX_SEALED_SHARE_BYTES, type ChallengeAnswer, type EnrolAnswer, type PutShareAnswer, type PutShareBody, type PutVaultAnswer, type SchemeInfo } from './api.js';
import { AuditLog, type AuditRecord } from './audit.js';
import { checkShareUpload, proveShare, releaseShare } from './sealing.js';
import { acquireDirLock, type HolderConfig, type HolderPaths, holderPaths, HolderStore, Mutex, readConfig, writeConfig } from './store.js';

const audited = new WeakSet<object>();

/** True when the service already recorded this error in the audit log (so the HTTP layer does not again). */
export function wasAudited(err: unknown): boolean {
  return typeof err === 'object' && err !== null && audited.has(err);
}

export interface HolderServiceOptions {
  /** The clock (unix ms); tests move it. */
  now?: () => number;
  /** Take the directory lock (default true); read-only tools pass false. */
  lock?: boolean;
}

export interface HolderInitResult {
  dir: string;
  identity: string;
  fingerprint: string;
  config: HolderConfig;
}

/** A holder opened on its data directory. Call close() to release the directory lock. */
export class HolderService {
  readonly store: HolderStore;
  readonly identity: Identity;
  /** The holder's public identity token (`lb1.…`) and fingerprint. */
  readonly token: string;
  readonly fingerprint: string;
  readonly now: () => number;
  private readonly audit: AuditLog;
  private readonly mutex = new Mutex();
  private readonly nonces: { check(nonce: string, ts: number, now?: number): void };
  private unlock: (() => void) | undefined;

  private constructor(paths: HolderPaths, opts: HolderServiceOptions) {
    this.now = opts.now ?? Date.now;
    this.store = new HolderStore(paths);
    this.unlock = opts.lock === false ? undefined : acquireDirLock(paths);
    try {
      this.identity = loadIdentity(paths.identity, 'holder');
      readConfig(paths);
      this.store.prepare();
      this.audit = AuditLog.open(paths.audit, this.now);
      this.nonces = this.store.nonceStore();
    } catch (err) {
      this.close();
      throw err;
    }
    this.token = encodePublicIdentity(this.identity);
    this.fingerprint = identityFingerprint(this.identity);
  }

  /**
   * Creates a holder directory: a new holder identity (0600) and its config. Throws ConflictError
   * `already_initialized` when either exists, InvalidInputError for a malformed identity token.
   */
  static init(dir: string, opts: { primary: string; operators: string[]; autoUnseal: boolean; now?: () => number }): HolderInitResult {
    const paths = holderPaths(dir);
    const primary = parsePublicIdentity(opts.primary, 'primary');
    if (opts.operators.length === 0) throw new InvalidInputError('at least one operator is needed', { hint: 'pass --operator lb1… (the key that signs release requests)' });
    const operators = opts.operators.map((t) => encodePublicIdentity(parsePublicIdentity(t, 'operator')));
    for (const p of [paths.identity, paths.config]) {
      if (existsSync(p)) throw new ConflictError(`${p} exists: this holder is initialised already`, 'already_initialized', 'use `lifeboat holder show`; a new identity would lose every share sealed to this one');
    }
    ensurePrivateDir(dir);
    const release = acquireDirLock(paths);
    try {
      const id = generateIdentity('holder');
      saveIdentity(paths.identity, id);
      const config: HolderConfig = { primary: encodePublicIdentity(primary), operators: [...new Set(operators)], auto_unseal: opts.autoUnseal };
      writeConfig(paths, config);
      new HolderStore(paths).prepare();
      AuditLog.open(paths.audit, opts.now).append({ action: 'init', actor: 'local', outcome: 'ok' });
      return { dir, identity: encodePublicIdentity(id), fingerprint: identityFingerprint(id), config };
    } finally {
      release();
    }
  }

  /**
   * Opens an initialised holder directory. Throws NotFoundError `file_not_found` (not initialised),
   * LifeboatError `holder_busy` (another process has it), InvalidInputError `insecure_permissions`,
   * FormatError for damaged files, LifeboatError `audit_log_corrupt`.
   */
  static open(dir: string, opts: HolderServiceOptions = {}): HolderService {
    return new HolderService(holderPaths(dir), opts);
  }

  /** Releases the directory lock. */
  close(): void {
    this.unlock?.();
    this.unlock = undefined;
  }

  /** The current config (read from disk, so a local `holder enrol` is seen at once). */
  config(): HolderConfig {
    return readConfig(this.store.paths);
  }

  /** The role an identity is enrolled in, or undefined. */
  roleOf(id: PublicIdentity): HolderRole | undefined {
    return roleIn(this.config(), id);
  }

  /** Throws ForbiddenError `not_enrolled` for an unknown key and `forbidden` for a known key in another role. */
  authorize(id: PublicIdentity, roles: HolderRole[]): void {
    const role = this.roleOf(id);
    if (!role) throw new ForbiddenError(`key ${identityFingerprint(id)} is not enrolled with this holder`, 'not_enrolled', 'enrol it with `lifeboat holder init`/`holder enrol`, or sign with an enrolled key');
    if (!roles.includes(role)) throw new ForbiddenError(`the ${role} may not do this (needs the ${roles.join(' or ')})`, 'forbidden');
  }

  private authorizeCaller(caller: Caller, roles: HolderRole[]): void {
    if (caller.kind === 'local') return;
    if (!caller.identity) throw new ForbiddenError('this needs a signed request', 'not_enrolled');
    this.authorize(caller.identity, roles);
  }

  /** Checks and records a signed request's nonce (durably). Throws ForbiddenError `replayed_request`. */
  checkNonce(nonce: string, ts: number): Promise<void> {
    return this.mutex.run(() => this.nonces.check(nonce, ts, this.now()));
  }

  /** Records a refusal that happened before the service was reached (bad signature, bad body, ...). */
  recordRefusal(rec: Omit<AuditRecord, 'outcome'>): Promise<void> {
    return this.mutex.run(() => void this.audit.append({ ...rec, outcome: 'refused' }));
  }

  private run<T>(action: string, caller: Caller, schemeId: string | undefined, fn: (rec: AuditRecord) => T): Promise<T> {
    return this.mutex.run(() => {
      const rec: AuditRecord = { action, actor: actorOf(caller), scheme_id: schemeId, outcome: 'ok' };
      if (caller.kind === 'remote' && caller.remote) rec.remote = caller.remote;
      let out: T;
      try {
        out = fn(rec);
      } catch (err) {
        this.audit.append({ ...rec, outcome: 'refused', code: err instanceof LifeboatError ? err.code : 'internal_error' });
        if (typeof err === 'object' && err !== null) audited.add(err);
        throw err;
      }
      this.audit.append(rec);
      return out;
    });
  }

  private requireShare(id: string) {
    const share = this.store.getShare(id);
    if (!share) throw new NotFoundError(`this holder has no share of scheme ${id}`, 'scheme_not_found');
    return share;
  }

  /**
   * Stores a sealed share with its manifest (primary only). Idempotent for the same share. Throws
   * InvalidInputError (bad base64, too large), FormatError / `bad_signature` (manifest),
   * InvalidInputError `manifest_mismatch`, ShareError `invalid_share`, ConflictError `conflict`.
   */
  putShare(caller: Caller, schemeId: string, body: PutShareBody): Promise<PutShareAnswer> {
    return this.run('put_share', caller, schemeId, () => {
      this.authorizeCaller(caller, ['primary']);
      const sealed = fromB64(body.sealed_share, 'sealed_share');
      if (sealed.length > MAX_SEALED_SHARE_BYTES) throw new InvalidInputError(`sealed_share is larger than ${MAX_SEALED_SHARE_BYTES} bytes`);
      const hash = checkShareUpload(this.identity, this.fingerprint, () => this.config().primary, schemeId, body, sealed);
      const manifestJson = `${JSON.stringify(body.manifest)}\n`;
      const answer = { scheme_id: schemeId, member_index: body.member_index, sealed_share_sha256: hash };
      const existing = this.store.getShare(schemeId);
      if (existing) {
        if (existing.memberIndex !== body.member_index || !ctEqual(existing.sealedShare, sealed)) {
          throw new ConflictError(`this holder already keeps a different share of scheme ${schemeId}`, 'conflict', 'a scheme is written once; rotate to a new scheme instead');
        }
        if (this.store.getManifestText(schemeId) !== manifestJson) this.store.putManifest(schemeId, manifestJson);
        return { ...answer, created: false };
      }
      this.store.putShare({ schemeId, memberIndex: body.member_index, sealedShare: sealed, createdAt: new Date(this.now()).toISOString() }, manifestJson);
      return { ...answer, created: true };
    });
  }

  /**
   * Stores a vault copy (primary only) if it is newer. Throws FormatError (not a vault),
   * InvalidInputError `scheme_mismatch`, NotFoundError `scheme_not_found`, ConflictError
   * `stale_generation` (older) or `conflict` (same generation, other bytes).
   */
  putVault(caller: Caller, schemeId: string, vault: Uint8Array): Promise<PutVaultAnswer> {
    return this.run('put_vault', caller, schemeId, () => {
      this.authorizeCaller(caller, ['primary']);
      const header = readVaultHeader(vault);
      if (toHex(header.schemeId) !== schemeId) throw new InvalidInputError(`the vault belongs to scheme ${toHex(header.schemeId)}, not ${schemeId}`, { code: 'scheme_mismatch' });
      this.requireShare(schemeId);
      const manifestText = this.store.getManifestText(schemeId);
      if (manifestText && (JSON.parse(manifestText) as { master_fingerprint?: string }).master_fingerprint !== toHex(header.fingerprint)) {
        throw new InvalidInputError('the vault names another master key than the scheme manifest', { code: 'scheme_mismatch' });
      }
      const current = this.store.vaultGeneration(schemeId);
      const answer = { scheme_id: schemeId, generation: header.generation };
      if (current !== null && header.generation < current) {
        throw new ConflictError(`vault generation ${header.generation} is older than the stored ${current}`, 'stale_generation', 'push the current vault');
      }
      if (current !== null && header.generation === current) {
        if (ctEqual(this.store.getVault(schemeId)!, vault)) return { ...answer, stored: false };
        throw new ConflictError(`a different vault of generation ${current} is stored already`, 'conflict', 'every change to the vault must raise its generation');
      }
      this.store.putVault(schemeId, vault);
      return { ...answer, stored: true };
    });
  }

  /** The schemes this holder keeps (primary or operator). */
  listSchemes(caller: Caller): Promise<SchemeInfo[]> {
    return this.run('list_schemes', caller, undefined, () => {
      this.authorizeCaller(caller, ['primary', 'operator']);
      return this.store.listSchemeIds().map((id) => {
        const s = this.requireShare(id);
        return { scheme_id: id, member_index: s.memberIndex, created_at: s.createdAt, vault_generation: this.store.vaultGeneration(id), vault_sha256: this.store.vaultHash(id) };
      });
    });
  }

  /** The manifest copy as uploaded (JSON text). Throws NotFoundError `scheme_not_found`. */
  getManifest(caller: Caller, schemeId: string): Promise<string> {
    return this.run('get_manifest', caller, schemeId, () => {
      this.authorizeCaller(caller, ['primary', 'operator']);
      this.requireShare(schemeId);
      const text = this.store.getManifestText(schemeId);
      if (!text) throw new NotFoundError(`no manifest of scheme ${schemeId}`, 'scheme_not_found');
      return text;
    });
  }

  /** The vault copy. Throws NotFoundError `scheme_not_found` or `vault_not_found`. */
  getVault(caller: Caller, schemeId: string): Promise<{ vault: Uint8Array; generation: number }> {
    return this.run('get_vault', caller, schemeId, () => {
      this.authorizeCaller(caller, ['primary', 'operator']);
      this.requireShare(schemeId);
      const vault = this.store.getVault(schemeId);
      if (!vault) throw new NotFoundError(`this holder has no vault copy of scheme ${schemeId}`, 'vault_not_found', 'push one with `lifeboat recovery sync`');
      return { vault, generation: this.store.vaultGeneration(schemeId)! };
    });
  }

  /** Answers a possession challenge (32 bytes). Throws InvalidInputError, NotFoundError, ShareError `invalid_share`. */
  challenge(caller: Caller, schemeId: string, challenge: Uint8Array): Promise<ChallengeAnswer> {
    return this.run('challenge', caller, schemeId, () => {
      this.authorizeCaller(caller, ['primary', 'operator']);
      if (challenge.length !== 32) throw new InvalidInputError('challenge must be 32 bytes');
      return proveShare(this.identity, schemeId, this.requireShare(schemeId), challenge);
    });
  }

  /**
   * Releases this holder's share of a scheme to the requester's one-time key, when the signed
   * release request allows it (see the file comment and docs). The request id is recorded durably
   * before the answer. Throws FormatError `malformed`, UnauthorizedError `bad_signature`,
   * ForbiddenError `request_expired`/`wrong_holder`/`not_enrolled`/`forbidden`/`replayed_request`,
   * InvalidInputError `scheme_mismatch`, NotFoundError `scheme_not_found`.
   */
  release(caller: Caller, requestValue: unknown, pathSchemeId?: string): Promise<ReleaseResponse> {
    return this.run('release', caller, pathSchemeId, (rec) => {
      const request = parseReleaseRequest(requestValue);
      rec.scheme_id = request.scheme_id;
      const verified = verifyReleaseRequest(request, this.now());
      const signerFp = identityFingerprint(verified.signer);
      if (caller.kind === 'local') rec.subject = signerFp;
      else rec.actor = signerFp;
      rec.request_id = request.request_id;
      if (pathSchemeId !== undefined && request.scheme_id !== pathSchemeId) {
        throw new InvalidInputError(`the release request is for scheme ${request.scheme_id}, not ${pathSchemeId}`, { code: 'scheme_mismatch' });
      }
      if (request.holder_fingerprint !== this.fingerprint) {
        throw new ForbiddenError(`the release request names holder ${request.holder_fingerprint}, this is ${this.fingerprint}`, 'wrong_holder', 'send it to the holder it names');
      }
      authorizeReleaseSigner(this.roleOf(verified.signer), () => this.config(), verified.signer, request.purpose, verified.requesterPublicKey);
      const share = this.requireShare(request.scheme_id);
      if (this.store.readReleaseIds().has(request.request_id)) throw new ForbiddenError('this release request was used already', 'replayed_request', 'create a new request');
      this.store.addReleaseId(request.request_id, request.expires_at, this.now());
      return releaseShare(this.identity, this.fingerprint, request, share, verified.requesterPublicKey);
    });
  }

  /** Replaces the enrolled primary (an operator, or a local admin). Throws InvalidInputError for a bad token. */
  enrol(caller: Caller, primaryToken: string): Promise<EnrolAnswer> {
    return this.run('enrol', caller, undefined, (rec) => {
      this.authorizeCaller(caller, ['operator']);
      const primary = parsePublicIdentity(primaryToken, 'primary');
      const fp = identityFingerprint(primary);
      rec.subject = fp;
      const cfg = this.config();
      const token = encodePublicIdentity(primary);
      const changed = cfg.primary !== token;
      if (changed) writeConfig(this.store.paths, { ...cfg, primary: token });
      return { primary: token, fingerprint: fp, changed };
    });
  }

  /**
   * Adds an operator (a command on the holder only: no route changes operators). Answers false when it
   * was enrolled already. Throws InvalidInputError for a malformed token, ForbiddenError over HTTP.
   */
  addOperator(caller: Caller, token: string): Promise<{ fingerprint: string; changed: boolean }> {
    return this.run('add_operator', caller, undefined, (rec) => {
      if (caller.kind !== 'local') throw new ForbiddenError('operators are changed only on the holder itself', 'forbidden');
      const id = parsePublicIdentity(token, 'operator');
      const fp = identityFingerprint(id);
      rec.subject = fp;
      const cfg = this.config();
      if (cfg.operators.some((t) => identityFingerprint(parsePublicIdentity(t)) === fp)) return { fingerprint: fp, changed: false };
      writeConfig(this.store.paths, { ...cfg, operators: [...cfg.operators, encodePublicIdentity(id)] });
      return { fingerprint: fp, changed: true };
    });
  }

  /**
   * Removes an operator, named by token or fingerprint (on the holder only). Throws NotFoundError
   * `operator_not_found`, ConflictError `last_operator` (without one, nothing but an auto-unseal
   * could ever release a share), ForbiddenError over HTTP.
   */
  removeOperator(caller: Caller, tokenOrFingerprint: string): Promise<{ fingerprint: string }> {
    return this.run('remove_operator', caller, undefined, (rec) => {
      if (caller.kind !== 'local') throw new ForbiddenError('operators are changed only on the holder itself', 'forbidden');
      const fp = tokenOrFingerprint.startsWith('lb1.') ? identityFingerprint(parsePublicIdentity(tokenOrFingerprint, 'operator')) : tokenOrFingerprint.toLowerCase();
      rec.subject = fp;
      const cfg = this.config();
      const rest = cfg.operators.filter((t) => identityFingerprint(parsePublicIdentity(t)) !== fp);
      if (rest.length === cfg.operators.length) throw new NotFoundError(`operator ${fp} is not enrolled`, 'operator_not_found', 'see `lifeboat holder show`');
      if (rest.length === 0) throw new ConflictError('refusing to remove the last operator', 'last_operator', 'add the new operator first (--add-operator), then remove the old one');
      writeConfig(this.store.paths, { ...cfg, operators: rest });
      return { fingerprint: fp };
    });
  }

  /** Removes a scheme's share, manifest and vault copy (primary only). Throws NotFoundError `scheme_not_found`. */
  deleteScheme(caller: Caller, schemeId: string): Promise<{ scheme_id: string; deleted: true }> {
    return this.run('delete_scheme', caller, schemeId, () => {
      this.authorizeCaller(caller, ['primary']);
      this.requireShare(schemeId);
      this.store.deleteScheme(schemeId);
      return { scheme_id: schemeId, deleted: true as const };
    });
  }
}
