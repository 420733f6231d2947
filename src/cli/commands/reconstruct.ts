/**
 * `lifeboat recovery reconstruct` (rebuild a primary on a new machine from t shares in any mix) and
 * `lifeboat recovery request` (a signed release request for an air-gapped holder).
 */
import type { Command } from 'commander';
import { generateBoxKeyPair } from '../../crypto/sealedbox.js';
import { InvalidInputError, LifeboatError, NotFoundError } from '../../errors.js';
import { encodePublicIdentity, identityFingerprint, loadIdentity, parsePublicIdentity } from '../../identity.js';
import { primaryPaths, resolveDataDir } from '../../primary/datadir.js';
import { acceptReleaseResponse, type CheckedShare, checkShareAgainstManifest } from '../../recovery/collect.js';
import { type ConfirmedHolder, confirmHolder, type HolderSpec, parseHolderSpec } from '../../recovery/holders.js';
import type { Manifest } from '../../recovery/manifest.js';
import { dropPendingRelease, loadPendingRelease, savePendingRelease } from '../../recovery/pending.js';
import { enrolFix, enrolPrimary, type NotEnrolled } from '../../recovery/enrol.js';
import { confirmReachable, reconstruct } from '../../recovery/reconstruct.js';
import { createReleaseRequest, parseReleaseResponse } from '../../recovery/release.js';
import { manifestHolders } from '../../recovery/rotate.js';
import { fetchManifest, fetchVaultCopies, readManifestFile } from '../../recovery/sources.js';
import { readVaultHeader } from '../../vault/format.js';
import { fromHex, utf8 } from '../../util/bytes.js';
import { readFileOrThrow, writeFileAtomic } from '../../util/files.js';
import { createOutput } from '../io.js';
import { addOperatorPassphraseOption, loadOperatorKey, OPERATOR_PASSPHRASE_PROMPT } from './operator-key.js';
import { promptSecret, promptsHelp } from '../input.js';
import { collect, DATA_DIR_HELP, intIn } from '../options.js';
import { readTypedShares } from './primary.js';
import { readShareQrFiles } from './recovery-sheet.js';

function readJsonFile(path: string, what: string): unknown {
  try {
    return JSON.parse(utf8.decode(readFileOrThrow(path, what)));
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    throw new InvalidInputError(`${path} is not JSON`, { code: 'malformed' });
  }
}

interface ReconstructOpts {
  operatorKey: string;
  operatorPassphraseFd?: number;
  holder: string[];
  allHolders?: boolean;
  typedShares: number;
  shareQr: string[];
  releaseResponse: string[];
  manifest?: string;
  vault?: string;
  scheme?: string;
  passphrase?: boolean;
  primaryFingerprint?: string;
  dataDir?: string;
  json?: boolean;
}

export function registerReconstructCommands(recovery: Command): void {
  registerReconstruct(recovery);
  registerRecoveryEnrol(recovery);
  registerReleaseRequest(recovery);
}

/** `recovery reconstruct` (also in the recovery kit, src/kit). */
export function registerReconstruct(recovery: Command): void {
  const cmd = recovery
    .command('reconstruct')
    .description('rebuild the primary on a new machine from any t shares: holder releases and typed shares, in any mix')
    .requiredOption('--operator-key <file>', 'operator identity file (signs the release requests and the enrolment)')
    .option('--holder <url#fingerprint>', 'ask this holder to release its share (repeat)', collect, [])
    .option('--all-holders', 'also ask every other holder the manifest lists')
    .option('--typed-shares <n>', 'number of shares to type (hidden prompt, or stdin lines)', intIn(0, 16), 0)
    .option('--share-qr <file>', 'a share from a QR code image (PNG), e.g. a scan of the recovery sheet (repeat)', collect, [])
    .option('--release-response <file>', 'a response from an air-gapped holder (repeat)', collect, [])
    .option('--manifest <file>', 'recovery manifest (default: fetched from the holders)')
    .option('--vault <file>', 'a vault backup, used when it is the newest copy that opens (the holders\' copies are always asked too)')
    .option('--scheme <id>', 'scheme to recover when a holder has several')
    .option('--primary-fingerprint <fp>', 'refuse a manifest not signed by the lost primary with this fingerprint (written with the offline share)')
    .option('--passphrase', 'the shares were made with a SLIP-0039 passphrase (prompted)')
    .option('--data-dir <dir>', `${DATA_DIR_HELP}; must not hold a vault yet`)
    .option('--json', 'print JSON');
  addOperatorPassphraseOption(cmd)
    .addHelpText('after', promptsHelp([OPERATOR_PASSPHRASE_PROMPT, 'with --typed-shares N: share 1 (its words), then share 2, … up to N', 'with --passphrase: the SLIP-0039 passphrase']))
    .action(async (o: ReconstructOpts) => {
      const out = createOutput({ quiet: o.json });
      const paths = primaryPaths(resolveDataDir(o.dataDir));
      const operator = await loadOperatorKey(o.operatorKey, o.operatorPassphraseFd);
      // The images are read first: a scan that does not decode fails before any holder is asked.
      const scanned = await readShareQrFiles(o.shareQr);
      let holders = await confirmReachable(o.holder.map(parseHolderSpec), operator, out.warn);
      let manifest: Manifest;
      if (o.manifest) manifest = readManifestFile(o.manifest);
      else if (holders.length) manifest = await fetchManifest(holders, o.scheme);
      else throw new InvalidInputError('no manifest: no holder was reachable and --manifest was not given', { hint: 'give --manifest FILE or a reachable --holder URL#FINGERPRINT' });
      const signedBy = identityFingerprint(parsePublicIdentity(manifest.primary));
      if (o.primaryFingerprint && signedBy !== o.primaryFingerprint.toLowerCase()) {
        throw new LifeboatError('primary_mismatch', `the manifest is signed by primary ${signedBy}, not ${o.primaryFingerprint}`, {
          safety: true,
          hint: 'a holder served a manifest of another primary: it may be compromised; ask another holder or pass the manifest you kept with --manifest',
        });
      }
      out.info(`recovery scheme ${manifest.scheme_id}: ${manifest.threshold} of ${manifest.share_count} shares needed (manifest signed by primary ${signedBy})`);
      const members = new Set(manifest.members.map((m) => m.fingerprint));
      holders = holders.filter((h: ConfirmedHolder) => members.has(h.fingerprint) || (out.warn(`holder ${h.url} is not a member of scheme ${manifest.scheme_id}; not asked`), false));
      // Every holder of the manifest is asked for its vault copy (a holder that was down during a write
      // has an older one) and enrolled with; only the named ones (or all, with --all-holders) release.
      const named = new Set(holders.map((h) => h.fingerprint));
      const others = await confirmReachable(manifestHolders(manifest).filter((s) => !named.has(s.fingerprint)), operator, out.warn);
      const reachable = holders.concat(others);
      const unreachableSpecs = manifestHolders(manifest).filter((s) => !reachable.some((h) => h.fingerprint === s.fingerprint));
      const unreachable = unreachableSpecs.map((s) => s.url);
      if (o.allHolders) holders = reachable;
      const vaults = await fetchVaultCopies(reachable, manifest, out.warn);
      if (o.vault) {
        const bytes = readFileOrThrow(o.vault, 'vault backup');
        vaults.push({ bytes, generation: readVaultHeader(bytes).generation, source: `file ${o.vault}` });
      }
      if (vaults.length === 0) throw new NotFoundError('no holder has a copy of the vault', 'vault_not_found', 'pass a vault backup with --vault FILE');
      const released: CheckedShare[] = [];
      for (const file of o.releaseResponse) {
        const response = parseReleaseResponse(readJsonFile(file, 'release response'));
        released.push(acceptReleaseResponse(manifest, response, loadPendingRelease(paths.dir, response.request_id), `response file ${file}`));
      }
      scanned.forEach((words, i) => released.push(checkShareAgainstManifest(manifest, words, `qr image ${o.shareQr[i]}`)));
      const typed = await readTypedShares(o.typedShares);
      const passphrase = o.passphrase ? await promptSecret('SLIP-0039 passphrase') : undefined;
      const r = await reconstruct({ paths, operator, manifest, vaults, holders, enrolOn: reachable, typed, released, passphrase, unboundOk: Boolean(o.primaryFingerprint), progress: out.info });
      for (const file of o.releaseResponse) dropPendingRelease(paths.dir, parseReleaseResponse(readJsonFile(file, 'release response')).request_id);
      // A holder that could not be reached is not enrolled either: name each, with the commands that fix it.
      const fixOpts = { primary: r.primary, operatorKey: o.operatorKey, dataDir: paths.dir };
      const notEnrolled = [...r.notEnrolled.map((f) => enrolFix(f.holder, f.code, fixOpts)), ...unreachableSpecs.map((h) => enrolFix(h, 'peer_unreachable', fixOpts))];
      for (const f of notEnrolled) out.warn(`new primary not enrolled on ${f.url} (${f.reason}); on that holder run \`${f.on_holder}\``);
      for (const f of r.rejected) out.warn(`vault copy not used: ${f}`);
      for (const u of unreachable) {
        out.warn(`holder ${u} could not be asked: it may hold a vault newer than generation ${r.vaultGeneration}; when it is back, enrol the new primary there, then run \`lifeboat recovery sync\` here (it merges what that holder has with --merge if the vault forked)`);
      }
      if (o.json) {
        out.json({
          ok: true,
          scheme_id: r.schemeId,
          entries: r.entries,
          vault_generation: r.vaultGeneration,
          vault_from: r.vaultFrom,
          vault_copies_rejected: r.rejected,
          unreachable_holders: unreachable,
          shares_from: r.sharesFrom,
          primary: r.primary,
          enrolled: r.enrolled,
          not_enrolled: notEnrolled,
          data_dir: paths.dir,
        });
      } else {
        out.out(`reconstructed: vault of scheme ${r.schemeId} opens (${r.entries} entries, generation ${r.vaultGeneration} from ${r.vaultFrom}) in ${paths.dir}`);
        out.out(`shares from: ${r.sharesFrom.join(', ')}`);
        if (unreachable.length) out.out(`not asked (unreachable): ${unreachable.join(', ')}: one of them may hold a newer vault`);
        out.out(`new primary: ${r.primary}`);
        if (notEnrolled.length) out.out(`not enrolled with the new primary (${notEnrolled.length} holder${notEnrolled.length > 1 ? 's' : ''}); fix each with either command:`);
        for (const f of notEnrolled) {
          out.out(`  ${f.url}#${f.fingerprint} (${f.reason})`);
          out.out(`    on that holder:  ${f.on_holder}`);
          out.out(`    or from here:    ${f.from_here}`);
        }
        out.out('next: run `lifeboat recovery rotate`: the shares used today have left their safekeeping');
      }
    });
}

/** `recovery enrol` (not in the recovery kit: it asks holders over the network). */
function registerRecoveryEnrol(recovery: Command): void {
  const cmd = recovery
    .command('enrol')
    .description('enrol the new primary (this data directory’s identity) with holders that missed it at reconstruct, signed by an operator (POST /v1/enrol)')
    .requiredOption('--operator-key <file>', 'operator identity file (an operator enrolled on the holders)')
    .requiredOption('--holder <url#fingerprint>', 'a holder to enrol the primary with (repeat)', collect, [])
    .option('--primary <lb1>', 'the primary identity to enrol (default: the identity in --data-dir)')
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--json', 'print JSON');
  addOperatorPassphraseOption(cmd)
    .addHelpText('after', promptsHelp([OPERATOR_PASSPHRASE_PROMPT]))
    .action(async (o: { operatorKey: string; operatorPassphraseFd?: number; holder: string[]; primary?: string; dataDir?: string; json?: boolean }) => {
      const paths = primaryPaths(resolveDataDir(o.dataDir));
      const specs: HolderSpec[] = o.holder.map(parseHolderSpec);
      if (specs.length === 0) throw new InvalidInputError('no holder given', { hint: 'pass --holder URL#FINGERPRINT (repeat), as `recovery reconstruct` printed them' });
      const operator = await loadOperatorKey(o.operatorKey, o.operatorPassphraseFd);
      const primary = o.primary ? encodePublicIdentity(parsePublicIdentity(o.primary, '--primary')) : encodePublicIdentity(loadIdentity(paths.identity, 'primary'));
      const confirmed: ConfirmedHolder[] = [];
      const failed: { holder: HolderSpec; code: string }[] = [];
      for (const spec of specs) {
        try {
          confirmed.push(await confirmHolder(spec, operator));
        } catch (err) {
          if (err instanceof LifeboatError && err.code === 'peer_identity_mismatch') throw err;
          failed.push({ holder: spec, code: err instanceof LifeboatError ? err.code : 'internal_error' });
        }
      }
      const r = await enrolPrimary(confirmed, primary);
      const fixes: NotEnrolled[] = [...failed, ...r.failed].map((f) => enrolFix(f.holder, f.code, { primary, operatorKey: o.operatorKey, dataDir: paths.dir }));
      const fp = identityFingerprint(parsePublicIdentity(primary));
      if (fixes.length) {
        throw new LifeboatError('enrol_incomplete', `primary ${fp} not enrolled on ${fixes.map((f) => `${f.url} (${f.reason})`).join(', ')}${r.enrolled.length ? `; enrolled on ${r.enrolled.map((h) => h.url).join(', ')}` : ''}`, {
          hint: fixes.map((f) => `on ${f.url} run \`${f.on_holder}\``).join('; '),
        });
      }
      const out = createOutput();
      if (o.json) return out.json({ ok: true, primary, fingerprint: fp, enrolled: r.enrolled.map((h) => ({ url: h.url, fingerprint: h.fingerprint })) });
      for (const h of r.enrolled) out.out(`primary ${fp} enrolled on ${h.url}#${h.fingerprint}`);
    });
}

/** `recovery request` (also in the recovery kit: the air-gapped holder's request is made where the primary is rebuilt). */
export function registerReleaseRequest(recovery: Command): void {
  const cmd = recovery
    .command('request')
    .description('write a signed release request for an air-gapped holder (`lifeboat holder release` answers it)')
    .requiredOption('--operator-key <file>', 'operator identity file that signs the request')
    .requiredOption('--scheme <id>', 'recovery scheme id (from the manifest)')
    .requiredOption('--holder-fingerprint <fp>', 'fingerprint of the holder that is to answer')
    .requiredOption('--out <file>', 'where to write the request (public; carry it to the holder)')
    .option('--ttl-minutes <m>', 'validity, at most 15 minutes', intIn(1, 15), 15)
    .option('--data-dir <dir>', `${DATA_DIR_HELP}; keeps the one-time key until the response comes back`)
    .option('--json', 'print JSON');
  addOperatorPassphraseOption(cmd)
    .addHelpText('after', promptsHelp([OPERATOR_PASSPHRASE_PROMPT]))
    .action(async (o: { operatorKey: string; operatorPassphraseFd?: number; scheme: string; holderFingerprint: string; out: string; ttlMinutes: number; dataDir?: string; json?: boolean }) => {
      const out = createOutput({ quiet: o.json });
      const operator = await loadOperatorKey(o.operatorKey, o.operatorPassphraseFd);
      const oneTime = generateBoxKeyPair();
      const fingerprint = parseHolderSpec(`http://x#${o.holderFingerprint}`).fingerprint;
      const request = createReleaseRequest({ signer: operator, schemeId: fromHex(o.scheme, 'scheme id', 16), holderFingerprint: fingerprint, purpose: 'reconstruct', requesterPublicKey: oneTime.publicKey, ttlMs: o.ttlMinutes * 60_000 });
      const dir = resolveDataDir(o.dataDir);
      savePendingRelease(dir, request.request_id, oneTime);
      writeFileAtomic(o.out, `${JSON.stringify(request, null, 2)}\n`, 0o644);
      if (o.json) out.json({ ok: true, request_id: request.request_id, expires_at: new Date(request.expires_at).toISOString(), file: o.out });
      else out.out(`release request ${request.request_id} written to ${o.out}; valid until ${new Date(request.expires_at).toISOString()}`);
    });
}
