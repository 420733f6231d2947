/**
 * The coverage report (docs/coverage.md, "Verdicts"): from what the parts answered, per key its
 * members, each member's recovery paths and their state, whether it survives the loss of any one node
 * and of any t-1 nodes, and a verdict. Pure: no I/O, the same facts give the same report.
 */
import type { CoverageKey } from '../keynode/coverage.js';
import type { Collected, NodeFacts, PartState } from './collect.js';
import type { Fleet } from './fleet.js';

/** ok: held and fresh; stale: held, beyond policy; missing: expected and not held; unknown: its part did not answer; none: not configured. */
export type PathState = 'ok' | 'stale' | 'missing' | 'unknown' | 'none';
export type Verdict = 'ok' | 'at_risk' | 'lost_path';
export const VERDICT_ORDER: readonly Verdict[] = ['lost_path', 'at_risk', 'ok'];

export interface PathReport {
  state: PathState;
  [detail: string]: unknown;
}
export interface MemberReport {
  identifier: string;
  /** The fleet node holding this member's share (the primary; its fail-over copy is a path). */
  node: string | null;
  key_id: string | null;
  /** up: the node answered and holds it; unknown: no node that answered holds it; */
  state: 'up' | 'unknown';
  status: string | null;
  durable: boolean;
  paths: { backup: PathReport; failover: PathReport; snapshot: PathReport; log: PathReport; ers: PathReport };
}
export interface KeyReport {
  key_id: string;
  curve: string;
  group_public_key: string;
  threshold: number;
  members: number;
  verdict: Verdict;
  reasons: string[];
  survives_one_loss: boolean;
  survives_t_minus_1_losses: boolean;
  member_detail: MemberReport[];
}
export interface NodeReport {
  name: string;
  state: 'ok' | 'unknown';
  keys: number;
  backup: { stream: string; acked_seq: number; sealed_seq: number; lag: number; service_head_seq: number | null; compacted_at: string | null; last_error: string | null } | null;
  failover: { url: string; lag: number; last_error: string | null } | null;
}
export interface VaultReport {
  state: 'ok' | 'stale' | 'failed' | 'never' | 'unknown';
  last_verify_at: string | null;
  age_s: number | null;
  threshold: number | null;
  /** The scheme's member count n (the members the last verify checked). */
  members: number | null;
  holders: { name: string | null; url: string | null; reachable: boolean | null; possession: 'ok' | 'failed' | null; code: string | null }[];
}
export interface CoverageReport {
  ok: boolean;
  generated_at: string;
  summary: { keys: number; ok: number; at_risk: number; lost_path: number; parts_unknown: number };
  parts: PartState[];
  nodes: NodeReport[];
  keys: KeyReport[];
  vault: VaultReport | null;
}

/** A member identifier without its zero padding (FROST serializes small scalars padded on either end). */
export const shortId = (id: string): string => id.replace(/^(00)+/, '').replace(/(00)+$/, '') || '0';

const NONE: PathReport = Object.freeze({ state: 'none' });
/** A path of a member whose own node did not answer (only its fail-over copy did). */
const DOWN: PathReport = Object.freeze({ state: 'unknown', why: 'its node did not answer' });

/** A URL a part reported, without userinfo or query (never printed: they may carry a credential). */
export function publicUrl(u: string): string {
  try {
    const x = new URL(u);
    x.username = '';
    x.password = '';
    x.search = '';
    return x.toString().replace(/\/$/, '');
  } catch {
    return '(not a url)';
  }
}

const ageS = (iso: string | null | undefined, now: number): number | null => (iso ? Math.max(0, Math.round((now - Date.parse(iso)) / 1000)) : null);

/** A member's backup path; `head` is the service's head of the node's stream (undefined: no service answered; null: it has no such stream). */
function backupPath(f: NodeFacts, k: CoverageKey, fleet: Fleet, head: number | null | undefined): PathReport {
  const b = f.backup;
  if (!b) return NONE;
  const seq = typeof k.channels.backup?.seq === 'number' ? (k.channels.backup.seq as number) : null;
  const lag = b.sealed_seq - b.acked_seq + b.unsealed;
  const d = { seq, lag, acked_seq: b.acked_seq, service_head_seq: head ?? null };
  if (!k.channels.backup) return { state: 'missing', ...d, why: 'the node holds no acknowledgement of it: not yet, or the node was restored, which keeps none' };
  if (fleet.backup_services.length === 0) return { state: 'unknown', ...d, why: 'the fleet names no backup service to confirm it holds the stream' };
  if (head === undefined) return { state: 'unknown', ...d, why: 'no backup service of the fleet answered' };
  if (head === null) return { state: 'missing', ...d, why: 'the backup service holds no such stream' };
  if (seq !== null && head < seq) return { state: 'missing', ...d, why: `the backup service's head ${head} is below the key's entry ${seq}` };
  if (b.rollback_detected) return { state: 'stale', ...d, why: 'the node detected a rollback of its stream' };
  if (lag > fleet.policy.max_backup_lag) return { state: 'stale', ...d, why: `${lag} entries wait for the service, over the policy's ${fleet.policy.max_backup_lag}` };
  return { state: 'ok', ...d };
}

const PATH_NAMES = ['backup', 'failover', 'snapshot', 'log', 'ers'] as const;
const RANK: Record<Verdict, number> = { lost_path: 0, at_risk: 1, ok: 2 };

/** What every member held by one node shares: computed once per node, not per key. */
interface NodeContext {
  name: string;
  facts: NodeFacts;
  /** This node is some node's fail-over: its records are copies, not members of their own. */
  isFailover: boolean;
  /** The fail-over the fleet file names for this node. */
  failover: string | undefined;
  head: number | null | undefined;
  snapshot: PathReport;
  required: readonly string[];
}

/** A member's fail-over path, from its primary's facts and the records that answered for its identifier. */
function failoverPath(ctx: NodeContext, holders: { node: string }[], fleet: Fleet, nodeUp: (name: string) => boolean): PathReport {
  const f = ctx.facts.failover;
  if (!f) return { state: 'none' };
  const fo = ctx.failover;
  const lag = f.lag;
  if (!fo) return { state: 'unknown', lag, why: 'the fail-over node is not in the fleet file' };
  if (!nodeUp(fo)) return { state: 'unknown', lag, why: `fail-over ${fo} did not answer` };
  if (!holders.some((h) => h.node === fo)) return { state: 'missing', lag, why: `fail-over ${fo} has no copy` };
  return lag > fleet.policy.max_failover_lag ? { state: 'stale', lag, why: `${lag} keys not copied, over the policy's ${fleet.policy.max_failover_lag}` } : { state: 'ok', lag };
}

function logPath(k: CoverageKey, ctx: NodeContext, fleet: Fleet, c: Collected): PathReport {
  const lr = k.channels.log;
  if (!lr) return ctx.required.includes('log') ? { state: 'missing', why: 'not published yet' } : { state: 'none' };
  const index = typeof lr.index === 'number' ? lr.index : -1;
  if (fleet.logs.length === 0) return { state: 'ok', index, confirmed: false };
  if (c.logs.size === 0) return { state: 'unknown', index, why: 'no public log of the fleet answered' };
  for (const size of c.logs.values()) if (size > index) return { state: 'ok', index, confirmed: true };
  return { state: 'missing', index, why: 'no log of the fleet holds that entry' };
}

const isHeld = (p: PathReport) => p.state === 'ok' || p.state === 'stale';
/** A path off the key nodes holds the member: the backup service, a public log, an emergency package. */
const offNode = (m: MemberReport) => isHeld(m.paths.backup) || isHeld(m.paths.log) || isHeld(m.paths.ers);
const isBad = (p: PathReport) => p.state === 'missing' || p.state === 'stale' || p.state === 'unknown';

const worstMemo = new Map<string, number>();
const COMBINATIONS_MAX = 5000;

/**
 * The most members the loss of any `k` nodes takes, each member given by the nodes holding its only
 * copies (it is lost when all of them are). Exact over every set of `k` of those nodes while there are
 * at most 5,000 such sets; beyond, an upper bound (each lost node takes every member it holds a copy
 * of), so the answer errs towards "does not survive". Memoized: most keys of a fleet share one shape.
 */
export function worstLoss(copies: string[][], k: number): number {
  if (k <= 0 || copies.length === 0) return 0;
  const memoKey = `${k}|${copies.map((c) => c.join(',')).sort().join(';')}`;
  const memo = worstMemo.get(memoKey);
  if (memo !== undefined) return memo;
  const nodes = [...new Set(copies.flat())].sort();
  let worst = 0;
  if (nodes.length <= k) worst = copies.length;
  else if (combinations(nodes.length, k) <= COMBINATIONS_MAX) {
    const pick: string[] = [];
    const visit = (from: number): void => {
      if (pick.length === k) {
        worst = Math.max(worst, copies.filter((c) => c.every((x) => pick.includes(x))).length);
        return;
      }
      for (let i = from; i <= nodes.length - (k - pick.length); i++) {
        pick.push(nodes[i]!);
        visit(i + 1);
        pick.pop();
      }
    };
    visit(0);
  } else {
    const per = nodes.map((x) => copies.filter((c) => c.includes(x)).length).sort((a, b) => b - a);
    worst = Math.min(copies.length, per.slice(0, k).reduce((a, b) => a + b, 0));
  }
  if (worstMemo.size > 10_000) worstMemo.clear();
  worstMemo.set(memoKey, worst);
  return worst;
}

function combinations(n: number, k: number): number {
  let r = 1;
  for (let i = 0; i < k; i++) r = (r * (n - i)) / (i + 1);
  return r;
}

/**
 * Builds the report. Linear in the records the nodes answered (one pass to group them by key, one per
 * key over its members): 100,000 keys on three nodes is a few hundred milliseconds (bench/coverage.bench.ts).
 */
export function buildReport(fleet: Fleet, c: Collected): CoverageReport {
  const now = c.at;
  const nodeUp = (name: string) => c.nodes.has(name);
  const failoverNames = new Set(fleet.nodes.map((n) => n.failover).filter((x): x is string => !!x));
  const streamHead = (f: NodeFacts): number | null | undefined => {
    if (!f.backup || c.streams.size === 0) return undefined;
    const id = `${f.backup.account ?? ''}/${f.backup.stream}`;
    for (const m of c.streams.values()) if (m.has(id)) return m.get(id)!;
    return null;
  };
  const ctxs = new Map<string, NodeContext>();
  for (const fn of fleet.nodes) {
    const got = c.nodes.get(fn.name);
    if (!got) continue;
    const f = got.facts;
    const compactedAge = ageS(f.backup?.compacted_at, now);
    const snapshot: PathReport = !f.backup ? NONE : compactedAge === null ? { state: 'none', why: 'no compaction yet' } : compactedAge > fleet.policy.max_snapshot_age_s ? { state: 'stale', age_s: compactedAge } : { state: 'ok', age_s: compactedAge };
    ctxs.set(fn.name, { name: fn.name, facts: f, isFailover: failoverNames.has(fn.name), failover: fn.failover, head: streamHead(f), snapshot, required: f.required_channels ?? [] });
  }
  // Group every record by key (curve and group key), then by member identifier.
  type Holder = { node: string; ctx: NodeContext; rec: CoverageKey };
  const groups = new Map<string, { any: CoverageKey; byId: Map<string, Holder[]> }>();
  for (const [node, { keys }] of c.nodes) {
    const ctx = ctxs.get(node)!;
    for (const k of keys) {
      const g = `${k.curve}:${k.group_public_key}`;
      let e = groups.get(g);
      if (!e) groups.set(g, (e = { any: k, byId: new Map() }));
      const list = e.byId.get(k.identifier);
      if (list) list.push({ node, ctx, rec: k });
      else e.byId.set(k.identifier, [{ node, ctx, rec: k }]);
    }
  }
  const anyNodeUnknown = fleet.nodes.some((n) => !nodeUp(n.name));
  const keys: KeyReport[] = [];
  for (const { any, byId } of groups.values()) {
    const t = any.threshold;
    const n = any.max_signers;
    const members: MemberReport[] = [];
    const copyNodes: string[][] = [];
    for (const [identifier, holders] of byId) {
      const primary = holders.find((h) => !h.ctx.isFailover) ?? holders[0]!;
      const ctx = primary.ctx;
      const k = primary.rec;
      const copyOnly = ctx.isFailover;
      // Its own node did not answer (only the fail-over copy did): what that node holds is unknown, never none.
      const backup = copyOnly ? DOWN : backupPath(ctx.facts, k, fleet, ctx.head);
      const failover: PathReport = copyOnly ? { state: 'ok', why: 'only the fail-over copy answered' } : failoverPath(ctx, holders, fleet, nodeUp);
      const log = copyOnly && !k.channels.log ? DOWN : logPath(k, ctx, fleet, c);
      const ers: PathReport = k.channels.ers ? { state: 'ok' } : copyOnly ? DOWN : ctx.required.includes('ers') ? { state: 'missing', why: 'no verified package registered' } : NONE;
      const durable = isHeld(backup) || isHeld(failover) || isHeld(log) || isHeld(ers);
      members.push({ identifier, node: copyOnly ? null : primary.node, key_id: k.key_id, state: copyOnly ? 'unknown' : 'up', status: k.status, durable, paths: { backup, failover, snapshot: copyOnly ? DOWN : ctx.snapshot, log, ers } });
      // The nodes that answered with a copy of this share: the primary, and its fail-over when the copy is there.
      copyNodes.push(copyOnly ? [primary.node] : isHeld(failover) && ctx.failover ? [primary.node, ctx.failover] : [primary.node]);
    }
    // Members no node that answered holds: unknown (maybe on a node that did not answer), never durable.
    const missing = Math.max(0, n - members.length);
    if (members.length > 1) {
      const order = members.map((_, i) => i).sort((a, b) => (members[a]!.identifier < members[b]!.identifier ? -1 : members[a]!.identifier > members[b]!.identifier ? 1 : 0));
      const sorted = order.map((i) => [members[i]!, copyNodes[i]!] as const);
      sorted.forEach(([m, cn], i) => {
        members[i] = m;
        copyNodes[i] = cn;
      });
    }
    // A member on the backup service, a log or a package outlives any node; one held only on nodes (its
    // own while up, its fail-over's copy while that answers with it) is lost with all of those nodes.
    let base = 0;
    let downFragile = 0;
    let keyId: string | undefined;
    const onNodesOnly: string[][] = [];
    for (let i = 0; i < members.length; i++) {
      const m = members[i]!;
      if (m.state === 'up' || m.durable) base++;
      if (m.state !== 'up' && !m.durable) downFragile++;
      if (m.key_id !== null && (keyId === undefined || m.key_id < keyId)) keyId = m.key_id;
      const copies = copyNodes[i]!;
      if (copies.length > 0 && !offNode(m)) onNodesOnly.push(copies);
    }
    const survivesOne = base - worstLoss(onNodesOnly, 1) >= t;
    const survivesT1 = base - worstLoss(onNodesOnly, t - 1) >= t;
    const optimistic = base + downFragile + (anyNodeUnknown ? missing : 0);
    const reasons: string[] = [];
    if (missing > 0) reasons.push(`${missing} of ${n} members held by no node that answered`);
    for (const m of members) {
      if (m.state !== 'up') reasons.push(`member ${shortId(m.identifier)}: only a fail-over copy answered`);
      for (const name of PATH_NAMES) {
        const p = m.paths[name];
        if (isBad(p) && p !== DOWN) reasons.push(`${m.node ?? 'member ' + shortId(m.identifier)}: ${name} ${p.state}${p.why ? ` (${String(p.why)})` : ''}`);
      }
      if (m.status && m.status !== 'active') reasons.push(`${m.node}: key ${m.status}`);
    }
    if (!survivesOne) reasons.push('the loss of one more node makes it unrecoverable');
    const verdict: Verdict = optimistic < t ? 'lost_path' : !survivesOne || reasons.length > 0 ? 'at_risk' : 'ok';
    if (verdict === 'lost_path') reasons.unshift(`fewer than ${t} shares can be recovered`);
    keys.push({ key_id: keyId ?? any.key_id, curve: any.curve, group_public_key: any.group_public_key, threshold: t, members: n, verdict, reasons, survives_one_loss: survivesOne, survives_t_minus_1_losses: survivesT1, member_detail: members });
  }
  keys.sort((a, b) => RANK[a.verdict] - RANK[b.verdict] || (a.key_id < b.key_id ? -1 : a.key_id > b.key_id ? 1 : 0));
  const nodes: NodeReport[] = fleet.nodes.map((fn) => {
    const got = c.nodes.get(fn.name);
    const f = got?.facts;
    const b = f?.backup;
    return {
      name: fn.name,
      state: got ? 'ok' : 'unknown',
      keys: got?.keys.length ?? 0,
      backup: b ? { stream: b.stream, acked_seq: b.acked_seq, sealed_seq: b.sealed_seq, lag: b.sealed_seq - b.acked_seq + b.unsealed, service_head_seq: streamHead(f) ?? null, compacted_at: b.compacted_at, last_error: b.last_error } : null,
      failover: f?.failover ? { url: publicUrl(f.failover.url), lag: f.failover.lag, last_error: f.failover.last_error } : null,
    };
  });
  const vault = vaultReport(fleet, c, now);
  const report: CoverageReport = { ok: false, generated_at: new Date(now).toISOString(), summary: { keys: 0, ok: 0, at_risk: 0, lost_path: 0, parts_unknown: 0 }, parts: c.parts, nodes, keys, vault };
  return withKeys(report, keys);
}

/** The report over `keys` only (`coverage --key`): its keys, summary and `ok` are about that same set. */
export function withKeys(r: CoverageReport, keys: KeyReport[]): CoverageReport {
  const count = (v: Verdict) => keys.filter((k) => k.verdict === v).length;
  const summary = { keys: keys.length, ok: count('ok'), at_risk: count('at_risk'), lost_path: count('lost_path'), parts_unknown: r.parts.filter((p) => p.state === 'unknown').length };
  const ok = summary.at_risk === 0 && summary.lost_path === 0 && summary.parts_unknown === 0 && (!r.vault || r.vault.state === 'ok');
  return { ...r, ok, summary, keys };
}

function vaultReport(fleet: Fleet, c: Collected, now: number): VaultReport | null {
  if (!fleet.vault && fleet.holders.length === 0) return null;
  const lv = c.vault?.lastVerify;
  const holders: VaultReport['holders'] = fleet.holders.map((h) => {
    const check = lv?.checks.find((x) => x.kind === 'holder' && x.url !== null && x.url.replace(/\/+$/, '') === h.url.replace(/\/+$/, ''));
    return { name: h.name, url: h.url, reachable: c.holders.get(h.name) ?? false, possession: check ? (check.ok ? 'ok' : 'failed') : null, code: check?.code ?? null };
  });
  for (const x of lv?.checks ?? []) if (!holders.some((h) => h.url && x.url && h.url.replace(/\/+$/, '') === x.url.replace(/\/+$/, ''))) holders.push({ name: null, url: x.url, reachable: null, possession: x.ok ? 'ok' : 'failed', code: x.code });
  const age = lv ? ageS(lv.at, now) : null;
  const state: VaultReport['state'] = fleet.vault && !c.vault ? 'unknown' : !lv ? 'never' : !lv.ok ? 'failed' : age! > fleet.policy.max_verify_age_s ? 'stale' : holders.some((h) => h.reachable === false) ? 'unknown' : 'ok';
  return { state, last_verify_at: lv?.at ?? null, age_s: age, threshold: lv?.threshold ?? null, members: lv ? new Set(lv.checks.map((x) => x.member)).size : null, holders };
}
