/**
 * Reading an HTTP answer (a fetch Response) of a peer that may be hostile: at most `limit` bytes are
 * read. A declared Content-Length over the limit is refused before any byte is read, and a body that
 * grows past it is cancelled as soon as it does. Shared by every client of another party's server
 * (the log's witness cosigner; offered to the log client and the audit's source).
 */

/** The body's bytes, or null when it is (or says it is) larger than `limit`; the stream is then cancelled. */
export async function readCappedBody(res: Response, limit: number): Promise<Uint8Array | null> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > limit) {
    await res.body?.cancel().catch(() => {});
    return null;
  }
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

/** readCappedBody as UTF-8 text (invalid sequences replaced), or null when over `limit`. */
export async function readCappedText(res: Response, limit: number): Promise<string | null> {
  const bytes = await readCappedBody(res, limit);
  return bytes === null ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}
