/**
 * The coordinator of `ers backup`: asks every node of a key for its own part, checks each part's
 * proof and context, and assembles the package. It sees public data and ciphertexts only.
 */
import { LifeboatError } from '../errors.js';
import { fromB64, toB64 } from '../util/bytes.js';
import type { KeyNodeClient } from '../keynode/client.js';
import { encodeFrostPublic, frostGroupPublicKey, frostPublicFromJson, type FrostCurve, type FrostPublic } from '../keynode/frost/index.js';
import { type ErsPackage, type ErsPart, parsePart } from './format.js';
import { verifyPackage, type PackageReport, reportError } from './package.js';
import { verifyPartProof } from './proof.js';
import type { ErsPublicKey } from './rsa.js';

export interface BackupNode {
  client: KeyNodeClient;
  /** The key's id on that node. */
  keyId: string;
}

/**
 * Gathers one part from each node and returns the checked package and its report. Throws
 * LifeboatError `ers_nodes_disagree` (nodes answer different public packages), `ers_proof_invalid`
 * (a node's part does not verify: named by URL), the nodes' own refusals (`ers_disabled`,
 * `ers_key_not_whitelisted`, `key_id_not_exists`, `peer_unreachable`), and the first problem of the
 * package's verification (e.g. `ers_insufficient_parts`).
 */
export async function gatherPackage(nodes: BackupNode[], rsa: ErsPublicKey, label: string): Promise<{ pkg: ErsPackage; report: PackageReport }> {
  let curve: FrostCurve | undefined;
  let pub: FrostPublic | undefined;
  let publicBytes: Uint8Array | undefined;
  for (const n of nodes) {
    const info = await n.client.key(n.keyId);
    const parsed = frostPublicFromJson(info.public, { curve: info.curve });
    const bytes = encodeFrostPublic(parsed.curve, parsed.public);
    if (publicBytes && Buffer.compare(Buffer.from(bytes), Buffer.from(publicBytes)) !== 0) {
      throw new LifeboatError('ers_nodes_disagree', `key node at ${n.client.url} holds another public key package than the first node`, { hint: 'name the nodes of one key (URL#KEY_ID where a node holds it under another id)' });
    }
    curve = parsed.curve;
    pub = parsed.public;
    publicBytes = bytes;
  }
  const parts: ErsPart[] = [];
  for (const n of nodes) {
    const answer = await n.client.ersPart(n.keyId, { label, ers_public: toB64(rsa.spki) });
    const part = parsePart(fromB64(answer.part, 'part'), `the part from ${n.client.url}`);
    const fits = part.curve === curve && part.label === label && Buffer.compare(Buffer.from(part.groupKey), Buffer.from(pub!.commitments[0]!)) === 0;
    if (!fits || !verifyPartProof(part, rsa)) {
      throw new LifeboatError('ers_proof_invalid', `the part from key node at ${n.client.url} does not verify`, { safety: true, hint: 'that node encrypted something other than its share: investigate it before trusting any part it makes' });
    }
    if (parts.some((p) => p.identifier === part.identifier)) continue;
    parts.push(part);
  }
  const pkg: ErsPackage = { curve: curve!, label, spki: rsa.spki, publicPackage: publicBytes!, parts };
  const report = verifyPackage(pkg, { groupKey: frostGroupPublicKey(curve!, pub!), rsa, label });
  if (!report.ok) throw reportError(report);
  return { pkg, report };
}

/** One node's answer to the registration of the package. */
export interface Registration {
  url: string;
  ok: boolean;
  err_type?: string;
  message?: string;
}

/**
 * Registers the package with every node (each verifies it before it records it: what `ers.require`
 * and the key info go by). Never throws: each node's refusal is in its row.
 */
export async function registerWithNodes(nodes: BackupNode[], bytes: Uint8Array): Promise<Registration[]> {
  const body = { package: toB64(bytes) };
  return Promise.all(
    nodes.map(async (n) => {
      try {
        await n.client.ersPackage(n.keyId, body);
        return { url: n.client.url, ok: true };
      } catch (err) {
        const e = err as { code?: string; message?: string };
        return { url: n.client.url, ok: false, err_type: e.code ?? 'internal_error', message: e.message ?? String(err) };
      }
    }),
  );
}
