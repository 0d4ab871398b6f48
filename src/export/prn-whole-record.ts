/**
 * The structure record of a PRN parts model once prn-whole.ts has joined its parts: the old record
 * names nodes that are gone (`<layer>/part0`, `<layer>/in1`, `<owner>/parts/Add`), so it is read
 * again by the rules from the whole tensors, with the residuals' new nodes recorded as PRN's own.
 * The rules the conversion used may not be the shipped ones (convert --rules) and a family may be
 * read only in part by the shipped rules: where the rules' reading does not give each stage the
 * blocks the old record has (the same rules, as many times), the old record is kept instead, its
 * names mapped to the joined layers', and a note says so. Never a silent loss of blocks.
 */
import { STRUCTURE_KEY, recordStructure } from '../analysis/recorded-structure';
import { recognize } from '../analysis/structure';
import { blockRefs, hasBlockRefs, setBlockRefs, type AddedNodes } from '../analysis/structure-refs';
import type { Node } from '../ir/graph';
import type { Model } from '../ir/model';

interface OldBlock { id: string; rule: string; kind?: string; nodes: string[] }
interface OldStage { index: number; entry: string[]; blocks: OldBlock[] }
interface OldRecord { stem: string[]; head: string[]; stages: OldStage[] }

/** The blocks a rule read, per stage, as `rule x count` (PRN's own 'gpt ...' entries left out). */
function ruleCounts(stages: { blocks: { rule: string }[] }[]): string {
  return JSON.stringify(stages.map((s) => {
    const c: Record<string, number> = {};
    for (const b of s.blocks) if (!b.rule.startsWith('gpt ')) c[b.rule] = (c[b.rule] ?? 0) + 1;
    return Object.entries(c).sort(([x], [y]) => x.localeCompare(y));
  }));
}

/** A parts-form node name as the joined layer is named: `/partN`, `/inN`, `/parts/...` suffixes dropped. */
export function baseName(name: string): string {
  let s = name;
  for (let prev = ''; prev !== s;) {
    prev = s;
    s = s.replace(/\/parts\/(Add|Concat)(_\d+)?$/, '').replace(/\/(part|in)[01]$/, '');
  }
  return s;
}

/**
 * Record the joined model's structure. `own`: the nodes the joiner added for the residuals, each
 * with the name of the node it stands beside (the residual's Add), to place it in a stage. Returns
 * the notes to give the user.
 */
export function rerecordJoined(model: Model, residualNodes: Node[], besideOf: Map<Node, string>): string[] {
  const text = model.metadata()[STRUCTURE_KEY];
  if (!text) return [];
  let old: OldRecord | null = null;
  try {
    old = JSON.parse(text) as OldRecord;
    if (!Array.isArray(old?.stages)) old = null;
  } catch {
    old = null;
  }
  const prnNames = new Set<string>();
  for (const s of old?.stages ?? []) for (const b of s.blocks ?? []) if (String(b.rule).startsWith('gpt ')) for (const n of b.nodes ?? []) prnNames.add(n);
  const g = model.graph;
  model.setMetadata(STRUCTURE_KEY, '');
  const structure = recognize(model);
  const notes: string[] = [];
  const live = residualNodes.filter((n) => n.graph);
  if (old && ruleCounts(structure.stages) !== ruleCounts(old.stages)) {
    // the rules read other blocks than the conversion recorded (custom rules, a family read in part):
    // the conversion's record, on the joined layers' names
    model.setMetadata(STRUCTURE_KEY, JSON.stringify(mapRecord(old, model, live, besideOf)));
    notes.push(`the shipped rules read the joined model's stages as ${ruleCounts(structure.stages)}, the conversion recorded ${ruleCounts(old.stages)}: the conversion's record is kept (on the joined layers' names)`);
    return notes;
  }
  const own = new Set<Node>([...live, ...g.nodes.filter((n) => prnNames.has(n.name))]);
  const added: AddedNodes = new Map();
  for (const s of structure.stages) {
    for (const b of s.blocks) {
      if (!hasBlockRefs(b)) continue;
      const r = blockRefs(b);
      const mine = r.nodes.filter((n) => own.has(n));
      if (!mine.length) continue;
      setBlockRefs(b, { ...r, nodes: r.nodes.filter((n) => !own.has(n)) });
      added.set(s.index, [...(added.get(s.index) ?? []), ...mine]);
      mine.forEach((n) => own.delete(n));
    }
  }
  if (own.size) notes.push(`${own.size} node(s) PRN added are in no block the rules read, e.g. '${[...own][0].name}'`);
  recordStructure(model, structure, added, 'prn');
  return notes;
}

/** The old record with every name mapped to a live node (each once), the residuals' nodes in their stage's PRN entry. */
function mapRecord(old: OldRecord, model: Model, residualNodes: Node[], besideOf: Map<Node, string>): OldRecord {
  const liveNames = new Set(model.graph.nodes.map((n) => n.name));
  const placed = new Set<string>();
  const map = (ns: string[]) => {
    const out: string[] = [];
    for (const n of ns ?? []) {
      const b = liveNames.has(n) ? n : baseName(n);
      if (liveNames.has(b) && !placed.has(b)) {
        placed.add(b);
        out.push(b);
      }
    }
    return out;
  };
  const rec = { ...old, stem: map(old.stem), head: map(old.head), stages: old.stages.map((s) => ({ ...s, entry: map(s.entry), blocks: s.blocks.map((b) => ({ ...b, nodes: map(b.nodes) })) })) };
  for (const n of residualNodes) {
    if (placed.has(n.name)) continue;
    const beside = besideOf.get(n);
    const stage = rec.stages.find((s) => s.blocks.some((b) => b.nodes.includes(beside ?? '')));
    if (!stage) continue;
    let prn = stage.blocks.find((b) => b.rule === 'gpt prn');
    if (!prn) stage.blocks.push((prn = { id: `s${stage.index}.prn`, rule: 'gpt prn', kind: 'prn', nodes: [] }));
    prn.nodes.push(n.name);
    placed.add(n.name);
  }
  for (const s of rec.stages) s.blocks = s.blocks.filter((b) => b.nodes.length);
  return rec;
}
