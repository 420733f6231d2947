/** The coverage report as text (`lifeboat coverage` without --json): at-risk keys first, each with why. */
import { type CoverageReport, type KeyReport, shortId } from './report.js';

const LABEL = { ok: 'ok      ', at_risk: 'AT_RISK ', lost_path: 'LOST    ' } as const;

function keyLines(k: KeyReport, detail: boolean): string[] {
  const head = `${LABEL[k.verdict]} ${k.key_id}  ${k.threshold}-of-${k.members} ${k.curve}  one loss: ${k.survives_one_loss ? 'survives' : 'LOST'}, ${k.threshold - 1} losses: ${k.survives_t_minus_1_losses ? 'survives' : 'LOST'}`;
  const out = [head];
  for (const r of k.reasons) out.push(`           - ${r}`);
  if (detail) {
    for (const m of k.member_detail) {
      const paths = Object.entries(m.paths)
        .filter(([, p]) => p.state !== 'none')
        .map(([name, p]) => `${name} ${p.state}${typeof p.lag === 'number' ? ` lag ${p.lag}` : ''}${typeof p.age_s === 'number' ? ` age ${p.age_s}s` : ''}`)
        .join(', ');
      out.push(`           member ${shortId(m.identifier)} on ${m.node ?? '(unknown)'} ${m.state}${m.durable ? ', durable' : ', NOT durable'}: ${paths || 'no path'}`);
    }
  }
  return out;
}

/** Renders the report; `detail` lists every member's paths for every key (--key does), else for keys not ok. */
export function renderReport(r: CoverageReport, detail = false): string[] {
  const out: string[] = [];
  const s = r.summary;
  out.push(`coverage at ${r.generated_at}: ${s.keys} keys: ${s.lost_path} lost_path, ${s.at_risk} at_risk, ${s.ok} ok`);
  for (const p of r.parts) out.push(`  part ${p.kind} ${p.name}: ${p.state === 'ok' ? 'answered' : `UNKNOWN (${p.error})`} in ${p.ms} ms`);
  for (const n of r.nodes) {
    const b = n.backup ? `backup ${n.backup.stream} acked ${n.backup.acked_seq}/${n.backup.sealed_seq} lag ${n.backup.lag}${n.backup.service_head_seq === null ? '' : ` service head ${n.backup.service_head_seq}`}` : 'no backup';
    const f = n.failover ? `, fail-over lag ${n.failover.lag}` : '';
    out.push(`  node ${n.name}: ${n.state === 'ok' ? `${n.keys} keys, ${b}${f}` : 'UNKNOWN'}`);
  }
  if (r.vault) {
    const v = r.vault;
    out.push(`  vault: ${v.state}${v.last_verify_at ? `, last recovery verify ${v.last_verify_at} (${v.age_s} s ago)` : ', recovery verify never recorded'}${v.threshold ? `, ${v.threshold}-of-n` : ''}`);
    for (const h of v.holders) out.push(`    holder ${h.name ?? h.url}: ${h.reachable === null ? '' : h.reachable ? 'reachable, ' : 'UNREACHABLE, '}possession ${h.possession ?? 'not checked'}${h.code ? ` (${h.code})` : ''}`);
  }
  for (const k of r.keys) out.push(...keyLines(k, detail || k.verdict !== 'ok'));
  out.push(r.ok ? 'every key survives the loss of a node' : 'NOT every key is covered: see above');
  return out;
}
