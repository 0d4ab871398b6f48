/**
 * PRN's parts form (convert --emit parts, passes/prn-parts.ts) back into the architecture it
 * computes, for the PyTorch export. The parts form is an inference layout: a block output y is
 * carried as yA = y[:k] and yB = y[k:], a conv that writes it as one conv per part
 * (`<layer>/part0`, `<layer>/part1`), a conv that reads it as Conv(yA) + Conv(yB) (`<layer>/in0`,
 * `<layer>/in1`, summed by `<owner>/parts/Add`, on BN-as-node models with a second BN of zero mean
 * and shift). In train mode BN_a(conv_a(xA)) + conv_b(xB) is not BN(conv(x)): a module written that
 * way would not train as the paper's network. Here each layer is one layer again, on whole tensors:
 *
 *   part0 + part1 (output split)  ->  one conv: filters (and BN / bias) concatenated
 *   in0 + in1 (input split)       ->  one conv: weights concatenated along input channels, biases
 *                                     summed; the second BN dropped when it is the first one's
 *                                     duplicate (same scale and variance, zero mean and shift:
 *                                     exact), else the layer stays in parts and a note says so
 *   Add/part0(B0, S0) with B1     ->  the masked residual of the split form (prn.ts applyBlock):
 *                                     y = Concat(Split(B)[0] + S[:k], Split(B)[1]); a projection
 *                                     keeps its k filters
 *
 * Every value is the same number as before (concatenations and a sum of two partial sums), so the
 * export still equals the ONNX model. The structure is read again by the rules (they read the split
 * form, analysis/prn-read) and recorded with the residual's Slice / Split / Concat as the nodes PRN
 * added, as convert --emit split records them.
 */
import { STRUCTURE_KEY } from '../analysis/recorded-structure';
import { inferShapes } from '../analysis/shapes';
import { floatTensor, floatValues } from '../ir/float-data';
import type { Graph, Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { Tensor } from '../ir/tensor';
import { DataType } from '../onnx/schema';
import { channelsOf, concatChannels, sliceChannels, splitChannels, withChannels } from '../ir/surgery';
import { activationSpec } from '../ops';
import { cloneModel } from '../passes/model-copy';
import { rerecordJoined } from './prn-whole-record';

export interface WholeOutcome {
  /** Convs written whole again from partial ones (each layer once; BNs and activations not counted). */
  layers: number;
  /** Masked residuals written on whole tensors. */
  residuals: number;
  /** What could not be merged, and why (those nodes are exported as they are). */
  notes: string[];
}

const PART = /^(.*)\/part([01])$/;
const INPUT_PART = /^(.*)\/in([01])$/;
const POOLS = new Set(['MaxPool', 'AveragePool', 'LpPool']);

/** Whether gpt's conversion record says PRN in parts (convert --to prn, emit parts). */
function recordedParts(model: Model): boolean {
  try {
    const c = JSON.parse(model.metadata()['gpt.conversion'] ?? 'null');
    return c?.target === 'prn' && c.options?.emit === 'parts';
  } catch {
    return false;
  }
}

/**
 * Conv `<layer>/in0` (+ BN `/in0`) and Conv `<layer>/in1` (+ BN `/in1`) summed by `add`, in either
 * input order: the input-split conv passes/prn-parts.ts writes. Null when `add` is not that.
 */
function inputPair(g: Graph, add: Node): { a: { conv: Node; bn?: Node }; b: { conv: Node; bn?: Node } } | null {
  if (add.opType !== 'Add' || add.inputs.length !== 2) return null;
  const chain = (s: Value | null, i: number): { conv: Node; bn?: Node } | null => {
    let p = s?.producer;
    let bn: Node | undefined;
    if (p?.opType === 'BatchNormalization') {
      if (INPUT_PART.exec(p.name)?.[2] !== String(i)) return null;
      bn = p;
      p = p.inputs[0]?.producer;
    }
    return p?.opType === 'Conv' && INPUT_PART.exec(p.name)?.[2] === String(i) && g.isConstant(p.inputs[1] ?? null) ? { conv: p, bn } : null;
  };
  for (const [i0, i1] of [[1, 0], [0, 1]]) {
    const a = chain(add.inputs[i0], 0), b = chain(add.inputs[i1], 1);
    if (a && b) return { a, b };
  }
  return null;
}

/**
 * Whether the model carries PRN parts: gpt's conversion record says so, or, where a record was
 * stripped, the input-split conv itself is there (Conv `/in0` + Conv `/in1` of one layer -> Add). A
 * node's name alone (`.../parts/Add`, `x/part0`) is no evidence: any model may use such names.
 */
export function hasPrnParts(model: Model): boolean {
  if (recordedParts(model)) return true;
  const g = model.graph;
  return g.nodes.some((n) => {
    const p = inputPair(g, n);
    return !!p && INPUT_PART.exec(p.a.conv.name)![1] === INPUT_PART.exec(p.b.conv.name)![1];
  });
}

/**
 * A copy of `model` with its PRN parts written whole; null when it has none or nothing could be
 * joined (the model is then exported as it is: a parts conversion that kept the mask form everywhere,
 * Darknet's LeakyRelu, has nothing to join).
 */
export function prnPartsToWhole(model: Model): { model: Model; outcome: WholeOutcome } | null {
  if (!hasPrnParts(model)) return null;
  const copy = cloneModel(model);
  inferShapes(copy); // channel counts of the parts (the copy has no inferred shapes)
  const j = new Joiner(copy, recordedParts(model));
  const outcome = j.run();
  if (!outcome.layers && !outcome.residuals) return null;
  return { model: copy, outcome };
}

function attrsKey(n: Node): string {
  return JSON.stringify(n.attributes.map((a) => [a.name, a.i, a.f, a.ints, a.floats, a.s]), (_k, v) => (typeof v === 'bigint' ? String(v) : v));
}

class Joiner {
  private readonly g;
  private readonly memo = new Map<Value, Map<Value, Value | null>>();
  /** Pair Concats: Concat(part0, part1) nodes some reader of the whole value reads. */
  private readonly pairConcats: Node[] = [];
  /** The residuals' new Slice / Split / Concat nodes (PRN's own nodes in the record). */
  private readonly residualNodes: Node[] = [];
  /** Each residual node, with the name of the Add it stands beside (to place it in a stage). */
  private readonly besideOf = new Map<Node, string>();
  private readonly byName: Map<string, Node>;
  /** The convs this joiner wrote (intermediate ones a later join reads are gone by the end). */
  private readonly convsWritten = new Set<Node>();
  private readonly notes: string[] = [];

  /** `recorded`: gpt's conversion record says parts (its part names are gpt's own, so renaming is safe). */
  constructor(private readonly model: Model, private readonly recorded: boolean) {
    this.g = model.graph;
    this.byName = new Map(this.g.nodes.map((n) => [n.name, n]));
  }

  run(): WholeOutcome {
    const g = this.g;
    const hadRecord = !!this.model.metadata()[STRUCTURE_KEY];
    for (const add of [...g.nodes]) if (add.opType === 'Add' && (/\/parts\/Add$/.test(add.name) || inputPair(g, add))) this.joinInputParts(add);
    for (const c of g.nodes) if (c.opType === 'Concat' && /\/parts\/Concat$/.test(c.name) && c.inputs.length === 2) this.pairConcats.push(c);
    // every whole value first (new nodes only), then the readers rewired to them
    const wholes = this.pairConcats.map((c) => this.whole(c.inputs[0]!, c.inputs[1]!));
    this.pairConcats.forEach((c, i) => {
      const w = wholes[i];
      const v = c.outputs[0]!;
      if (!w) {
        this.notes.push(`'${v.name}' stays in two parts (its producers are not a pair of one layer's parts)`);
        return;
      }
      if (g.isGraphOutput(v) && w.producer) {
        // a graph output keeps its name: the whole layer writes it
        g.removeNode(c);
        g.replaceAllUses(w, v);
        w.producer.setOutput(w.producerIndex, v);
      } else g.replaceAllUses(v, w);
    });
    g.cleanup().toposort();
    this.rename();
    const left = g.nodes.filter((n) => PART.test(n.name) || INPUT_PART.test(n.name) || /\/parts(\/|$)/.test(n.name));
    if (left.length) this.notes.push(`${left.length} node(s) stay in the parts form, e.g. '${left[0].name}'`);
    const residuals = this.residualNodes.filter((n) => n.opType === 'Concat' && n.graph).length;
    const layers = [...this.convsWritten].filter((n) => n.graph).length;
    if ((layers || residuals) && hadRecord) this.notes.push(...rerecordJoined(this.model, this.residualNodes, this.besideOf));
    return { layers, residuals, notes: [...new Set(this.notes)] };
  }

  /** Conv(xA, W[:, :k]) (+BN) + Conv(xB, W[:, k:]) (+BN'), summed by `add`: one conv reading Concat(xA, xB). */
  private joinInputParts(add: Node): void {
    const g = this.g;
    const pair = inputPair(g, add);
    const why = (r: string) => this.notes.push(`'${add.name}': the two partial convs stay (${r})`);
    if (!pair) return void why('not a pair of partial convs');
    const { a, b } = pair;
    const base = INPUT_PART.exec(a.conv.name)![1];
    if (INPUT_PART.exec(b.conv.name)![1] !== base) return void why(`'${a.conv.name}' and '${b.conv.name}' are parts of different layers`);
    if (attrsKey(a.conv) !== attrsKey(b.conv) || !!a.bn !== !!b.bn) return void why('they are not parts of one conv: their attributes or BNs differ');
    // input channels concatenate into one conv only without groups (a grouped conv's input parts are
    // not its groups)
    if (a.conv.int('group', 1) !== 1) return void why(`group ${a.conv.int('group', 1)}: the input channels of a grouped conv do not concatenate`);
    const w0 = g.constantTensor(a.conv.inputs[1]), w1 = g.constantTensor(b.conv.inputs[1]);
    if (!w0 || !w1 || w0.dims.length !== w1.dims.length || w0.dims[0] !== w1.dims[0] || w0.dims.slice(2).join() !== w1.dims.slice(2).join()) return void why('weights of different shapes');
    if (w0.dataType !== w1.dataType) return void why('weights of different element types');
    if (a.bn && b.bn && !this.duplicateBn(a.bn, b.bn)) {
      return void why(`'${b.bn.name}' is not a copy of '${a.bn.name}' with zero mean and shift: one BN cannot stand for both`);
    }
    const b0 = g.constantTensor(a.conv.inputs[2] ?? null), b1 = g.constantTensor(b.conv.inputs[2] ?? null);
    if (b0 && b1 && b0.dataType !== b1.dataType) return void why('biases of different element types');
    const [O, I0] = w0.dims, I1 = w1.dims[1];
    const inner = w0.dims.slice(2).reduce((x, y) => x * y, 1);
    // the stored values themselves, in their own element type (a double stays the same double)
    const d0 = w0.data() as Float32Array, d1 = w1.data() as Float32Array;
    const w = new (d0.constructor as Float32ArrayConstructor)(O * (I0 + I1) * inner);
    for (let o = 0; o < O; o++) {
      w.set(d0.subarray(o * I0 * inner, (o + 1) * I0 * inner), o * (I0 + I1) * inner);
      w.set(d1.subarray(o * I1 * inner, (o + 1) * I1 * inner), (o * (I0 + I1) + I0) * inner);
    }
    const inputs: Value[] = [];
    const x = concatChannels(this.model, [a.conv.inputs[0]!, b.conv.inputs[0]!], `${base}/whole`, add);
    this.pairConcats.push(x.producer!);
    inputs.push(x, g.addInitializer(Tensor.create(g.uniqueName(`${base}.weight`), w0.dataType, [O, I0 + I1, ...w0.dims.slice(2)], w)));
    if (b0 || b1) inputs.push(g.addInitializer(sumBiases(g.uniqueName(`${base}.bias`), O, [b0, b1].filter((t): t is Tensor => !!t))));
    const y = add.outputs[0]!;
    const convOut = a.bn ? g.newValue(`${base}_output`, a.conv.outputs[0]!.type) : y;
    g.removeNode(add);
    const conv = g.addNode({ opType: 'Conv', name: g.uniqueName(base), inputs, outputs: [convOut] }, a.bn ?? a.conv);
    for (const at of a.conv.attributes) conv.copyAttr(at);
    if (a.bn) {
      const bnBase = INPUT_PART.exec(a.bn.name)![1];
      const bn = g.addNode({ opType: 'BatchNormalization', name: g.uniqueName(bnBase), inputs: [convOut, ...a.bn.inputs.slice(1)], outputs: [y] }, a.bn);
      for (const at of a.bn.attributes) bn.copyAttr(at);
    }
    this.convsWritten.add(conv);
  }

  /** b is a with zero mean and shift (prn-parts.ts's second BN): a alone, after the sum, is exact. */
  private duplicateBn(a: Node, b: Node): boolean {
    const g = this.g;
    if (attrsKey(a) !== attrsKey(b) || b.outputs.filter(Boolean).length !== 1) return false;
    const vals = (n: Node, i: number) => {
      const t = g.constantTensor(n.inputs[i] ?? null);
      return t ? floatValues(t, t.name) : null;
    };
    const same = (i: number) => {
      const x = vals(a, i), y = vals(b, i);
      return !!x && !!y && x.length === y.length && x.every((v, j) => v === y[j]);
    };
    const zero = (i: number) => !!vals(b, i)?.every((v) => v === 0);
    return same(1) && same(4) && zero(2) && zero(3);
  }

  /** v when a reader reads it whole; a pair Concat's output is its parts' whole value. */
  private resolve(v: Value): Value | null {
    const p = v.producer;
    if (p && this.pairConcats.includes(p)) return this.whole(p.inputs[0]!, p.inputs[1]!);
    return v;
  }

  /** The whole value whose first channels are `a` and the rest `b`, written as whole layers; null when it cannot be. */
  private whole(a: Value, b: Value): Value | null {
    let m = this.memo.get(a);
    if (!m) this.memo.set(a, (m = new Map()));
    if (m.has(b)) return m.get(b)!;
    m.set(b, null); // (a cycle cannot be joined)
    const w = this.join(a, b);
    m.set(b, w);
    return w;
  }

  private join(a: Value, b: Value): Value | null {
    const g = this.g;
    const pa = a.producer, pb = b.producer;
    if (!pa || !pb || pa.hasSubgraphs || pb.hasSubgraphs) return null;
    const ma = PART.exec(pa.name), mb = PART.exec(pb.name);
    if (ma && mb && ma[2] === '0' && mb[2] === '1' && ma[1] === mb[1] && (pa.opType !== pb.opType || attrsKey(pa) !== attrsKey(pb))) {
      this.notes.push(`'${pa.name}' and '${pb.name}' stay in parts: ${pa.opType !== pb.opType ? 'different ops' : 'their attributes differ'}`);
      return null;
    }
    const name = a.name.replace(/_part0$/, '');
    const type = withChannels(a.type, (channelsOf(a) ?? NaN) + (channelsOf(b) ?? NaN));
    const out = () => g.newValue(name, type && Number.isFinite(type.shape?.[1] as number) ? type : undefined);
    if (ma && mb && ma[2] === '0' && mb[2] === '1' && ma[1] === mb[1] && pa.opType === pb.opType && attrsKey(pa) === attrsKey(pb) && a.producerIndex === 0 && b.producerIndex === 0) {
      const base = ma[1];
      const node = (inputs: Value[], o = out()) => {
        const n = g.addNode({ opType: pa.opType, domain: pa.domain || undefined, name: g.uniqueName(base), inputs, outputs: [o] }, pa);
        for (const at of pa.attributes) n.copyAttr(at);
        if (n.opType === 'Conv') this.convsWritten.add(n);
        return o;
      };
      if (pa.opType === 'Conv') {
        // output filters concatenate into one conv only without groups (group g splits its filters
        // by group, and a part's filters are not whole groups)
        if (pa.int('group', 1) !== 1) {
          this.notes.push(`'${pa.name}' and '${pb.name}' stay in parts: group ${pa.int('group', 1)}`);
          return null;
        }
        const x = this.resolve(pa.inputs[0]!);
        if (!x || x !== this.resolve(pb.inputs[0]!)) return null;
        const ps = [1, 2].map((i) => this.concatParams(pa, pb, i));
        if (!ps[0] || (ps[1] === null)) return null;
        return node([x, ps[0], ...(ps[1] ? [ps[1]] : [])]);
      }
      if (pa.opType === 'BatchNormalization') {
        if (pa.outputs.filter(Boolean).length !== 1) return null;
        const x = this.whole(pa.inputs[0]!, pb.inputs[0]!);
        const ps = [1, 2, 3, 4].map((i) => this.concatParams(pa, pb, i));
        if (!x || ps.some((p) => !p)) return null;
        return node([x, ...(ps as Value[])]);
      }
      const perChannel = (activationSpec(pa) && activationSpec(pa)!.slope === undefined) || POOLS.has(pa.opType) || pa.opType === 'Identity';
      if (perChannel && pa.inputs.slice(1).every((v, i) => v === pb.inputs[i + 1])) {
        const x = this.whole(pa.inputs[0]!, pb.inputs[0]!);
        return x && node([x, ...(pa.inputs.slice(1) as Value[])]);
      }
      if ((pa.opType === 'Add' || pa.opType === 'Mul') && pa.inputs.length === 2 && pb.inputs.length === 2) {
        const x = this.whole(pa.inputs[0]!, pb.inputs[0]!), y = x && this.whole(pa.inputs[1]!, pb.inputs[1]!);
        return x && y && node([x, y]);
      }
      return null;
    }
    if (ma && ma[2] === '0' && pa.opType === 'Add' && pa.inputs.length === 2) return this.maskedResidual(pa, b);
    return null;
  }

  /**
   * The masked residual: the parts form's `Add/part0(B[:k], S[:k])` with part 1 = B[k:] (x + 0)
   * written as the split form does: Split(B, [k, C-k]), Add(B0, S[:k]), Concat.
   */
  private maskedResidual(add: Node, b1: Value): Value | null {
    const g = this.g;
    for (const j of [0, 1]) {
      const branch = this.whole(add.inputs[j]!, b1);
      if (!branch) continue;
      const s = add.inputs[1 - j]!;
      const k = channelsOf(add.inputs[j]), C = channelsOf(branch);
      if (k === null || C === null || !(k > 0 && k < C)) return null;
      const addName = PART.exec(add.name)![1];
      const base = `${addName.replace(/\/Add$/, '')}/prn`;
      // an identity shortcut is the block input's first k channels: a Slice of the whole input; a
      // projection computes its k filters only and is kept
      const sp = s.producer, sm = sp && PART.exec(sp.name);
      const partner = sm && sm[2] === '0' ? this.byName.get(`${sm[1]}/part1`) : undefined;
      let shortcut: Value | null = this.resolve(s);
      if (partner?.graph && partner.outputs[0]) {
        const whole = this.whole(s, partner.outputs[0]);
        if (!whole) return null;
        shortcut = sliceChannels(this.model, whole, 0, k, `${base}/shortcut`, add);
        this.residualNodes.push(shortcut.producer!);
      }
      if (!shortcut) return null;
      const [bk, rest] = splitChannels(this.model, branch, [k, C - k], `${base}/branch`, add);
      this.residualNodes.push(bk.producer!);
      const sum = g.newValue(`${add.outputs[0]!.name.replace(/_part0$/, '')}_masked`, bk.type);
      const ins = [bk, bk];
      ins[1 - j] = shortcut;
      const n = g.addNode({ opType: 'Add', name: g.uniqueName(addName), inputs: ins, outputs: [sum] }, add);
      for (const at of add.attributes) n.copyAttr(at);
      const y = concatChannels(this.model, [sum, rest], base, add, g.newValue(add.outputs[0]!.name.replace(/_part0$/, ''), withChannels(branch.type, C)));
      this.residualNodes.push(y.producer!);
      for (const r of [bk.producer!, y.producer!, ...(shortcut.producer && this.residualNodes.includes(shortcut.producer) ? [shortcut.producer] : [])]) this.besideOf.set(r, n.name);
      return y;
    }
    return null;
  }

  /** Input i of two partial layers (per-channel parameters) as one tensor: part 0's then part 1's. */
  private concatParams(pa: Node, pb: Node, i: number): Value | null | undefined {
    const g = this.g;
    const va = pa.inputs[i], vb = pb.inputs[i];
    if (!va && !vb) return undefined;
    const ta = g.constantTensor(va ?? null), tb = g.constantTensor(vb ?? null);
    const stay = (why: string) => {
      this.notes.push(`'${pa.name}' and '${pb.name}' stay in parts: ${why}`);
      return null;
    };
    if (!va || !vb) return stay(`input ${i} on one part only`);
    if (!ta || !tb) return stay(`input ${i} is not constant`);
    if (ta.dims.slice(1).join() !== tb.dims.slice(1).join() || ta.dataType !== tb.dataType) return stay(`input ${i} of different shapes or element types`);
    // the stored values themselves, in their own element type
    const da = ta.data() as Float32Array, db = tb.data() as Float32Array;
    const all = new (da.constructor as Float32ArrayConstructor)(da.length + db.length);
    all.set(da);
    all.set(db, da.length);
    const name = ta.name.replace(/_part0$/, '');
    return g.addInitializer(Tensor.create(g.uniqueName(name), ta.dataType, [ta.dims[0] + tb.dims[0], ...ta.dims.slice(1)], all));
  }

  /**
   * A layer left in one part (a projection's k filters) takes its layer's name back: only where gpt's
   * record says its names are gpt's, or the node is one the joiner wrote (a user's `x/part0` stays),
   * and never while its part 1 is there (a pair left in parts keeps both names).
   */
  private rename(): void {
    const taken = new Set(this.g.nodes.map((n) => n.name));
    for (const n of this.g.nodes) {
      const m = PART.exec(n.name);
      if (m && m[2] === '0' && !taken.has(m[1]) && !taken.has(`${m[1]}/part1`) && (this.recorded || this.convsWritten.has(n))) {
        taken.delete(n.name);
        n.name = m[1];
        taken.add(m[1]);
      }
    }
  }
}

/**
 * The bias of a sum of two partial sums: the biases add. A double sums in double; float16 / bfloat16
 * in float32, rounded once to their type.
 */
function sumBiases(name: string, O: number, ts: Tensor[]): Tensor {
  if (ts.length === 1) return Tensor.create(name, ts[0].dataType, [O], ts[0].data() as Float32Array);
  if (ts[0].dataType === DataType.DOUBLE) {
    const sum = new Float64Array(O);
    for (const t of ts) (t.data() as Float64Array).forEach((v, i) => (sum[i] += v));
    return Tensor.create(name, DataType.DOUBLE, [O], sum);
  }
  const sum = new Float32Array(O);
  for (const t of ts) floatValues(t, t.name).forEach((v, i) => (sum[i] += v));
  return floatTensor(name, [O], sum, ts[0].dataType);
}
