/**
 * The worst day for a node whose backup account is secured by an Ethereum wallet and a TOTP second
 * factor (docs/backup.md, "Wallet accounts", "Second factor"), with real processes on loopback: the
 * operator adds the account with `backup-server account add --totp` (the TOTP URI and recovery codes
 * go to a descriptor, as they would go to the owner), the node is set up with `node backup-setup
 * --wallet-key-file`, a 2-of-2 key is made with a second node, and the node is destroyed with its
 * disk. A restore with the wallet but without a code is refused and writes nothing; with the wallet
 * and a code the node comes back as itself and signs.
 */
import { rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { base32nopad } from '@scure/base';
import { randomBytes } from '../crypto/random.js';
import { LifeboatError } from '../errors.js';
import { newApiKey } from '../keynode/apikeys.js';
import type { KeyRef } from '../keynode/sdk.js';
import { toHex } from '../util/bytes.js';
import { writeFileAtomic } from '../util/files.js';
import { totp } from '../backup/totp.js';
import { type BackupServiceProc, createKeyReporting, serveBackupService, setUpNodeBackupWith, waitForActive } from './backup-scenarios.js';
import { clientsOf, createFleetNode, type KeyNodeFleet, serveNode, signAndCheck, stopNode } from './keynode-scenarios.js';
import { type RunningServer, runCli } from './proc.js';
import { expectOk, type Scenario } from './runner.js';

export interface WalletDrillContext {
  dir: string;
  servers: RunningServer[];
  service?: BackupServiceProc;
  fleet?: KeyNodeFleet;
  /** The wallet's key file (0600) and the account's TOTP secret; never printed. */
  walletKeyFile?: string;
  totpSecret?: Uint8Array;
  key?: KeyRef;
}

const ACCOUNT = 'acct-wallet';

function check(ok: boolean, what: string): void {
  if (!ok) throw new LifeboatError('drill_check_failed', what);
}

function ready(c: WalletDrillContext): Required<Pick<WalletDrillContext, 'service' | 'fleet' | 'walletKeyFile' | 'totpSecret' | 'key'>> {
  if (!c.service || !c.fleet || !c.walletKeyFile || !c.totpSecret || !c.key) throw new LifeboatError('drill_check_failed', 'no wallet-backed node: an earlier scenario failed');
  return { service: c.service, fleet: c.fleet, walletKeyFile: c.walletKeyFile, totpSecret: c.totpSecret, key: c.key };
}

export const walletScenarios: Scenario<WalletDrillContext>[] = [
  {
    name: 'wallet backups: a node backed up under an Ethereum wallet with a TOTP second factor, and a 2-of-2 key with a second node',
    async run(c) {
      const service = await serveBackupService(c.servers, { dir: join(c.dir, 'service'), url: '', server: undefined });
      c.service = service;
      const add = expectOk(await runCli(['backup-server', 'account', 'add', ACCOUNT, '--totp', '--secret-fd', '3', '--data-dir', service.dir, '--json'], { secretFd: true }), 'backup-server account add --totp');
      const invite = (JSON.parse(add.stdout) as { invite: string }).invite;
      const uri = /otpauth:\/\/totp\/\S+/.exec(add.secret)?.[0];
      check(uri !== undefined, 'account add --totp showed no otpauth:// URI');
      c.totpSecret = base32nopad.decode(new URL(uri!).searchParams.get('secret')!);
      c.walletKeyFile = join(c.dir, 'wallet.key');
      writeFileAtomic(c.walletKeyFile, `0x${toHex(randomBytes(32))}\n`);
      const tokens = { client: newApiKey('client', 'drill client').token, operator: newApiKey('operator', 'drill operator').token };
      const fleet: KeyNodeFleet = { dir: c.dir, servers: c.servers, tokens, primaries: [], failovers: [] };
      const [a, b] = await Promise.all([createFleetNode(c.dir, 'node-w', tokens), createFleetNode(c.dir, 'node-x', tokens)]);
      await setUpNodeBackupWith(a!.dir, ['--backup-server', service.url, '--account', ACCOUNT, '--wallet-key-file', c.walletKeyFile], `${invite}\n`, { wait_ms: 1500 });
      fleet.primaries = await Promise.all([serveNode(fleet, a!), serveNode(fleet, b!)]);
      c.fleet = fleet;
      const { key } = await createKeyReporting(fleet.primaries, tokens.client, { threshold: 2, curve: 'ed25519' });
      await waitForActive(key, tokens.client);
      await signAndCheck(key, clientsOf(fleet.primaries, tokens.client), 'drill: before the loss (wallet)');
      c.key = key;
    },
  },
  {
    name: 'wallet backups: the node destroyed; a restore with the wallet but no code is refused, with the wallet and a code it comes back and signs',
    async run(c) {
      const { service, fleet, walletKeyFile, totpSecret, key } = ready(c);
      const node = fleet.primaries[0]!;
      await stopNode(node, 'SIGKILL');
      rmSync(node.dir, { recursive: true, force: true });
      const args = ['node', 'restore', '--backup-server', service.url, '--account', ACCOUNT, '--wallet-key-file', walletKeyFile, '--data-dir', node.dir, '--json'];
      const refused = await runCli(args);
      const errType = refused.code === 0 ? 'none' : (JSON.parse(refused.stdout) as { err_type?: string }).err_type;
      check(errType === 'totp_required', `a restore without the code answered ${errType}, not totp_required`);
      check(!existsSync(node.dir), 'a refused restore wrote the node directory');
      const r = JSON.parse(expectOk(await runCli([...args, '--totp'], { input: `${totp(totpSecret, Date.now())}\n` }), 'node restore --wallet --totp').stdout) as { fingerprint: string; keys: number };
      check(r.fingerprint === node.fingerprint, `the restored node is ${r.fingerprint}, not ${node.fingerprint}`);
      check(r.keys >= 1, `the restore brought back ${r.keys} keys`);
      await serveNode(fleet, node);
      await waitForActive(key, fleet.tokens.client, 20_000);
      await signAndCheck(key, clientsOf(fleet.primaries, fleet.tokens.client), 'drill: after the restore with the wallet and a code');
    },
  },
];
