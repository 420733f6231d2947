/** The coverage report as text (`lifeboat coverage` without --json): at-risk keys first, each with why. */
import { type CoverageReport, type KeyReport, shortId } from './report.js';

/** C0, DEL and C1 controls (ESC, BEL, CSI…), and bidi/format characters: shown as \xNN or \u{…}, never sent raw. */
const CONTROL = /[\p{Cc}\p{Cf}]/gu;
export const neutralise = (s: string): string => s.replace(CONTROL, (c) => { const n = c.codePointAt(0)!; return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`; });
const losses = (n: number) => `${n} ${n === 1 ? 'loss' : 'losses'}`;

const LABEL = { ok: 'ok      ', at_risk: 'AT_RISK ', lost_path: 'LOST    ' } as const;

function keyLines(k: KeyReport, detail: boolean): string[] {
  const head = `${LABEL[k.verdict]} ${k.key_id}  ${k.threshold}-of-${k.members} ${k.curve}  one loss: ${k.survives_one_loss ? 'survives' : 'LOST'}, ${losses(k.threshold - 1)}: ${k.survives_t_minus_1_losses ? 'survives' : 'LOST'}`;
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
    out.push(`  vault: ${v.state}${v.last_verify_at ? `, last recovery verify ${v.last_verify_at} (${v.age_s} s ago)` : ', recovery verify never recorded'}${v.threshold ? `, ${v.threshold}-of-${v.members ?? '?'}` : ''}`);
    for (const h of v.holders) out.push(`    holder ${h.name ?? h.url}: ${h.reachable === null ? '' : h.reachable ? 'reachable, ' : 'UNREACHABLE, '}possession ${h.possession ?? 'not checked'}${h.code ? ` (${h.code})` : ''}`);
  }
  for (const k of r.keys) out.push(...keyLines(k, detail || k.verdict !== 'ok'));
  out.push(verdictLine(r));
  // Everything above may hold what a part answered: no control character reaches the terminal.
  return out.map(neutralise);
}

/** The last line: what is wrong, said of the keys the report is about. */
function verdictLine(r: CoverageReport): string {
  const s = r.summary;
  if (r.ok) return s.keys === 1 ? 'this key survives the loss of a node' : `every key (${s.keys}) survives the loss of a node`;
  const wrong: string[] = [];
  if (s.lost_path + s.at_risk > 0) wrong.push(`${s.lost_path + s.at_risk} of ${s.keys} ${s.keys === 1 ? 'key is' : 'keys are'} not ok`);
  if (s.parts_unknown > 0) wrong.push(`${s.parts_unknown} ${s.parts_unknown === 1 ? 'part' : 'parts'} did not answer`);
  if (r.vault && r.vault.state !== 'ok') wrong.push(`the vault is ${r.vault.state}`);
  return `NOT covered: ${wrong.join('; ')}${s.lost_path + s.at_risk === 0 ? ` (every key shown is ok as far as the parts that answered tell)` : ''}: see above`;
}
