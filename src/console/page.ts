/**
 * The console's HTML (docs/coverage.md, "The console"): server-rendered, no script, one inline style
 * sheet. Keys by verdict (at risk first), each a <details> that opens to its members' paths; a
 * timeline of backup lag and acknowledged seq per node as inline SVG; the vault with its holders.
 * Every value is escaped; nothing here is a secret (the report holds none).
 */
import { type CoverageReport, type KeyReport, shortId } from '../coverage/report.js';

/** One sample of a node's backup stream, kept by the console while it runs. */
export interface NodeSample {
  at: number;
  acked_seq: number | null;
  lag: number | null;
}

export const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const STYLE = `body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
.v-ok{color:#176317}.v-at_risk{color:#b45309;font-weight:bold}.v-lost_path{color:#b91c1c;font-weight:bold}.unknown{color:#b91c1c}summary{cursor:pointer}svg{background:#fafafa;border:1px solid #ddd}
form.inline{display:inline}.muted{color:#666}`;

function layout(title: string, body: string, refreshS?: number): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>${refreshS ? `<meta http-equiv="refresh" content="${refreshS}">` : ''}<style>${STYLE}</style></head><body>${body}</body></html>`;
}

/** The login page: the operator token, with the form's CSRF token. */
export function loginPage(csrf: string, error?: string): string {
  return layout(
    'lifeboat console: sign in',
    `<h1>Lifeboat coverage console</h1>${error ? `<p class="unknown" id="error">${esc(error)}</p>` : ''}
<form method="post" action="/login"><input type="hidden" name="csrf" value="${esc(csrf)}"><label>Operator token <input type="password" name="token" autocomplete="off" required></label> <button type="submit">Sign in</button></form>`,
  );
}

function keyRow(k: KeyReport): string {
  const members = k.member_detail
    .map((m) => {
      const paths = Object.entries(m.paths)
        .map(([name, p]) => `<td class="${p.state === 'ok' ? 'v-ok' : p.state === 'none' ? 'muted' : 'unknown'}">${esc(name)}: ${esc(p.state)}${typeof p.lag === 'number' ? ` (lag ${p.lag})` : ''}${typeof p.age_s === 'number' ? ` (${p.age_s} s)` : ''}${p.why ? `<br><span class="muted">${esc(p.why)}</span>` : ''}</td>`)
        .join('');
      return `<tr><td>member ${esc(shortId(m.identifier))}</td><td>${esc(m.node ?? '(unknown)')}</td><td>${esc(m.state)}${m.durable ? ', durable' : ', <b>not durable</b>'}</td>${paths}</tr>`;
    })
    .join('');
  return `<tr class="key" data-key="${esc(k.key_id)}" data-verdict="${esc(k.verdict)}"><td class="v-${esc(k.verdict)}">${esc(k.verdict)}</td><td><details><summary>${esc(k.key_id)}</summary>
<p>${esc(k.curve)}, ${k.threshold}-of-${k.members}; one loss: ${k.survives_one_loss ? 'survives' : 'lost'}; ${k.threshold - 1} ${k.threshold - 1 === 1 ? 'loss' : 'losses'}: ${k.survives_t_minus_1_losses ? 'survives' : 'lost'}</p>
${k.reasons.length ? `<ul>${k.reasons.map((r) => `<li>${esc(r)}</li>`).join('')}</ul>` : ''}<table>${members}</table></details></td><td>${k.threshold}-of-${k.members}</td><td>${esc(k.reasons[0] ?? '')}</td></tr>`;
}

/** A timeline chart: one polyline per node of `pick(sample)`, over the kept samples. */
export function timelineSvg(title: string, samples: Map<string, NodeSample[]>, pick: (s: NodeSample) => number | null): string {
  const W = 640;
  const H = 160;
  const all = [...samples.values()].flat();
  const values = all.map(pick).filter((v): v is number => v !== null);
  if (all.length === 0 || values.length === 0) return `<p class="muted">${esc(title)}: no samples yet</p>`;
  const t0 = Math.min(...all.map((s) => s.at));
  const t1 = Math.max(t0 + 1, ...all.map((s) => s.at));
  const vmax = Math.max(1, ...values);
  const colors = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2'];
  let i = 0;
  const lines: string[] = [];
  const legend: string[] = [];
  for (const [node, list] of samples) {
    const c = colors[i++ % colors.length]!;
    const pts = list.filter((s) => pick(s) !== null).map((s) => `${(((s.at - t0) / (t1 - t0)) * (W - 20) + 10).toFixed(1)},${(H - 10 - (pick(s)! / vmax) * (H - 30)).toFixed(1)}`);
    if (pts.length) lines.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.join(' ')}"><title>${esc(node)}</title></polyline>`);
    legend.push(`<tspan fill="${c}">■ ${esc(node)} </tspan>`);
  }
  return `<figure><figcaption>${esc(title)} (max ${vmax})</figcaption><svg role="img" aria-label="${esc(title)}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><text x="10" y="14" font-size="11">${legend.join('')}</text>${lines.join('')}</svg></figure>`;
}

/** The report page. */
export function reportPage(r: CoverageReport | undefined, samples: Map<string, NodeSample[]>, csrf: string, refreshS: number): string {
  const head = `<form class="inline" method="post" action="/refresh"><input type="hidden" name="csrf" value="${esc(csrf)}"><button id="refresh" type="submit">Refresh now</button></form> <form class="inline" method="post" action="/logout"><input type="hidden" name="csrf" value="${esc(csrf)}"><button type="submit">Sign out</button></form>`;
  if (!r) return layout('lifeboat coverage', `<h1>Lifeboat coverage</h1>${head}<p>collecting the first report…</p>`, 2);
  const s = r.summary;
  const parts = r.parts.map((p) => `<tr><td>${esc(p.kind)}</td><td>${esc(p.name)}</td><td class="${p.state === 'ok' ? 'v-ok' : 'unknown'}">${p.state === 'ok' ? 'answered' : `unknown (${esc(p.error)})`}</td><td>${p.ms} ms</td></tr>`).join('');
  const v = r.vault;
  const vault = v
    ? `<h2>Vault</h2><p id="vault-state">state: <b>${esc(v.state)}</b>${v.threshold ? `, ${v.threshold}-of-${v.members ?? '?'}` : ''}; last recovery verify: ${v.last_verify_at ? `${esc(v.last_verify_at)} (${v.age_s} s ago)` : 'never recorded'}</p><table><tr><th>holder</th><th>reachable</th><th>possession</th></tr>${v.holders.map((h) => `<tr><td>${esc(h.name ?? h.url)}</td><td>${h.reachable === null ? '-' : h.reachable ? 'yes' : '<b>no</b>'}</td><td>${esc(h.possession ?? 'not checked')}${h.code ? ` (${esc(h.code)})` : ''}</td></tr>`).join('')}</table>`
    : '';
  const body = `<h1>Lifeboat coverage</h1>${head}
<p id="summary">${esc(r.generated_at)}: <b>${s.keys}</b> keys — <span class="v-lost_path">${s.lost_path} lost_path</span>, <span class="v-at_risk">${s.at_risk} at_risk</span>, <span class="v-ok">${s.ok} ok</span>; ${s.parts_unknown} parts unknown</p>
<h2>Keys</h2><table id="keys"><tr><th>verdict</th><th>key</th><th>scheme</th><th>first reason</th></tr>${r.keys.slice(0, 2000).map(keyRow).join('')}</table>${r.keys.length > 2000 ? `<p class="muted">${r.keys.length - 2000} more keys: \`lifeboat coverage --json\`</p>` : ''}
<h2>Backup streams</h2>${timelineSvg('backup lag (entries) per node', samples, (x) => x.lag)}${timelineSvg('acknowledged seq per node', samples, (x) => x.acked_seq)}
<h2>Parts</h2><table>${parts}</table>${vault}`;
  return layout('lifeboat coverage', body, refreshS);
}
