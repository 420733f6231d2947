/**
 * A small WebAssembly binary writer (WebAssembly Core Specification 2.0, chapter 5 "Binary Format"),
 * enough for straight-line integer code generated at run time: i32/i64 locals, loads and stores,
 * arithmetic, blocks, loops and calls, one memory. Generating the bytes here keeps the module's
 * source the TypeScript that writes it: nothing to compile with another toolchain, no binary blob in
 * the repository, and the same code in the CLI bundle and the kit.
 */

export type ValType = 'i32' | 'i64';
const VALTYPE: Record<ValType, number> = { i32: 0x7f, i64: 0x7e };

/** Unsigned LEB128. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of a bigint (i64.const) or number (i32.const). */
function sleb(v: bigint): number[] {
  const out: number[] = [];
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    const done = (v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0);
    out.push(done ? b : b | 0x80);
    if (done) return out;
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => vec([...new TextEncoder().encode(s)].map((b) => [b]));

/** One function's body, written instruction by instruction (locals after the parameters). */
export class Code {
  readonly bytes: number[] = [];
  private readonly locals: ValType[] = [];

  constructor(readonly params: ValType[], readonly results: ValType[] = []) {}

  /** A new local of `type`; its index. */
  local(type: ValType): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }

  get(i: number): this { return this.op(0x20, ...uleb(i)); }
  set(i: number): this { return this.op(0x21, ...uleb(i)); }
  i32(v: number): this { return this.op(0x41, ...sleb(BigInt(v))); }
  i64(v: bigint): this { return this.op(0x42, ...sleb(v)); }
  /** i64.load / i64.store at the address on the stack plus `offset` (alignment hint 1 byte). */
  load64(offset: number): this { return this.op(0x29, 0, ...uleb(offset)); }
  store64(offset: number): this { return this.op(0x37, 0, ...uleb(offset)); }
  add(): this { return this.op(0x7c); }
  sub(): this { return this.op(0x7d); }
  mul(): this { return this.op(0x7e); }
  and(): this { return this.op(0x83); }
  or(): this { return this.op(0x84); }
  shl(): this { return this.op(0x86); }
  shrU(): this { return this.op(0x88); }
  i32Add(): this { return this.op(0x6a); }
  i32Sub(): this { return this.op(0x6b); }
  i32Eqz(): this { return this.op(0x45); }
  block(): this { return this.op(0x02, 0x40); }
  loop(): this { return this.op(0x03, 0x40); }
  br(depth: number): this { return this.op(0x0c, ...uleb(depth)); }
  brIf(depth: number): this { return this.op(0x0d, ...uleb(depth)); }
  end(): this { return this.op(0x0b); }
  call(fn: number): this { return this.op(0x10, ...uleb(fn)); }

  op(...b: number[]): this {
    for (const x of b) this.bytes.push(x);
    return this;
  }

  /** The code-section entry: locals grouped by type, the body, `end`. */
  encode(): number[] {
    const groups: number[][] = [];
    for (const t of this.locals) {
      const last = groups[groups.length - 1];
      if (last && last[1] === VALTYPE[t]) last[0]!++;
      else groups.push([1, VALTYPE[t]]);
    }
    const body = [...uleb(groups.length), ...groups.flatMap(([n, t]) => [...uleb(n!), t!]), ...this.bytes, 0x0b];
    return [...uleb(body.length), ...body];
  }
}

/** A module of `funcs` (called by their index in this array), one memory of `pages` 64 KiB pages, exported as "memory". */
export function encodeModule(funcs: Code[], exports: Record<string, number>, pages: number): Uint8Array {
  const section = (id: number, content: number[]): number[] => [id, ...uleb(content.length), ...content];
  const types = funcs.map((f) => [0x60, ...vec(f.params.map((t) => [VALTYPE[t]])), ...vec(f.results.map((t) => [VALTYPE[t]]))]);
  const exportEntries = [...Object.entries(exports).map(([n, i]) => [...name(n), 0x00, ...uleb(i)]), [...name('memory'), 0x02, 0]];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec(types)),
    ...section(3, vec(funcs.map((_, i) => uleb(i)))),
    ...section(5, vec([[0x00, ...uleb(pages)]])),
    ...section(7, vec(exportEntries)),
    ...section(10, vec(funcs.map((f) => f.encode()))),
  ]);
}
