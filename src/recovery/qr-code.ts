/**
 * The offline share as a QR code (ISO/IEC 18004). The code holds exactly the SLIP-0039 words,
 * lowercase and separated by single spaces, as one byte-mode segment: nothing to strip, and any QR
 * reader gives back the text `recovery reconstruct --typed-shares` takes. Error correction level Q
 * (about 25% of the code words may be lost: a folded, stained or badly printed sheet still scans);
 * 33 words make version 13, 69x69 modules. One module matrix is drawn three ways (SVG for the sheet,
 * PNG, half blocks for a terminal), so all of them carry the same code.
 */
import QRCode from 'qrcode';
import pngjs from 'pngjs';
import { InvalidInputError } from '../errors.js';

/** A QR code's modules, row-major: `dark[y * size + x]` is 1 for a dark module. */
export interface QrMatrix {
  size: number;
  dark: Uint8Array;
}

/** Light modules around the code on every side (the quiet zone ISO/IEC 18004 asks for). */
export const QUIET_ZONE = 4;

const WORDS = /^[a-z]+(?: [a-z]+)*$/;

/**
 * The QR code of one share. Throws InvalidInputError when `mnemonic` is not lowercase words separated
 * by single spaces (normalise it first): the code must hold the words and nothing else.
 */
export function shareQrMatrix(mnemonic: string): QrMatrix {
  if (typeof mnemonic !== 'string' || !WORDS.test(mnemonic)) throw new InvalidInputError('a share for a qr code must be lowercase words separated by single spaces');
  const code = QRCode.create([{ data: new TextEncoder().encode(mnemonic), mode: 'byte' }], { errorCorrectionLevel: 'Q' });
  const size = code.modules.size;
  const dark = new Uint8Array(size * size);
  for (let i = 0; i < dark.length; i++) dark[i] = code.modules.data[i] ? 1 : 0;
  return { size, dark };
}

function isDark(m: QrMatrix, x: number, y: number): boolean {
  return x >= 0 && y >= 0 && x < m.size && y < m.size && m.dark[y * m.size + x] === 1;
}

/**
 * An SVG of the code, in module units with the quiet zone (`viewBox="0 0 size+8 size+8"`), drawn as one
 * path of horizontal runs `M{x} {y}h{n}v1h-{n}z` (x, y of the run's first module, quiet zone included),
 * black on a white rectangle, at `sizeMm` millimetres square.
 */
export function qrToSvg(m: QrMatrix, sizeMm: number): string {
  const total = m.size + 2 * QUIET_ZONE;
  const runs: string[] = [];
  for (let y = 0; y < m.size; y++) {
    for (let x = 0; x < m.size; ) {
      if (!isDark(m, x, y)) {
        x++;
        continue;
      }
      let n = 1;
      while (isDark(m, x + n, y)) n++;
      runs.push(`M${x + QUIET_ZONE} ${y + QUIET_ZONE}h${n}v1h-${n}z`);
      x += n;
    }
  }
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="qr" width="${sizeMm}mm" height="${sizeMm}mm" viewBox="0 0 ${total} ${total}" shape-rendering="crispEdges" role="img" aria-label="QR code of the share">` +
    `<rect width="${total}" height="${total}" fill="#fff"/><path fill="#000" d="${runs.join('')}"/></svg>`
  );
}

/** A PNG of the code: `scale` pixels per module (default 8), black on white, with the quiet zone; 8-bit grey. */
export function qrToPng(m: QrMatrix, scale = 8): Uint8Array {
  if (!Number.isInteger(scale) || scale < 1 || scale > 32) throw new InvalidInputError(`scale must be a whole number from 1 to 32, got ${scale}`);
  const side = (m.size + 2 * QUIET_ZONE) * scale;
  const png = new pngjs.PNG({ width: side, height: side, colorType: 0, inputColorType: 6, inputHasAlpha: true });
  png.data.fill(255);
  for (let py = 0; py < side; py++) {
    const y = Math.floor(py / scale) - QUIET_ZONE;
    for (let px = 0; px < side; px++) {
      if (!isDark(m, Math.floor(px / scale) - QUIET_ZONE, y)) continue;
      const o = (py * side + px) * 4;
      png.data[o] = png.data[o + 1] = png.data[o + 2] = 0;
    }
  }
  return new Uint8Array(pngjs.PNG.sync.write(png, { colorType: 0, inputColorType: 6, inputHasAlpha: true }));
}

/** Foreground black, background white: the code reads the same on a dark or a light terminal. */
const TERMINAL_ON = '\x1b[30;47m';
const TERMINAL_OFF = '\x1b[0m';

/**
 * The code for a terminal: two module rows per text line with half blocks (`▀` top dark, `▄` bottom
 * dark, `█` both, space neither), black on white through ANSI colours, quiet zone included; 77
 * columns for 33 words. Each line ends with a colour reset.
 */
export function qrToTerminal(m: QrMatrix): string {
  const lines: string[] = [];
  for (let y = -QUIET_ZONE; y < m.size + QUIET_ZONE; y += 2) {
    let line = '';
    for (let x = -QUIET_ZONE; x < m.size + QUIET_ZONE; x++) {
      const top = isDark(m, x, y);
      const bottom = isDark(m, x, y + 1);
      line += top && bottom ? '█' : top ? '▀' : bottom ? '▄' : ' ';
    }
    lines.push(`${TERMINAL_ON}${line}${TERMINAL_OFF}`);
  }
  return lines.join('\n');
}
