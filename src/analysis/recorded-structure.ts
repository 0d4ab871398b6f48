/**
 * A converted model remembers its structure: convert() writes the stages it worked with — the source's
 * blocks that remain and the nodes the pass added — into metadata_props (`gpt.structure`), because
 * the rules describe plain architectures and do not recognise the blocks a pass builds. recognize()
 * uses the record when every node it names is still in the graph, so analyze and profile attribute a
 * converted model's nodes to the right stages.
 */
import type { Node } from '../ir/graph';
import type { Model } from '../ir/model';
import { AddedNodes, blockRefs, hasBlockRefs, setBlockRefs, setStageRefs, setStructureRefs, stageEntry, structureRefs } from './structure-refs';
import type { Block, Stage, Structure } from './structure-types';

export const STRUCTURE_KEY = 'gpt.structure';

interface RecordedBlock {
  id: string;
  rule: string;
  kind: string;
  nodes: string[];
}
interface RecordedStage {
  index: number;
  resolution: Stage['resolution'];
  channels: number | null;
  entry: string[];
  blocks: RecordedBlock[];
}
interface Recorded {
  family: Structure['family'];
  stem: string[];
  head: string[];
  stages: RecordedStage[];
}

/**
 * Record `structure`, plus per-stage nodes a pass added, keeping only nodes still in the graph. The
 * blocks' and stages' objects are read here and turned into names (this is the metadata boundary).
 */
export function recordStructure(model: Model, structure: Structure, added: AddedNodes, target: string): void {
  const live = new Set(model.graph.nodes);
  const named = (ns: Node[]) => ns.filter((n) => live.has(n)).map((n) => n.name);
  const byName = new Map(model.graph.nodes.map((n) => [n.name, n]));
  const nodesOf = (b: Block) => (hasBlockRefs(b) ? blockRefs(b).nodes : b.nodes.map((n) => byName.get(n)).filter((n): n is Node => !!n));
  const placed = new Set<Node>();
  const stages: RecordedStage[] = structure.stages.map((s) => {
    const entryNodes = stageEntry(s).length || !s.entry.length ? stageEntry(s) : s.entry.map((n) => byName.get(n)).filter((n): n is Node => !!n);
    const blocks: RecordedBlock[] = [];
    for (const b of s.blocks) {
      const ns = nodesOf(b).filter((n) => live.has(n) && !placed.has(n));
      ns.forEach((n) => placed.add(n));
      if (ns.length) blocks.push({ id: b.id, rule: b.rule, kind: b.kind, nodes: ns.map((n) => n.name) });
    }
    const entry = named(entryNodes);
    entryNodes.forEach((n) => placed.add(n));
    const extra = (added.get(s.index) ?? []).filter((n) => live.has(n) && !placed.has(n));
    extra.forEach((n) => placed.add(n));
    if (extra.length) blocks.push({ id: `s${s.index}.${target}`, rule: `gpt ${target}`, kind: target, nodes: extra.map((n) => n.name) });
    return { index: s.index, resolution: s.resolution, channels: s.channels, entry, blocks };
  });
  const refs = structureRefs(structure);
  const keep = (ns: string[]) => ns.filter((n) => byName.has(n));
  const rec: Recorded = {
    family: structure.family, stages,
    stem: refs ? named(refs.stem) : keep(structure.stem),
    head: refs ? named(refs.head) : keep(structure.head),
  };
  model.setMetadata(STRUCTURE_KEY, JSON.stringify(rec));
}

const FAMILIES: Structure['family'][] = ['resnet', 'darknet53', 'vovnet', 'plain', 'unknown'];
const isNames = (x: unknown): x is string[] => Array.isArray(x) && x.every((n) => typeof n === 'string');

function isRecorded(x: unknown): x is Recorded {
  const r = x as Recorded | null;
  return !!r && typeof r === 'object' && FAMILIES.includes(r.family) && isNames(r.stem) && isNames(r.head) && Array.isArray(r.stages) &&
    r.stages.every((s) => !!s && typeof s === 'object' && typeof s.index === 'number' && isNames(s.entry) && Array.isArray(s.blocks) &&
      (s.channels === null || typeof s.channels === 'number') && (s.resolution === null || Array.isArray(s.resolution)) &&
      s.blocks.every((b) => !!b && typeof b === 'object' && typeof b.id === 'string' && typeof b.rule === 'string' && isNames(b.nodes)));
}

/** The recorded structure, or null when there is none or the graph no longer has its nodes. */
export function recordedStructure(model: Model): Structure | null {
  const text = model.metadata()[STRUCTURE_KEY];
  if (!text) return null;
  let rec: unknown;
  try {
    rec = JSON.parse(text);
  } catch {
    return null;
  }
  // a record written by another tool or edited by hand must not crash an analysis: anything that is
  // not the shape recordStructure writes means "no record", and the rules are used
  if (!isRecorded(rec)) return null;
  const live = new Set(model.graph.nodes.map((n) => n.name));
  const all = [...rec.stem, ...rec.head, ...rec.stages.flatMap((s) => [...s.entry, ...s.blocks.flatMap((b) => b.nodes)])];
  if (!all.every((n) => live.has(n))) return null; // edited since: fall back to the rules
  const placed = new Set(all);
  const constantOnly = (n: Node) => n.outputs.every((o) => !o || model.graph.isConstant(o));
  const byName = new Map(model.graph.nodes.map((n) => [n.name, n]));
  const objects = (ns: string[]) => ns.map((n) => byName.get(n)!);
  const stages: Stage[] = rec.stages.map((s) => {
    const stage: Stage = {
      index: s.index,
      resolution: s.resolution,
      channels: s.channels,
      entry: s.entry,
      blocks: s.blocks.map((b): Block => {
        const block: Block = { id: b.id, rule: b.rule, kind: b.kind, nodes: b.nodes, roles: {}, input: '', output: '', channelsIn: null, channelsOut: null };
        setBlockRefs(block, { nodes: objects(b.nodes), input: null, output: null, parts: new Map(), roles: new Map() });
        return block;
      }),
    };
    setStageRefs(stage, { entry: objects(s.entry) });
    return stage;
  });
  const result: Structure = {
    family: rec.family,
    stem: rec.stem,
    head: rec.head,
    stages,
    unmatched: model.graph.nodes.filter((n) => !placed.has(n.name) && !constantOnly(n)).map((n) => n.name),
    warnings: [],
  };
  setStructureRefs(result, { stem: objects(rec.stem), head: objects(rec.head) });
  return result;
}
