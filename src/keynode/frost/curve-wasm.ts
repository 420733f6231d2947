/**
 * Point arithmetic of ed25519 and secp256k1 in one WebAssembly module generated at run time from
 * ./field-wasm.ts's field functions, for the batch check of restored shares (./batch-arith.ts): public
 * values only, variable time. Both curves use complete formulas, so no input needs a special case:
 * - ed25519, extended coordinates (X:Y:Z:T), a = -1: add-2008-hwcd and dbl-2008-hwcd (EFD; complete for
 *   ed25519's non-square d, RFC 8032 5.1.4);
 * - secp256k1, projective coordinates (X:Y:Z), identity (0:1:0): Renes, Costello and Batina, "Complete
 *   addition formulas for prime order elliptic curves" (Eurocrypt 2016), algorithms 7 and 9 (a = 0).
 * Points live in an arena of WebAssembly memory, addressed by number, taken and given back in stack
 * order (mark/release), so a batch's sums allocate nothing on the JavaScript heap.
 */
import { Code, encodeModule } from '../../util/wasm-emit.js';
import { type FieldName, IN, kMultipleLimbs, LIMBS, linearFn, mulFn, OUT, packFn, powFn, sqnFn, unpackFn } from './field-wasm.js';

const FE = 8 * LIMBS; // bytes of a field element
const POINT = 4 * FE; // bytes of a point: X, Y, Z, T (T unused on secp256k1)
const CONST = 1536; // per field: K (subtraction), then ED_D, then zero
const SCRATCH = 2048; // 16 field elements for the point formulas
const ARENA = 4096;
const PAGE = 65536;

export const PRIME: Record<FieldName, bigint> = { ed25519: (1n << 255n) - 19n, secp256k1: (1n << 256n) - (1n << 32n) - 977n };
const ED_D = 37095705934669439343138083508754565189542113879843219016388785533085940283555n;
const kAddr = (field: FieldName): number => CONST + (field === 'ed25519' ? 0 : FE);
const D_ADDR = CONST + 2 * FE;
const ZERO = CONST + 3 * FE;

/** An operand of a formula: a coordinate of parameter 0, 1 or 2 (p, q, o), a scratch element, or a constant. */
type Operand = [param: number, coordinate: number] | number;
type Step = [op: 'mul' | 'add' | 'sub' | 'sq' | 'copy' | 'b3', out: Operand, a: Operand, b?: Operand];
const s = (k: number): number => SCRATCH + FE * k;
const [X, Y, Z, T] = [0, 1, 2, 3];
const P = (c: number): Operand => [0, c];
const Q = (c: number): Operand => [1, c];
const O = (c: number): Operand => [2, c];

/** ed25519 addition o = p + q: EFD add-2008-hwcd with k = d (noble's order of operations). */
const ED_ADD: Step[] = [
  ['mul', s(0), P(X), Q(X)], ['mul', s(1), P(Y), Q(Y)], ['mul', s(2), P(T), Q(T)], ['mul', s(2), s(2), D_ADDR],
  ['mul', s(3), P(Z), Q(Z)], ['add', s(4), P(X), P(Y)], ['add', s(5), Q(X), Q(Y)], ['mul', s(4), s(4), s(5)],
  ['sub', s(4), s(4), s(0)], ['sub', s(4), s(4), s(1)], ['sub', s(5), s(3), s(2)], ['add', s(6), s(3), s(2)],
  ['add', s(7), s(1), s(0)], ['mul', O(X), s(4), s(5)], ['mul', O(Y), s(6), s(7)], ['mul', O(Z), s(5), s(6)], ['mul', O(T), s(4), s(7)],
];
/** ed25519 doubling o = 2p: EFD dbl-2008-hwcd, a = -1. */
const ED_DOUBLE: Step[] = [
  ['sq', s(0), P(X)], ['sq', s(1), P(Y)], ['sq', s(2), P(Z)], ['add', s(2), s(2), s(2)], ['sub', s(3), ZERO, s(0)],
  ['add', s(4), P(X), P(Y)], ['sq', s(4), s(4)], ['sub', s(4), s(4), s(0)], ['sub', s(4), s(4), s(1)],
  ['add', s(5), s(3), s(1)], ['sub', s(6), s(5), s(2)], ['sub', s(7), s(3), s(1)],
  ['mul', O(X), s(4), s(6)], ['mul', O(Y), s(5), s(7)], ['mul', O(Z), s(6), s(5)], ['mul', O(T), s(4), s(7)],
];
// secp256k1: t0..t4 = s(0..4), X3, Y3, Z3 = s(5..7); b3 = 3·7.
const [t0, t1, t2, t3, t4, X3, Y3, Z3] = [s(0), s(1), s(2), s(3), s(4), s(5), s(6), s(7)];
/** secp256k1 addition o = p + q: RCB 2016 algorithm 7. */
const K1_ADD: Step[] = [
  ['mul', t0, P(X), Q(X)], ['mul', t1, P(Y), Q(Y)], ['mul', t2, P(Z), Q(Z)],
  ['add', t3, P(X), P(Y)], ['add', t4, Q(X), Q(Y)], ['mul', t3, t3, t4],
  ['add', t4, t0, t1], ['sub', t3, t3, t4], ['add', t4, P(Y), P(Z)],
  ['add', X3, Q(Y), Q(Z)], ['mul', t4, t4, X3], ['add', X3, t1, t2],
  ['sub', t4, t4, X3], ['add', X3, P(X), P(Z)], ['add', Y3, Q(X), Q(Z)],
  ['mul', X3, X3, Y3], ['add', Y3, t0, t2], ['sub', Y3, X3, Y3],
  ['add', X3, t0, t0], ['add', t0, X3, t0], ['b3', t2, t2],
  ['add', Z3, t1, t2], ['sub', t1, t1, t2], ['b3', Y3, Y3],
  ['mul', X3, t4, Y3], ['mul', t2, t3, t1], ['sub', O(X), t2, X3],
  ['mul', Y3, Y3, t0], ['mul', t1, t1, Z3], ['add', O(Y), t1, Y3],
  ['mul', t0, t0, t3], ['mul', Z3, Z3, t4], ['add', O(Z), Z3, t0],
];
/** secp256k1 doubling o = 2p: RCB 2016 algorithm 9 (p is read to the end, so the result goes through scratch). */
const K1_DOUBLE: Step[] = [
  ['sq', t0, P(Y)], ['add', Z3, t0, t0], ['add', Z3, Z3, Z3],
  ['add', Z3, Z3, Z3], ['mul', t1, P(Y), P(Z)], ['sq', t2, P(Z)],
  ['b3', t2, t2], ['mul', X3, t2, Z3], ['add', Y3, t0, t2],
  ['mul', Z3, t1, Z3], ['add', t1, t2, t2], ['add', t2, t1, t2],
  ['sub', t0, t0, t2], ['mul', Y3, t0, Y3], ['add', Y3, X3, Y3],
  ['mul', t1, P(X), P(Y)], ['mul', X3, t0, t1], ['add', X3, X3, X3],
  ['copy', O(X), X3], ['copy', O(Y), Y3], ['copy', O(Z), Z3],
];

/** A formula as a function (p, q, o) calling the field functions `fn` (indices by operation). */
function formula(steps: Step[], fn: Record<Step[0], number>): Code {
  const f = new Code(['i32', 'i32', 'i32']);
  const push = (x: Operand): void => {
    if (typeof x === 'number') f.i32(x);
    else f.get(x[0]).i32(FE * x[1]).i32Add();
  };
  for (const [op, out, a, b] of steps) {
    push(a);
    if (op === 'sq') f.i32(1);
    else push(b ?? ZERO);
    push(out);
    f.call(fn[op]);
  }
  return f;
}

interface Exports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  [fn: string]: unknown;
}
type Fn = (...args: number[]) => void;

/** Builds the module: per field mul, sqn, add, sub, b3 (secp256k1: ·21), copy, the formulas and the root power. */
function build(): Exports | null {
  const wasm = (globalThis as { WebAssembly?: { Module: new (b: Uint8Array) => object; Instance: new (m: object) => { exports: Exports } } }).WebAssembly;
  if (!wasm) return null;
  const funcs: Code[] = [unpackFn(), packFn()];
  const exports: Record<string, number> = { unpack: 0, pack: 1 };
  const def = (name: string, code: Code): number => (exports[name] = funcs.push(code) - 1);
  for (const field of ['ed25519', 'secp256k1'] as const) {
    const fn = {
      mul: def(`${field}_mul`, mulFn(field)),
      sq: def(`${field}_sqn`, sqnFn(field)),
      add: def(`${field}_add`, linearFn(field, 'add', 0)),
      sub: def(`${field}_sub`, linearFn(field, 'sub', kAddr(field))),
      b3: def(`${field}_b3`, linearFn(field, { times: 21n }, 0)),
      copy: def(`${field}_copy`, linearFn(field, { times: 1n }, 0)),
    };
    def(`${field}_pow`, powFn(field, fn.mul, fn.sq, 0, 1));
    def(`${field}_addPoint`, formula(field === 'ed25519' ? ED_ADD : K1_ADD, fn));
    def(`${field}_double`, formula(field === 'ed25519' ? ED_DOUBLE : K1_DOUBLE, fn));
  }
  const exp = new wasm.Instance(new wasm.Module(encodeModule(funcs, exports, 1))).exports;
  const v = new DataView(exp.memory.buffer);
  for (const field of ['ed25519', 'secp256k1'] as const) kMultipleLimbs(PRIME[field]).forEach((l, i) => v.setBigUint64(kAddr(field) + 8 * i, l, true));
  writeElement(exp, ED_D, D_ADDR);
  return exp;
}

let built: Exports | null | undefined;

/**
 * The module, built once; null where WebAssembly is missing (node --jitless) or cannot start (V8
 * reserves gigabytes of address space for a WebAssembly memory: under a tight `ulimit -v` the
 * instance fails). Either way the caller takes its path without WebAssembly, and the failure is
 * remembered so it is not tried again.
 */
function module(): Exports | null {
  if (built === undefined) {
    try {
      built = build();
    } catch {
      built = null;
    }
  }
  return built;
}

/** x (below 2^256) as 32 little-endian bytes at IN, where unpack and the root powers read it. */
function writeIn(e: Exports, x: bigint): void {
  const v = new DataView(e.memory.buffer);
  for (let k = 0; k < 4; k++) v.setBigUint64(IN + 8 * k, BigInt.asUintN(64, x >> BigInt(64 * k)), true);
}

/** x unpacked into the field element at `to`. */
function writeElement(e: Exports, x: bigint, to: number): void {
  writeIn(e, x);
  (e.unpack as Fn)(IN, to);
}

/** The field element at `from`, below 2^264, congruent to its value (the caller reduces). */
function readElement(e: Exports, from: number): bigint {
  (e.pack as Fn)(from, OUT);
  return readOut(e);
}

/** The five little-endian 64-bit words at OUT. */
function readOut(e: Exports): bigint {
  const v = new DataView(e.memory.buffer);
  return v.getBigUint64(OUT, true) | (v.getBigUint64(OUT + 8, true) << 64n) | (v.getBigUint64(OUT + 16, true) << 128n) | (v.getBigUint64(OUT + 24, true) << 192n) | (v.getBigUint64(OUT + 32, true) << 256n);
}

/**
 * x^EXPONENT[name] (./field-wasm.ts) for 0 <= x < 2^256, congruent to the power mod the field's prime and
 * below 2^264 (the caller reduces); undefined where WebAssembly is missing (node --jitless).
 */
export function powField(name: FieldName, x: bigint): bigint | undefined {
  if (x < 0n || x >= 1n << 256n) throw new RangeError('powField: x must be in [0, 2^256)');
  const e = module();
  if (!e) return undefined;
  writeIn(e, x);
  (e[`${name}_pow`] as Fn)();
  return readOut(e);
}

/** Points of one curve in the arena: numbers are addresses, valid until the mark before them is released. */
export interface Points {
  readonly group: FieldName;
  /** The identity, in a new place. */
  identity(): number;
  /** The affine point (x, y), in a new place. */
  fromAffine(x: bigint, y: bigint): number;
  copy(to: number, from: number): void;
  /** to = to + q. */
  add(to: number, q: number): void;
  /** to = 2·to. */
  double(to: number): void;
  /** Projective X, Y, Z (ed25519: X/Z, Y/Z; secp256k1 likewise, Z = 0 the identity), each below 2^264, unreduced. */
  coords(p: number): [bigint, bigint, bigint];
}

/** The arena could not grow (the process is out of memory): not a verdict on any key. */
export class ArenaExhausted extends Error {}

/**
 * The arena's top; mark() and release() bracket a computation's points, in stack order: a point taken
 * before a mark outlives its release (a function returns such a point by taking it before its mark).
 */
let top = ARENA;
export const mark = (): number => top;
export function release(m: number): void {
  if (m < ARENA || m > top) throw new Error('curve-wasm: release of a mark not on the stack');
  top = m;
}

function take(e: Exports): number {
  const have = e.memory.buffer.byteLength;
  if (top + POINT > have) {
    try {
      e.memory.grow(Math.ceil((top + POINT - have) / PAGE));
    } catch (err) {
      throw new ArenaExhausted('the restore check could not grow its WebAssembly memory', { cause: err });
    }
  }
  const at = top;
  top += POINT;
  return at;
}

const made: Partial<Record<FieldName, Points>> = {};

/** The curve's point operations, made once per curve (they are asked for per key); undefined where WebAssembly is missing. */
export function points(group: FieldName): Points | undefined {
  const e = module();
  if (!e) return undefined;
  return (made[group] ??= pointOps(e, group));
}

function pointOps(e: Exports, group: FieldName): Points {
  const [addPoint, double, mul] = [e[`${group}_addPoint`], e[`${group}_double`], e[`${group}_mul`]] as Fn[];
  const setOne = (at: number): void => {
    new Uint8Array(e.memory.buffer, at, FE).fill(0);
    new DataView(e.memory.buffer).setUint8(at, 1);
  };
  return {
    group,
    identity() {
      const p = take(e);
      new Uint8Array(e.memory.buffer, p, POINT).fill(0);
      setOne(p + FE * Y);
      if (group === 'ed25519') setOne(p + FE * Z);
      return p;
    },
    fromAffine(x, y) {
      const p = take(e);
      writeElement(e, x, p + FE * X);
      writeElement(e, y, p + FE * Y);
      setOne(p + FE * Z);
      if (group === 'ed25519') mul!(p + FE * X, p + FE * Y, p + FE * T);
      return p;
    },
    copy: (to, from) => void new Uint8Array(e.memory.buffer).copyWithin(to, from, from + POINT),
    add: (to, q) => addPoint!(to, q, to),
    double: (to) => double!(to, 0, to),
    coords: (p) => [readElement(e, p + FE * X), readElement(e, p + FE * Y), readElement(e, p + FE * Z)],
  };
}

/**
 * For tests: the field function `op` of `field` on raw limbs (ten each, as the functions hold them, up
 * to the bounds they take), so limb bounds can be checked at their extremes; the output's limbs.
 */
export function fieldOpOnLimbs(field: FieldName, op: 'mul' | 'sqn' | 'add' | 'sub' | 'b3', a: bigint[], b: bigint[] = a): bigint[] {
  const e = module();
  if (!e) throw new Error('no WebAssembly');
  const [pa, pb, po] = [s(10), s(11), s(12)];
  const v = new DataView(e.memory.buffer);
  a.forEach((l, i) => v.setBigUint64(pa + 8 * i, l, true));
  b.forEach((l, i) => v.setBigUint64(pb + 8 * i, l, true));
  (e[`${field}_${op}`] as Fn)(pa, op === 'sqn' ? 1 : pb, po);
  return Array.from({ length: LIMBS }, (_, i) => v.getBigUint64(po + 8 * i, true));
}
