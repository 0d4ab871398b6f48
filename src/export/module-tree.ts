/**
 * The module tree of an exported model: the recognised structure (analysis/structure.ts, or the
 * structure a converted model records) as nested groups of nodes — `stem`, `stages[i]` (with its
 * `entry` and `blocks`), the detector's `neck[k]` blocks, and `head` / `detect` — each of which
 * model.py writes as a small class. A group becomes one call only when it can be: every value it
 * reads from outside is computed before its first node; otherwise its nodes stay in its parent, op
 * by op, and its children move up (so every model still exports).
 */
import { recognizeDetector } from '../analysis/detector';
import { recognize } from '../analysis/structure';
import { blockRefs, hasBlockRefs, stageCsp, stageEntry, structureRefs } from '../analysis/structure-refs';
import type { Stage, Structure } from '../analysis/structure-types';
import type { Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';

/** What a group stands for in the recorded structure (written into model.py for export_onnx). */
export type GroupRole =
  | { kind: 'stem' | 'head' | 'entry' | 'neck' | 'added' }
  | { kind: 'stage'; stage: Stage; added: { id: string; rule: string; kind: string }[] }
  | { kind: 'block'; id: string; rule: string; blockKind: string };

export interface Group {
  /** Class name before de-duplication ('CSPStage', 'DarknetResidual'...). */
  className: string;
  /** Attribute in the parent: a module ('stem', 'entry') or, with `list`, a list of them ('stages', 'blocks'). */
  attr: string;
  list: boolean;
  /** Every node of the group, its children's included, in graph order. */
  nodes: Node[];
  children: Group[];
  /** Values read from outside / read outside (set by planModuleTree). */
  inputs: Value[];
  outputs: Value[];
  /** Node-name prefix its layer names drop. */
  namePrefix: string;
  role: GroupRole;
  /** Where the parent calls it: a position between the graph's nodes (set by planModuleTree). */
  emitAt?: number;
}

/** Block classes named as a person would name them (the paper's and the reference code's names). */
const CLASS_OF_RULE: Record<string, string> = {
  'darknet-residual': 'DarknetResidual', 'resnet-basic': 'BasicBlock', 'resnet-bottleneck': 'Bottleneck',
  'resnext-bottleneck': 'ResNeXtBottleneck', 'vovnet-osa': 'OSAModule', elan: 'ELANBlock', 'yolo-conv-set': 'ConvSet', 'yolo-tiny-conv-set': 'ConvSet', 'plain-conv': 'ConvBnAct',
  spp: 'SPP', 'spp-torch': 'SPP', sppf: 'SPPF', 'csp-c3': 'C3', 'downsample-conv': 'Downsample', 'downsample-pool': 'Downsample',
};
const STAGE_OF_FAMILY: Record<Structure['family'], string> = { darknet53: 'DarknetStage', resnet: 'ResNetStage', vovnet: 'OSAStage', plain: 'ConvStage', unknown: 'Stage' };

export function blockClassName(rule: string): string {
  if (CLASS_OF_RULE[rule]) return CLASS_OF_RULE[rule];
  if (rule.startsWith('gpt ')) return `${rule.slice(4).toUpperCase()}Block`;
  const s = rule.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0].toUpperCase() + w.slice(1)).join('');
  return /^[A-Za-z]/.test(s) ? s : `Block${s}`;
}

function group(className: string, attr: string, list: boolean, nodes: Node[], children: Group[], role: GroupRole): Group {
  return { className, attr, list, nodes, children, inputs: [], outputs: [], namePrefix: '', role };
}

/**
 * The Net's groups (the root's children), planned and checked. `dataNode`: a node that computes
 * something at run time (constant-only nodes are folded into buffers).
 */
export function planModuleTree(model: Model, dataNode: (n: Node) => boolean, isConstValue: (v: Value) => boolean): { root: Group; structure: Structure | null } {
  const g = model.graph;
  const order = new Map(g.nodes.map((n, i) => [n, i]));
  const root = group('Net', '', false, [...g.nodes], [], { kind: 'head' });
  let structure: Structure | null = null;
  try {
    structure = recognize(model);
  } catch {
    return { root, structure: null };
  }
  const byName = new Map(g.nodes.map((n) => [n.name, n]));
  const taken = new Set<Node>();
  const take = (ns: Iterable<Node | undefined>): Node[] => {
    const out: Node[] = [];
    for (const n of ns) if (n && !taken.has(n) && order.has(n)) (taken.add(n), out.push(n));
    return out;
  };
  const sorted = (ns: Node[]) => ns.sort((a, b) => (order.get(a) as number) - (order.get(b) as number));
  const named = (ns: string[]) => ns.map((n) => byName.get(n));

  let detector: ReturnType<typeof recognizeDetector> | null = null;
  try {
    detector = recognizeDetector(model);
    if (!detector.detector) detector = null;
  } catch {
    detector = null;
  }

  const refs = structureRefs(structure);
  const stem = take(refs ? refs.stem : named(structure.stem));
  if (stem.length) root.children.push(group('Stem', 'stem', false, sorted(stem), [], { kind: 'stem' }));

  for (const s of structure.stages) {
    const entryNodes = take(stageEntry(s).length ? stageEntry(s) : named(s.entry));
    const children: Group[] = [];
    if (entryNodes.length) children.push(group('Downsample', 'entry', false, sorted(entryNodes), [], { kind: 'entry' }));
    const own: Node[] = [];
    const added: { id: string; rule: string; kind: string }[] = [];
    const blocks: { b: Group; nodes: Set<Node>; input: Set<Value>; joined: Node[] }[] = [];
    const pseudo: Node[] = [];
    for (const b of s.blocks) {
      const ns = hasBlockRefs(b) ? blockRefs(b).nodes : named(b.nodes).filter((n): n is Node => !!n);
      if (b.rule.startsWith('gpt ')) {
        // nodes a conversion added (recorded as one pseudo block per stage): CSP's split and
        // transitions belong to the stage; PRN's masked residual to the block it sits in (below)
        added.push({ id: b.id, rule: b.rule, kind: b.kind });
        pseudo.push(...ns);
        continue;
      }
      const mine = take(ns);
      if (!mine.length) continue;
      const set = new Set(mine);
      const input = new Set<Value>();
      for (const n of mine) for (const v of n.inputs) if (v && !isConstValue(v) && !(v.producer && set.has(v.producer))) input.add(v);
      blocks.push({ b: group(blockClassName(b.rule), 'blocks', true, mine, [], { kind: 'block', id: b.id, rule: b.rule, blockKind: b.kind }), nodes: set, input, joined: [] });
    }
    // a PRN node joins the block whose nodes (or input) it reads entirely: the masked residual
    for (const n of sorted(take(pseudo))) {
      const reads = n.inputs.filter((v): v is Value => !!v && !isConstValue(v));
      // a shortcut's slice reads the block input (which is also the previous block's output): input first
      const home = blocks.find((x) => reads.length > 0 && reads.every((v) => x.input.has(v)))
        ?? blocks.find((x) => reads.length > 0 && reads.every((v) => (v.producer && x.nodes.has(v.producer)) || x.input.has(v)));
      if (home && added.some((a) => a.kind === 'prn')) {
        home.nodes.add(n);
        home.joined.push(n);
        home.b.nodes.push(n);
      } else own.push(n);
    }
    for (const x of blocks) {
      const extra = x.joined;
      if (extra.length) {
        // the masked residual as its own small module, so the re-exported ONNX can name its nodes
        const set = new Set(extra);
        const between = x.b.nodes.filter((n) => !set.has(n) && n.inputs.some((v) => v?.producer && set.has(v.producer)) && n.outputs.some((o) => o?.consumers.some((u) => set.has(u.node))));
        x.b.children.push(group('MaskedResidual', 'residual', false, sorted([...extra, ...between]), [], { kind: 'added' }));
        x.b.className = `PRN${x.b.className}`;
      }
      sorted(x.b.nodes);
      children.push(x.b);
    }
    own.push(...take(stageCsp(s)?.nodes ?? []));
    // nodes no rule claimed that sit on a way from the stage to itself (YOLOv5's C3 convs around its
    // bottlenecks) are the stage's too: without them it could not be one call
    own.push(...take(between(g.nodes, [...children.flatMap((c) => c.nodes), ...own]).filter((n) => !taken.has(n))));
    const all = sorted([...children.flatMap((c) => c.nodes), ...own]);
    if (!all.length) continue;
    const csp = !!stageCsp(s) || added.some((a) => a.kind === 'csp');
    const elan = blocks.length > 0 && blocks.every((x) => x.b.className === 'ELANBlock');
    const className = csp ? 'CSPStage' : elan ? 'ELANStage' : added.some((a) => a.kind === 'prn') ? 'PRNStage' : STAGE_OF_FAMILY[structure.family];
    root.children.push(group(className, 'stages', true, all, children, { kind: 'stage', stage: s, added }));
  }

  if (detector) {
    for (const nb of detector.neck.blocks) {
      const ns = take(named(nb.nodes));
      if (ns.length) root.children.push(group(blockClassName(nb.rule), 'neck', true, sorted(ns), [], { kind: 'neck' }));
    }
    const heads = take(named(detector.heads.nodes));
    // the decode's index tensors computed from constants alone (ConstantOfShape, Where... feeding a
    // ScatterND) serve the heads only: they go with them
    const fromConstants = new Set<Node>();
    for (const n of g.nodes) if (n.inputs.every((v) => !v || isConstValue(v) || (v.producer && fromConstants.has(v.producer))) && !g.inputs.some((i) => n.inputs.includes(i))) fromConstants.add(n);
    const inHeads = new Set(heads);
    for (let i = g.nodes.length - 1; i >= 0; i--) {
      const n = g.nodes[i];
      if (taken.has(n) || !fromConstants.has(n)) continue;
      const outs = n.outputs.filter((o): o is Value => !!o);
      if (outs.some((o) => g.outputs.includes(o)) || !outs.every((o) => o.consumers.every((u) => inHeads.has(u.node))) || !outs.some((o) => o.consumers.length)) continue;
      inHeads.add(n);
      heads.push(...take([n]));
    }
    if (heads.length) root.children.push(group('Detect', 'detect', false, sorted(heads), [], { kind: 'head' }));
  } else {
    const head = take(refs ? refs.head : named(structure.head));
    if (head.length) root.children.push(group('Head', 'head', false, sorted(head), [], { kind: 'head' }));
  }
  root.children = checkChildren(root, model, order, dataNode, isConstValue);
  return { root, structure };
}

/**
 * Keep the children that can be one call; a child that cannot gives its children to its parent. A call
 * is placed where its inputs are ready (`emitAt`, a position between the parent's nodes): at its first
 * node, or later when it reads a value computed after that (a detector's heads read the neck, which
 * the graph order interleaves with them). Every reader of its outputs must come after it.
 */
function checkChildren(parent: Group, model: Model, order: Map<Node, number>, dataNode: (n: Node) => boolean, isConstValue: (v: Value) => boolean): Group[] {
  const failed = new Set<Group>();
  for (let attempt = 0; attempt < 64; attempt++) {
    // the children after failures: a failed child's children take its place
    const kids: Group[] = [];
    const expand = (gs: Group[]) => {
      for (const c of gs) {
        if (failed.has(c)) expand(c.children);
        else kids.push(c);
      }
    };
    expand(parent.children);
    const firstOf = (c: Group) => order.get(c.nodes.find(dataNode) ?? c.nodes[0]) ?? Infinity;
    kids.sort((x, y) => firstOf(x) - firstOf(y));
    const owner = new Map<Node, Group>();
    for (const c of kids) for (const n of c.nodes) owner.set(n, c);
    const inParent = new Set(parent.nodes);
    const placed = new Map<Group, number>();
    let bad: Group | null = null;
    for (const c of kids) {
      if (!interface_(c, model, dataNode, isConstValue)) {
        bad = c;
        break;
      }
    }
    // place each call after the siblings it reads (a sibling that comes later in the graph may go first)
    let todo = bad ? [] : [...kids];
    while (!bad && todo.length) {
      const next: Group[] = [];
      for (const c of todo) {
        let at = firstOf(c) - 0.5;
        for (const v of c.inputs) {
          const p = v.producer;
          if (!p || !inParent.has(p)) continue;
          const h = owner.get(p);
          const ready = h ? placed.get(h) : (order.get(p) as number) + 0.5;
          if (ready === undefined) {
            at = NaN;
            break;
          }
          at = Math.max(at, ready + (h ? 0.001 : 0));
        }
        if (Number.isNaN(at)) next.push(c);
        else {
          c.emitAt = at;
          placed.set(c, at);
        }
      }
      if (next.length === todo.length) bad = next[0];
      todo = next;
    }
    // the parent's own nodes must read the children's outputs after the calls
    if (!bad) {
      for (const n of parent.nodes) {
        if (owner.has(n) || !dataNode(n)) continue;
        for (const v of n.inputs) {
          const h = v?.producer ? owner.get(v.producer) : undefined;
          if (h && (placed.get(h) as number) >= (order.get(n) as number)) bad = h;
        }
        if (bad) break;
      }
    }
    if (bad) {
      failed.add(bad);
      continue;
    }
    for (const c of kids) c.children = checkChildren(c, model, order, dataNode, isConstValue);
    return kids;
  }
  return [];
}

/** Nodes outside `members` on a data path from one member to another (the members' convex hull). */
function between(nodes: readonly Node[], members: Node[]): Node[] {
  const set = new Set(members);
  const below = new Set<Node>();
  for (const n of nodes) {
    if (set.has(n)) continue;
    if (n.inputs.some((v) => v?.producer && (set.has(v.producer) || below.has(v.producer)))) below.add(n);
  }
  const above = new Set<Node>();
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (set.has(n)) continue;
    if (n.outputs.some((o) => o?.consumers.some((u) => set.has(u.node) || above.has(u.node)))) above.add(n);
  }
  return nodes.filter((n) => below.has(n) && above.has(n));
}

/** The values a group reads from outside and those read outside it; false when it cannot be a call. */
function interface_(c: Group, model: Model, dataNode: (n: Node) => boolean, isConstValue: (v: Value) => boolean): boolean {
  const set = new Set(c.nodes);
  const data = c.nodes.filter(dataNode);
  if (!data.length || c.nodes.some((n) => n.hasSubgraphs)) return false;
  const inputs: Value[] = [];
  const outputs: Value[] = [];
  for (const n of data) {
    for (const v of n.inputs) {
      if (!v || isConstValue(v) || (v.producer && set.has(v.producer)) || inputs.includes(v)) continue;
      inputs.push(v);
    }
    for (const o of n.outputs) {
      if (o && (o.consumers.some((u) => !set.has(u.node)) || model.graph.outputs.includes(o)) && !outputs.includes(o)) outputs.push(o);
    }
  }
  if (!inputs.length || !outputs.length) return false;
  c.inputs = inputs;
  c.outputs = outputs;
  const names = data.map((n) => n.name);
  let prefix = names[0].slice(0, names[0].lastIndexOf('/') + 1);
  while (prefix && !names.every((nm) => nm.startsWith(prefix))) prefix = prefix.slice(0, prefix.slice(0, -1).lastIndexOf('/') + 1);
  c.namePrefix = prefix;
  return true;
}
