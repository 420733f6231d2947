/**
 * The recovery sheet (`recovery init|rotate --sheet-fd N`): one self-contained HTML page per offline
 * share, to print on A4 or Letter and keep as the paper share. It holds the words in numbered columns,
 * the share's QR code (inline SVG, src/recovery/qr-code.ts), what the worst day needs besides (scheme
 * id, master fingerprint, primary fingerprint, threshold, holders' fingerprints, dates) and three steps
 * with the recovery kit. No external resource: no script, font, image or link is loaded (the page's
 * Content-Security-Policy forbids it), and every value is HTML-escaped. It holds a secret: it is
 * written only to a file descriptor the operator passes, never to a path Lifeboat chooses.
 */
import type { Manifest } from './manifest.js';
import { qrToSvg, shareQrMatrix } from './qr-code.js';

/** What one sheet shows. */
export interface SheetInput {
  /** The share's words, normalised (lowercase, single spaces). */
  mnemonic: string;
  manifest: Manifest;
  /** The primary that signed the manifest (identityFingerprint), for `--primary-fingerprint`. */
  primaryFingerprint: string;
  /** This share's position among the scheme's offline shares (from 1), and their count. */
  offlineNumber: number;
  offlineCount: number;
  printedAt: Date;
}

/** Escapes text for HTML element content and double- or single-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Words per column: 33 words make three columns of 11, 20 words two of 10. */
const ROWS = 11;

function wordColumns(words: string[]): string {
  const columns: string[] = [];
  for (let start = 0; start < words.length; start += ROWS) {
    const items = words.slice(start, start + ROWS).map((w, i) => `<li><span class="n">${start + i + 1}.</span> <span class="w">${escapeHtml(w)}</span></li>`);
    columns.push(`<ol class="col">${items.join('')}</ol>`);
  }
  return `<div class="words">${columns.join('')}</div>`;
}

function utcMinute(d: Date): string {
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

const CSS = `
@page { size: auto; margin: 12mm; }
* { box-sizing: border-box; }
html { font: 9.5pt/1.35 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #000; background: #fff; }
body { margin: 0 auto; max-width: 186mm; }
@media screen { body { padding: 10mm 0; } }
h1 { font-size: 15pt; margin: 0; }
.sub { margin: 1mm 0 0; }
.warn { margin: 2mm 0 0; font-weight: 600; }
.top { display: flex; gap: 6mm; align-items: flex-start; margin: 4mm 0; break-inside: avoid; }
.words { display: flex; gap: 4mm; flex: 1; }
.words ol { list-style: none; margin: 0; padding: 0; }
.words li { font: 11.5pt/1.55 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; white-space: nowrap; border-bottom: 0.2mm solid #999; }
.words .n { display: inline-block; min-width: 2.4em; text-align: right; color: #333; }
.words .w { font-weight: 600; }
svg.qr { flex: none; }
table { border-collapse: collapse; width: 100%; break-inside: avoid; }
th, td { text-align: left; vertical-align: top; padding: 0.8mm 2mm 0.8mm 0; border-top: 0.2mm solid #ccc; }
th { white-space: nowrap; width: 34mm; font-weight: 600; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.mono { word-break: break-all; }
code { overflow-wrap: anywhere; }
ul.holders { list-style: none; margin: 0; padding: 0; font-size: 8.5pt; }
ul.holders.many { columns: 2; }
h2 { font-size: 11pt; margin: 4mm 0 1mm; }
ol.steps { margin: 0; padding-left: 5mm; break-inside: avoid; }
ol.steps li { margin-bottom: 1.5mm; }
ol.steps code { font-size: 8.5pt; }
footer { margin-top: 3mm; font-size: 8pt; color: #333; }
`;

/**
 * The sheet of one offline share, a whole HTML document. Throws InvalidInputError (from shareQrMatrix)
 * when `mnemonic` is not normalised words.
 */
export function renderRecoverySheet(s: SheetInput): string {
  const m = s.manifest;
  const words = s.mnemonic.split(' ');
  const qr = qrToSvg(shareQrMatrix(s.mnemonic), 64);
  const holders = m.members.filter((x) => x.kind === 'holder');
  const holderItems = holders.map((h) => `<li><span class="mono">${escapeHtml(h.fingerprint ?? '')}</span> ${escapeHtml(h.url ?? '')}</li>`).join('');
  const e = escapeHtml;
  const pass = m.passphrase_protected ? ' --passphrase' : '';
  const reconstruct = `lifeboat-kit recovery reconstruct --operator-key operator.json --share-qr share.png --release-response resp.json --manifest manifest.json --vault vault.lbv --primary-fingerprint ${s.primaryFingerprint}${pass}`;
  const request = `lifeboat-kit recovery request --operator-key operator.json --scheme ${m.scheme_id} --holder-fingerprint HOLDER_FINGERPRINT --out req.json`;
  const title = `Lifeboat recovery sheet: offline share ${s.offlineNumber} of ${s.offlineCount}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main class="sheet">
<h1>${e(title)}</h1>
<p class="sub">Recovery scheme <span class="mono">${e(m.scheme_id)}</span>: any ${m.threshold} of its ${m.share_count} shares open the vault.</p>
<p class="warn">This page is a secret share of the vault's master key. Keep it as you would the key itself; never photograph or scan it except on the day you recover.</p>
<div class="top">
${wordColumns(words)}
${qr}
</div>
<table>
<tr><th>Scheme id</th><td class="mono" data-field="scheme_id">${e(m.scheme_id)}</td></tr>
<tr><th>Master fingerprint</th><td class="mono" data-field="master_fingerprint">${e(m.master_fingerprint)}</td></tr>
<tr><th>Primary fingerprint</th><td class="mono" data-field="primary_fingerprint">${e(s.primaryFingerprint)}</td></tr>
<tr><th>Threshold</th><td data-field="threshold">${m.threshold} of ${m.share_count} shares (${holders.length} on holders, ${m.share_count - holders.length} offline)</td></tr>
<tr><th>Holders</th><td><ul class="holders${holders.length > 4 ? ' many' : ''}" data-field="holders">${holderItems}</ul></td></tr>
<tr><th>Passphrase</th><td>${m.passphrase_protected ? 'yes: the SLIP-0039 passphrase is needed too (it is not on this sheet)' : 'none'}</td></tr>
<tr><th>Dates</th><td>scheme created ${e(m.created_at)}; sheet printed <span data-field="printed_at">${e(utcMinute(s.printedAt))}</span></td></tr>
</table>
<h2>The worst day: the primary is gone</h2>
<ol class="steps">
<li>On a new machine, bring this sheet, the recovery kit <code>lifeboat-kit</code> (one file that runs with nothing installed and no network; check it against <code>lifeboat-kit.sha256</code>) and an operator key file <code>operator.json</code>. Scan or photograph the QR code above into <code>share.png</code>.</li>
<li>Get one holder's share. For a holder that is cut off from the network: <code>${e(request)}</code>, then on that holder <code>lifeboat holder release --request req.json --out resp.json</code> within 15 minutes, and bring back <code>resp.json</code> with the holder's copies of <code>schemes/${e(m.scheme_id)}/manifest.json</code> and <code>vault.lbv</code>. A holder you can reach: give <code>--holder URL#FINGERPRINT</code> in step 3 instead of the three files.</li>
<li>Rebuild: <code>${e(reconstruct)}</code> (a QR code that does not scan: <code>--typed-shares 1</code> and type the words). Then run <code>lifeboat recovery rotate</code>: this share has left its safekeeping.</li>
</ol>
<footer>Words and QR code hold the same SLIP-0039 share. The primary fingerprint is public; it makes <code>--primary-fingerprint</code> refuse a manifest signed by anyone but the lost primary.</footer>
</main>
</body>
</html>
`;
}
