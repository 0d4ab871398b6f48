/**
 * The objects behind a Structure. A Structure names its nodes and values (it is what the JSON
 * reports and metadata_props carry); the passes and convert() work with the Node and Value objects
 * themselves, kept here beside each Block and Stage. A name is read from a Node only where it is
 * written out, so rewiring a node (which may change an unnamed node's label) never loses it.
 */
import { GptError } from '../errors';
import type { Node, Value } from '../ir/graph';
import type { Block, Stage, Structure } from './structure-types';

export interface BlockRefs {
  nodes: Node[];
  input: Value | null;
  output: Value | null;
  /** The rule's element paths ('reduce.act.f.gate') -> nodes. */
  parts: Map<string, Node[]>;
  roles: Map<string, Node[]>;
  residual?: { add: Node; shortcut: Value; branch: Value };
}

export interface StageRefs {
  entry: Node[];
  /** The nodes of the stage's cross-stage partial (expand, split, transitions, Concat), when it has one. */
  csp?: { nodes: Node[]; input: Value; output: Value; concat: Node; transitionAfter: Node[] };
}

const blocks = new WeakMap<Block, BlockRefs>();
const structures = new WeakMap<Structure, { stem: Node[]; head: Node[] }>();
const stages = new WeakMap<Stage, StageRefs>();

export function setBlockRefs(b: Block, r: BlockRefs): void {
  blocks.set(b, r);
}
export function setStageRefs(s: Stage, r: StageRefs): void {
  stages.set(s, r);
}

export function setStructureRefs(s: Structure, r: { stem: Node[]; head: Node[] }): void {
  structures.set(s, r);
}

/** The stem and head nodes of a recognised structure (null for one built elsewhere). */
export function structureRefs(s: Structure): { stem: Node[]; head: Node[] } | null {
  return structures.get(s) ?? null;
}

/** The objects behind a block; E_GRAPH when the block was not recognised in this process. */
export function blockRefs(b: Block): BlockRefs {
  const r = blocks.get(b);
  if (!r) throw new GptError('E_GRAPH', `block ${b.id} has no graph objects`, { subject: b.id, hint: 'recognise the structure of this same model object (recognize())' });
  return r;
}

export function hasBlockRefs(b: Block): boolean {
  return blocks.has(b);
}

export function stageEntry(s: Stage): Node[] {
  return stages.get(s)?.entry ?? [];
}

/** The objects of a stage's cross-stage partial (null when it has none or was not recognised here). */
export function stageCsp(s: Stage): StageRefs['csp'] | null {
  return stages.get(s)?.csp ?? null;
}

/** Every node of a stage: its entry, its blocks' nodes and its cross-stage partial's. */
export function stageNodes(s: Stage): Node[] {
  return [...stageEntry(s), ...s.blocks.flatMap((b) => blockRefs(b).nodes), ...(stageCsp(s)?.nodes ?? [])];
}

/** The blocks part 1 of a CSP split goes through (and that ELAN stacks): all but a projecting first block (ResNet's entry). */
export function computationBlocks(stage: Stage): { entry: Block[]; blocks: Block[] } {
  const all = stage.blocks.filter((b) => b.kind !== 'downsample');
  const first = all[0];
  const entryBlock = (stage as Stage & { entryBlock?: string }).entryBlock;
  if (first && (first.id === entryBlock || first.residual?.shortcut === 'projection')) return { entry: [first], blocks: all.slice(1) };
  return { entry: [], blocks: all };
}

/** Nodes a pass added, by stage index. */
export type AddedNodes = Map<number, Node[]>;

/**
 * The stages as gradient-path stage specs (name and node names): entry and block nodes, plus what a
 * pass added to each stage. Names are read now, from the live nodes.
 */
export function stageSpecs(structure: Structure, added: AddedNodes = new Map()): { name: string; nodes: string[] }[] {
  return structure.stages.map((s) => {
    const nodes = hasStageObjects(s) ? [...stageNodes(s), ...(added.get(s.index) ?? [])].map((n) => n.name) : [...s.entry, ...s.blocks.flatMap((b) => b.nodes)];
    return { name: `stage ${s.index}`, nodes: [...new Set(nodes)] };
  });
}

function hasStageObjects(s: Stage): boolean {
  return s.blocks.every((b) => blocks.has(b));
}
