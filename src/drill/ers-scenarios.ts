/**
 * Worst day 3, "the company is gone" (docs/ers.md): a 2-of-3 key on three real `lifeboat node serve`
 * processes gets its emergency recovery package; then every node is destroyed (processes, stores,
 * vaults; this fleet has no backup service or vault elsewhere). The private key comes back from the
 * package and the RSA private key alone, with openssl doing every decryption, and signs a message that
 * a plain verifier accepts under the original group public key.
 */
import { rmSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { LifeboatError } from '../errors.js';
import { type FrostCurve, verifySignature } from '../keynode/frost/index.js';
import { createKey, type KeyRef } from '../keynode/sdk.js';
import { fromHex, utf8 } from '../util/bytes.js';
import { clientsOf, type KeyNodeFleet, serveNode, startFleet, stopNode } from './keynode-scenarios.js';
import { type RunningServer, runCli } from './proc.js';
import { expectOk, type Scenario } from './runner.js';

export interface ErsDrillContext {
  dir: string;
  servers: RunningServer[];
  fleet?: KeyNodeFleet;
  key?: KeyRef;
  pkg?: string;
}

const CURVE: FrostCurve = 'ed25519';

function check(ok: boolean, what: string): void {
  if (!ok) throw new LifeboatError('drill_check_failed', what);
}

export const ersScenarios: Scenario<ErsDrillContext>[] = [
  {
    name: 'the company is gone: a 2-of-3 key, its emergency recovery package verified from public data',
    async run(c) {
      const ers = join(c.dir, 'ers');
      const fleet = await startFleet(join(c.dir, 'fleet'), { failovers: false });
      c.servers.push(...fleet.servers);
      fleet.servers = c.servers;
      c.fleet = fleet;
      expectOk(await runCli(['ers', 'keygen', '--out', ers]), 'ers keygen');
      for (const n of fleet.primaries) {
        expectOk(await runCli(['node', 'config', 'set', 'ers.enabled', 'true', '--data-dir', n.dir]), `node config set ers.enabled (${n.name})`);
        expectOk(await runCli(['ers', 'whitelist', 'add', '--ers-public', `${ers}.pub`, '--label', 'customer escrow', '--data-dir', n.dir]), `ers whitelist add (${n.name})`);
        await stopNode(n);
        await serveNode(fleet, n);
      }
      c.key = await createKey(clientsOf(fleet.primaries, fleet.tokens.client), { threshold: 2, curve: CURVE });
      c.pkg = join(c.dir, 'key.ers');
      const nodes = fleet.primaries.map((n) => n.url).join(',');
      const env = { ...process.env, LIFEBOAT_API_KEY: fleet.tokens.client };
      expectOk(await runCli(['ers', 'backup', '--key', c.key.nodes[0]!.keyId, '--nodes', nodes, '--ers-public', `${ers}.pub`, '--out', c.pkg], { env, timeoutMs: 120_000 }), 'ers backup');
      expectOk(await runCli(['ers', 'verify', c.pkg, '--group-key', c.key.groupPublicKey, '--ers-public', `${ers}.pub`]), 'ers verify');
    },
  },
  {
    name: 'the company is gone: every node destroyed; the key recovered with openssl decryptions signs under the group key',
    async run(c) {
      if (!c.fleet || !c.key || !c.pkg) throw new LifeboatError('drill_check_failed', 'no package: an earlier scenario failed');
      for (const n of c.fleet.primaries) {
        await stopNode(n, 'SIGKILL');
        rmSync(n.dir, { recursive: true, force: true });
      }
      const ersKey = join(c.dir, 'ers.key');
      const haveOpenssl = spawnSync('openssl', ['version']).status === 0;
      const how = haveOpenssl ? ['--decrypt-cmd', `openssl pkeyutl -decrypt -inkey ${ersKey} -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256`] : ['--ers-private', ersKey];
      const keyFile = join(c.dir, 'recovered.json');
      expectOk(await runCli(['ers', 'recover', c.pkg, ...how, '--out', keyFile, '--json']), 'ers recover');
      const forms = JSON.parse(readFileSync(keyFile, 'utf8')) as { group_public_key?: string };
      check(forms.group_public_key === c.key.groupPublicKey, 'the recovered key is for another group key');
      const message = 'drill: signed after the company is gone';
      const r = expectOk(await runCli(['ers', 'sign', c.pkg, ...how, '--message-text', message, '--json']), 'ers sign');
      const sig = fromHex((JSON.parse(r.stdout) as { signature: string }).signature, 'signature');
      check(verifySignature(CURVE, sig, utf8.encode(message), fromHex(c.key.groupPublicKey, 'group key')), 'the signature of the recovered key does not verify under the group key');
      rmSync(keyFile, { force: true });
    },
  },
];
