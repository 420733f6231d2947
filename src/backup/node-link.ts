/**
 * Where a key node meets its backup service (docs/backup.md): the agent's transport over BackupClient,
 * setting a node up for backups, restoring one from the service, changing the account's password.
 */
import { InvalidInputError, LifeboatError } from '../errors.js';
import type { BackupConfig } from '../keynode/config.js';
import { backupConfigSchema, saveNodeConfig } from '../keynode/config.js';
import type { OpenedNode } from '../keynode/runtime.js';
import { identitySeeds, type NodeSecrets } from '../keynode/secrets.js';
import type { KeyNodeStore } from '../keynode/store/types.js';
import { identityFingerprint } from '../identity.js';
import { toHex, wipe } from '../util/bytes.js';
import { BackupAgent, type BackupAgentOptions, type BackupTransport, queueWholeState, resetBackupState } from './agent.js';
import type { StreamSecrets } from './changes.js';
import { BackupClient, type BackupClientOptions, type CompactionInfo } from './client.js';
import { CompactionUpload, downloadCompactionChunks } from './client-compaction.js';
import { disableTotp, enrolTotp, loginWallet, registerWallet, type TotpShown } from './client-wallet.js';
import type { WalletSigner } from './wallet.js';
import { assertRestorableDir, defaultStreamName, type RestoreProgressFn, type RestoreSource } from './restore.js';
import { planPoint, type PointRead, type RestorePoint } from './point.js';
import { checkStreamRestore, restoreStreamToNode } from './restore-stream.js';
import { randomBytes } from '../crypto/random.js';

/** Test knobs for the client (an injected fetch, fast OPAQUE stretching); production passes nothing. */
export type ClientTuning = Omit<BackupClientOptions, 'url'>;

/** An account's secret: a password (OPAQUE) or an Ethereum wallet (docs/backup.md, "Wallet accounts"). */
export type AccountSecret = { password: string; wallet?: undefined } | { wallet: WalletSigner; password?: undefined };

/**
 * Logs in with the account's secret (and its second factor's code, `totp`): the backup key (the
 * caller wipes it) and a login token. Throws what BackupClient.login and loginWallet throw.
 */
export function loginWith(client: BackupClient, account: string, secret: AccountSecret, opts: { restoreToken?: string; totp?: string } = {}): Promise<{ backupKey: Uint8Array; loginToken: string }> {
  return secret.wallet ? loginWallet(client, account, secret.wallet, { totp: opts.totp }) : client.login(account, secret.password, opts);
}

export function streamSecrets(s: NodeSecrets): StreamSecrets {
  return { identity: identitySeeds(s.identity), storageKey: s.storageKey, exportKey: s.exportKey, wrappingKey: s.wrapping.secretKey };
}

/** The agent's transport: a BackupClient holding a session proven with the backup key. */
export function clientTransport(client: BackupClient, account: string, backupKey: Uint8Array): BackupTransport {
  let ready: Promise<unknown> | undefined;
  const session = () => {
    ready ??= client.session(account, backupKey).catch((err: unknown) => {
      ready = undefined;
      throw err;
    });
    return ready;
  };
  return {
    async head(stream) {
      await session();
      const s = await client.getStream(stream);
      return s ? { headSeq: s.headSeq, headHash: s.headHash } : undefined;
    },
    async append(stream, entries) {
      await session();
      return client.appendEntries(stream, entries);
    },
    async beginCompaction(stream, seq) {
      await session();
      const upload = await CompactionUpload.begin(client, stream, seq);
      return { write: (bytes) => upload.write(bytes), finish: async () => void (await upload.finish()) };
    },
  };
}

/** A restore's source: the same client, after the session. A compaction is read only as the service named it (`stream()`, `compactions()`), chunk by chunk. */
export function clientSource(client: BackupClient): RestoreSource {
  let named: CompactionInfo | null = null;
  const listed = new Map<number, CompactionInfo>();
  const ref = (c: CompactionInfo) => ({ seq: c.seq, hash: c.hash, size: c.size, completedAt: c.completedAt });
  return {
    async stream(stream) {
      const s = await client.getStream(stream);
      if (!s) throw new LifeboatError('stream_not_found', `the backup service has no stream ${stream}`, { status: 404 });
      named = s.compaction;
      return { headSeq: s.headSeq, headHash: s.headHash, firstSeq: s.firstSeq, compaction: s.compaction ? ref(s.compaction) : null };
    },
    async compactions(stream) {
      const all = await client.listCompactions(stream);
      for (const c of all) listed.set(c.seq, c);
      return all.map(ref);
    },
    compactionChunks(stream, r, onBytes) {
      // Only a compaction the service named (stream() or compactions()): its id and chunk count are the service's.
      const c = named?.seq === r.seq ? named : listed.get(r.seq);
      if (!c) throw new LifeboatError('backup_chain_broken', `no compaction at entry ${r.seq} was named for this stream`, { status: 409 });
      return downloadCompactionChunks(client, stream, c, onBytes);
    },
    async entries(stream, afterSeq, limit) {
      return (await client.listEntries(stream, afterSeq, limit)).map((e) => e.bytes);
    },
  };
}

/** The agent of a node whose configuration names a backup service. */
export function createBackupAgent(store: KeyNodeStore, secrets: NodeSecrets, cfg: BackupConfig, opts: { log?: (line: string) => void; transport?: BackupTransport; tuning?: ClientTuning; durable?: BackupAgentOptions['durable'] } = {}): BackupAgent {
  const transport = opts.transport ?? clientTransport(new BackupClient({ url: cfg.server, ...opts.tuning }), cfg.account, secrets.backupKey);
  return new BackupAgent({
    store,
    backupKey: secrets.backupKey,
    secrets: () => streamSecrets(secrets),
    stream: cfg.stream,
    transport,
    batchEntries: cfg.batch_entries,
    compactEntries: cfg.compact_entries,
    compactSeconds: cfg.compact_seconds,
    log: opts.log,
    durable: opts.durable,
  });
}

/**
 * Registers the node's account (OPAQUE, with the operator's invite) and makes its restore token (shown
 * once: it goes with the password; null, with the error's code in `restoreTokenError`, when that
 * failed after the registration, which then still completes), then, in one store transaction, turns journaling on and queues the
 * node keys and every existing key and API key as the stream's first entries; then writes the backup
 * section of node.json. Throws the client's errors (`invalid_invite`, ...) before anything local
 * changes, and ConflictError `backup_configured`.
 */
export async function setupNodeBackup(
  n: OpenedNode,
  opts: { server: string; account: string; invite: string; stream?: string; usableBeforeAck: boolean; tuning?: ClientTuning; progress?: (line: string) => void } & AccountSecret,
): Promise<{ server: string; account: string; stream: string; queued: number; restoreToken: string | null; restoreTokenError?: string }> {
  if (n.config.backup) {
    throw new LifeboatError('backup_configured', `this node already streams to ${n.config.backup.server} as ${n.config.backup.account}`, {
      status: 409,
      hint: 'edit or remove the backup section of node.json to move it',
    });
  }
  const stream = opts.stream ?? defaultStreamName(identityFingerprint(n.secrets.identity));
  const cfg = backupConfigSchema.parse({ server: opts.server, account: opts.account, stream, usable_before_ack: opts.usableBeforeAck });
  const client = new BackupClient({ url: opts.server, ...opts.tuning });
  if (opts.wallet) await registerWallet(client, opts.account, opts.invite, opts.wallet, n.secrets.backupKey);
  else await client.register(opts.account, opts.invite, opts.password, n.secrets.backupKey);
  // The invite is spent now: a restore token that cannot be made (service busy, connection lost) must
  // not abort the set-up, or the operator is left with a registered account and an unconfigured node.
  // `node backup-restore-token` makes it later.
  let restoreToken: string | null = null;
  let restoreTokenError: string | undefined;
  try {
    restoreToken = await makeRestoreToken(client, opts.account, n.secrets.backupKey);
  } catch (err) {
    if (!(err instanceof LifeboatError)) throw err;
    restoreTokenError = err.code;
  }
  opts.progress?.(`account ${opts.account} registered; queueing the node's state`);
  const queued = await n.store.transaction(async (tx) => {
    await tx.setMeta('backup_journal', 'on');
    return queueWholeState(tx, Date.now());
  });
  saveNodeConfig(n.paths, { ...n.config, backup: cfg });
  return { server: opts.server, account: opts.account, stream, queued, restoreToken, ...(restoreTokenError ? { restoreTokenError } : {}) };
}

/** A new restore token, made under a session proven with the backup key (no password needed). */
async function makeRestoreToken(client: BackupClient, account: string, backupKey: Uint8Array): Promise<string> {
  await client.session(account, backupKey);
  try {
    return await client.createRestoreToken();
  } finally {
    client.endSession();
  }
}

/**
 * Makes a new restore token for the account this node streams to, replacing the earlier one (lost, or
 * an account set up before restore tokens). Throws InvalidInputError `backup_not_configured`, and the
 * client's errors (`auth_failed`, `peer_unreachable`).
 */
export async function renewRestoreToken(n: OpenedNode, tuning?: ClientTuning): Promise<{ server: string; account: string; restoreToken: string }> {
  const cfg = n.config.backup;
  if (!cfg) throw new InvalidInputError('this node has no backup service', { code: 'backup_not_configured', hint: 'run `lifeboat node backup-setup` first' });
  const restoreToken = await makeRestoreToken(new BackupClient({ url: cfg.server, ...tuning }), cfg.account, n.secrets.backupKey);
  return { server: cfg.server, account: cfg.account, restoreToken };
}

/**
 * Moves a node that already streams to a new stream of the same account, starting from its whole
 * state (after `backup_rollback_detected`: the old stream lost acknowledged entries). Entries sealed
 * for the old stream are dropped; unsealed changes and the whole state go to the new one. Restart
 * `node serve` afterwards. Throws InvalidInputError `backup_not_configured`, `same_stream`.
 */
export async function restartBackupStream(n: OpenedNode, stream: string): Promise<{ server: string; account: string; stream: string; queued: number; dropped: number }> {
  const cfg = n.config.backup;
  if (!cfg) throw new InvalidInputError('this node has no backup service', { code: 'backup_not_configured', hint: 'run `lifeboat node backup-setup` first' });
  if (stream === cfg.stream) throw new InvalidInputError(`the node already streams to ${stream}`, { code: 'same_stream', hint: 'name a new stream' });
  const next = backupConfigSchema.parse({ ...cfg, stream });
  const r = await n.store.transaction(async (tx) => {
    const dropped = await resetBackupState(tx, Date.now());
    return { dropped, queued: await queueWholeState(tx, Date.now()) };
  });
  saveNodeConfig(n.paths, { ...n.config, backup: next });
  return { server: cfg.server, account: cfg.account, stream, ...r };
}

/** How to reach an account's stream: the service, the account and its secret, the second factor. */
export type StreamAccess = {
  server: string;
  account: string;
  restoreToken?: string;
  /** The second factor's code (or a recovery code), when the account has one. */
  totp?: string;
  /** The stream (default: the account's only one). */
  stream?: string;
  tuning?: ClientTuning;
} & AccountSecret;

/**
 * Logs in (OPAQUE or the wallet), unwraps the backup key, proves it, picks the stream and runs `fn`;
 * the session ends and the key is wiped whatever happens. Throws LifeboatError `login_failed` (wrong
 * account or password), `restore_token_invalid`, `rate_limited`, `stream_not_found`,
 * `ambiguous_stream` (several streams and no `stream`), and what `fn` throws.
 */
export async function withStreamSession<T>(opts: StreamAccess, fn: (s: { client: BackupClient; backupKey: Uint8Array; stream: string }) => Promise<T>): Promise<T> {
  // A restore or a check goes on for long after its login: the stretching's memory must not stay.
  const client = new BackupClient({ url: opts.server, stretchApart: true, ...opts.tuning });
  const { backupKey } = await loginWith(client, opts.account, opts, { restoreToken: opts.restoreToken, totp: opts.totp });
  try {
    await client.session(opts.account, backupKey);
    let stream = opts.stream;
    if (stream === undefined) {
      const streams = await client.listStreams();
      if (streams.length === 0) throw new LifeboatError('stream_not_found', `account ${opts.account} has no stream on the backup service`, { status: 404 });
      if (streams.length > 1) {
        throw new InvalidInputError(`account ${opts.account} has ${streams.length} streams: ${streams.map((s) => s.stream).join(', ')}`, {
          code: 'ambiguous_stream',
          hint: 'name one with --stream',
        });
      }
      stream = streams[0]!.stream;
    }
    return await fn({ client, backupKey, stream });
  } finally {
    client.endSession();
    wipe(backupKey);
  }
}

export interface RestoredFromService {
  fingerprint: string;
  stream: string;
  keys: number;
  apiKeys: number;
  /** The entry the node was rebuilt up to (the point of a point-in-time restore). */
  headSeq: number;
  /** The stream's head on the service. */
  streamHeadSeq: number;
  compactionSeq: number;
  entries: number;
  /** When the last entry replayed was committed (ISO 8601), when known. */
  committedAt: string | null;
  /** The stream the restored node goes on streaming to (a new one after a point before the head). */
  streamsTo: string;
  dryRun: boolean;
  epoch: number | null;
  store: string | null;
}

/**
 * Rebuilds a node in `dir` from the service with the account's password only: log in (OPAQUE), unwrap
 * the backup key, prove it, read and check the stream (up to `point`, when given: ./point.ts), check
 * every share, write the node. The restore is streamed (./restore-stream.ts), to the head or to a
 * point: keys are checked and imported as they are read, and committed once everything read passed
 * its checks; entries after a point are never applied. A node restored to a point before the head
 * streams to a new stream (`<stream>.at-<seq>-<random>`) from its whole state. With `dryRun` every
 * download and check is done, in the same bounded batches, and nothing is written (`dir` is not
 * touched). With the account's `restoreToken` the login gets past a flood of anonymous logins.
 * Throws what withStreamSession, planPoint, restoreStreamToNode and checkStreamRestore throw; nothing
 * is written on any error.
 */
export async function restoreFromService(opts: StreamAccess & { expectSeq?: number; point?: RestorePoint; dryRun?: boolean; dir: string; store?: string; progress?: RestoreProgressFn }): Promise<RestoredFromService> {
  // Before the login: a refusal should not cost the OPAQUE work.
  if (!opts.dryRun) assertRestorableDir(opts.dir, opts.store);
  return withStreamSession(opts, async ({ client, backupKey, stream }) => {
    const source = clientSource(client);
    // A point is resolved first (its errors come before anything is read into a node); the head is read as the service states it then.
    const point = opts.point ? await planPoint(source, backupKey, stream, opts.point, opts.expectSeq) : undefined;
    const seen = { expectSeq: opts.expectSeq, point, progress: opts.progress };
    const fork = point !== undefined && point.at.seq < point.info.headSeq;
    const streamsTo = point && fork ? forkStreamName(stream, point.at.seq) : stream;
    if (opts.dryRun) {
      const r = await checkStreamRestore(source, backupKey, stream, seen);
      return { ...restoredAt(stream, r, point?.info.headSeq ?? r.head.seq, streamsTo), fingerprint: r.fingerprint, keys: r.keys, apiKeys: r.apiKeys, dryRun: true, epoch: null, store: null };
    }
    const backup = backupConfigSchema.parse({ server: opts.server, account: opts.account, stream: streamsTo });
    const r = await restoreStreamToNode(source, backupKey, stream, opts.dir, { ...seen, backup, store: opts.store, ...(fork ? { fork: { from: stream } } : {}) });
    return { ...restoredAt(stream, r, point?.info.headSeq ?? r.head.seq, streamsTo), fingerprint: r.fingerprint, keys: r.keys, apiKeys: r.apiKeys, dryRun: false, epoch: r.epoch, store: r.store };
  });
}

/** Where a restore read up to, as RestoredFromService reports it. */
function restoredAt(stream: string, r: PointRead, streamHeadSeq: number, streamsTo: string) {
  return { stream, headSeq: r.head.seq, streamHeadSeq, compactionSeq: r.compactionSeq, entries: r.entries, committedAt: r.committedAt, streamsTo };
}

/** The stream a node restored to entry `seq` of `stream` goes on with: new, so the two histories never mix. */
export function forkStreamName(stream: string, seq: number): string {
  const tail = `.at-${seq}-${toHex(randomBytes(3))}`;
  return `${stream.slice(0, 64 - tail.length)}${tail}`;
}

/** Changes the account's password; the backup key is re-wrapped under the new export key. */
export async function changeBackupPassword(opts: { server: string; account: string; oldPassword: string; newPassword: string; totp?: string; tuning?: ClientTuning }): Promise<void> {
  await new BackupClient({ url: opts.server, ...opts.tuning }).changePassword(opts.account, opts.oldPassword, opts.newPassword, opts.totp);
}

/**
 * Enrols (or, with `disable`, removes) the account's second factor: a login with its secret (and the
 * current code when it has one), then the service makes a TOTP secret and ten recovery codes, shown
 * once. Throws what loginWith throws.
 */
export async function setBackupTotp(opts: { server: string; account: string; totp?: string; disable?: boolean; tuning?: ClientTuning } & AccountSecret): Promise<TotpShown | null> {
  const client = new BackupClient({ url: opts.server, ...opts.tuning });
  const { backupKey, loginToken } = await loginWith(client, opts.account, opts, { totp: opts.totp });
  wipe(backupKey);
  if (opts.disable) {
    await disableTotp(client, opts.account, loginToken);
    return null;
  }
  return enrolTotp(client, opts.account, loginToken);
}
