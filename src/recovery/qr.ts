/**
 * Reading an offline share back from a QR code image (`recovery reconstruct --share-qr FILE`): a PNG,
 * decoded by pngjs, the code found and read by jsQR, both pure JavaScript, so the recovery kit
 * (docs/kit.md) carries this path with no native code. Nothing is written anywhere, and no error
 * message quotes what the code holds. The words are checked as a SLIP-0039 share here (word list and
 * checksum); the caller checks them against the manifest as it does typed words.
 */
import { readFileSync, statSync } from 'node:fs';
import pngjs from 'pngjs';
import * as jsqrModule from 'jsqr';
import { InvalidInputError, LifeboatError, NotFoundError } from '../errors.js';
import { decodeMnemonic, normalizeMnemonic } from '../crypto/slip39.js';

/** An image file larger than this is refused before it is read. */
export const MAX_QR_IMAGE_BYTES = 16 * 1024 * 1024;
/** An image with more pixels than this is refused before it is decoded (a photo of 24 megapixels passes). */
export const MAX_QR_IMAGE_PIXELS = 25_000_000;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

type JsQr = (data: Uint8ClampedArray, width: number, height: number) => { binaryData: number[] } | null;
// jsqr is CommonJS (module.exports is the function); a bundler may or may not wrap it in `default`.
const jsqrExport = (jsqrModule as unknown as { default: JsQr | { default: JsQr } }).default;
const jsQR: JsQr = typeof jsqrExport === 'function' ? jsqrExport : jsqrExport.default;

function notAnImage(source: string, why: string): InvalidInputError {
  return new InvalidInputError(`${source} is not a readable png image: ${why}`, { code: 'qr_image_invalid', hint: 'save the scan or photo of the qr code as a png file' });
}

/** Width and height from a PNG's IHDR chunk (PNG spec 11.2.2), before anything is decompressed. */
function pngDimensions(bytes: Uint8Array, source: string): { width: number; height: number } {
  if (bytes.length < 33 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) throw notAnImage(source, 'no png signature');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') throw notAnImage(source, 'no header chunk');
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/**
 * Decodes the share a QR code image holds. `source` names the image in errors (e.g. the file name).
 * Throws InvalidInputError `qr_image_invalid` for bytes that are not a PNG (or one larger than
 * MAX_QR_IMAGE_PIXELS), `qr_not_found` when no QR code is found in it, `qr_not_a_share` when the code
 * holds something other than a SLIP-0039 share (other text, a word not in the list, a bad checksum).
 * Returns the words, normalised.
 */
export function decodeShareQr(bytes: Uint8Array, source: string): string {
  const { width, height } = pngDimensions(bytes, source);
  if (width === 0 || height === 0 || width * height > MAX_QR_IMAGE_PIXELS) throw notAnImage(source, `${width}x${height} pixels is outside 1 to ${MAX_QR_IMAGE_PIXELS} pixels`);
  let image: { width: number; height: number; data: Uint8Array };
  try {
    image = pngjs.PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch {
    throw notAnImage(source, 'the image data does not decode');
  }
  // jsQR reads red, green and blue only: a transparent background is laid on white first.
  const rgba = new Uint8ClampedArray(image.data.length);
  for (let i = 0; i < rgba.length; i += 4) {
    const a = image.data[i + 3]!;
    for (let c = 0; c < 3; c++) rgba[i + c] = (image.data[i + c]! * a + 255 * (255 - a)) / 255;
    rgba[i + 3] = 255;
  }
  const code = jsQR(rgba, image.width, image.height);
  if (!code) throw new InvalidInputError(`no qr code found in ${source}`, { code: 'qr_not_found', hint: 'scan or photograph the qr code again: sharp, flat, the whole code with a white border, not at an angle' });
  const notAShare = (why: string): InvalidInputError =>
    new InvalidInputError(`the qr code in ${source} does not hold a slip-0039 share: ${why}`, { code: 'qr_not_a_share', hint: 'use the qr code of a lifeboat recovery sheet, or type the words with --typed-shares' });
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(code.binaryData));
  } catch {
    throw notAShare('it is not text');
  }
  if (!/^[a-z]+(?: [a-z]+)*$/.test(text)) throw notAShare('it is not lowercase words separated by single spaces');
  try {
    decodeMnemonic(text);
  } catch (err) {
    if (err instanceof LifeboatError) throw notAShare(`${err.code}: ${err.message}`);
    throw err;
  }
  return normalizeMnemonic(text);
}

/**
 * Reads and decodes a QR code image file (see decodeShareQr, whose errors it throws, naming the file).
 * Throws NotFoundError `file_not_found` for a missing file, InvalidInputError `qr_image_invalid` for
 * one that is not a regular file or is larger than MAX_QR_IMAGE_BYTES.
 */
export function readShareQrFile(path: string): string {
  const source = `qr image ${path}`;
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw notAnImage(source, 'not a regular file');
    size = st.size;
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${source} not found`, 'file_not_found');
    throw err;
  }
  if (size > MAX_QR_IMAGE_BYTES) throw notAnImage(source, `larger than ${MAX_QR_IMAGE_BYTES} bytes`);
  return decodeShareQr(new Uint8Array(readFileSync(path)), source);
}
