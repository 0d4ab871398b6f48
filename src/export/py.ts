/** Python literals and names. */
import { DataType } from '../onnx/schema';

export function pyNum(x: number): string {
  if (Number.isNaN(x)) return "float('nan')";
  if (x === Infinity) return "float('inf')";
  if (x === -Infinity) return "-float('inf')";
  return String(x);
}

/** A Python float literal (always with a decimal point or exponent). */
export function pyFloat(x: number): string {
  // the shortest decimal that is the same float32 (ONNX float attributes are float32: 0.1, not 0.10000000149011612)
  if (Number.isFinite(x) && Math.fround(x) === x) {
    for (let p = 1; p <= 9; p++) {
      const d = Number(x.toPrecision(p));
      if (Math.fround(d) === x) {
        x = d;
        break;
      }
    }
  }
  const s = pyNum(x);
  return /^-?\d+$/.test(s) ? `${s}.0` : s;
}

export function pyList(xs: readonly number[]): string {
  return `[${xs.map(pyNum).join(', ')}]`;
}

/** A size argument: one int when every entry is the same, else a tuple. */
export function pySize(xs: readonly number[]): string {
  if (xs.length > 0 && xs.every((x) => x === xs[0])) return pyNum(xs[0]);
  return `(${xs.map(pyNum).join(', ')}${xs.length === 1 ? ',' : ''})`;
}

export function pyStr(s: string): string {
  return JSON.stringify(s);
}

const TORCH_DTYPE: Record<number, string> = {
  [DataType.FLOAT]: 'torch.float32', [DataType.FLOAT16]: 'torch.float16', [DataType.BFLOAT16]: 'torch.bfloat16',
  [DataType.DOUBLE]: 'torch.float64', [DataType.INT64]: 'torch.int64', [DataType.INT32]: 'torch.int32',
  [DataType.INT16]: 'torch.int16', [DataType.INT8]: 'torch.int8', [DataType.UINT8]: 'torch.uint8', [DataType.BOOL]: 'torch.bool',
};
export function torchDtype(dataType: number): string | undefined {
  return TORCH_DTYPE[dataType];
}

const KEYWORDS = new Set(('False None True and as assert async await break class continue def del elif else except finally for from global if import in is '
  + 'lambda nonlocal not or pass raise return try while with yield self torch nn F json os training forward load').split(' '));

/** A Python identifier from an ONNX name ('/model.0/conv/Conv' -> 'model_0_conv_Conv'). */
export function pyIdent(name: string, fallback = 'v'): string {
  let s = name.replace(/[^A-Za-z0-9_]+/g, '_').replace(/_+/g, '_').replace(/^_+|_+$/g, '');
  if (!s) s = fallback;
  if (/^\d/.test(s)) s = `${fallback}_${s}`;
  if (KEYWORDS.has(s)) s = `${s}_`;
  return s;
}

/** Hands out unique identifiers. */
export class Names {
  private used = new Set<string>();
  constructor(reserved: Iterable<string> = []) {
    for (const r of reserved) this.used.add(r);
  }
  take(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
}
