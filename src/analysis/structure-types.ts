/**
 * The architecture as the paper sees it: stem, stages (grouped by resolution), blocks, and each
 * block's roles. Produced by structure.ts from the rules in rules/; consumed by the analysis report
 * and by the PRN / CSP / ELAN passes. Everything refers to nodes and values by name, so a report
 * can be serialized as JSON and a pass can look the objects up in the Graph.
 */

/** A recognised block (one match of a rule). */
export interface Block {
  /** Stable id: "s<stage>.b<block>" */
  id: string;
  /** Name of the rule (rules/*.json "name") that matched. */
  rule: string;
  /** The rule's block kind, e.g. "residual", "osa", "downsample". */
  kind: string;
  /** All nodes of the block, in graph order. */
  nodes: string[];
  /** Role -> node names, e.g. { conv: [...], shortcut: [...], add: [...], concat: [...], transition: [...] }. */
  roles: Record<string, string[]>;
  /** The value the block reads (its input). */
  input: string;
  /** The value the block produces (its output). */
  output: string;
  /** Residual blocks: the Add node, its shortcut operand value and its branch operand value. */
  residual?: {
    add: string;
    shortcutValue: string;
    branchValue: string;
    /** identity: shortcut is the block input; projection: a conv (+BN) on the block input. */
    shortcut: 'identity' | 'projection';
    /** Nodes of the projection (Conv, BN, ...) when there is one. */
    projectionNodes: string[];
    /** Nodes after the Add inside the block (e.g. the final Relu of a ResNet block). */
    postAdd: string[];
  };
  channelsIn: number | null;
  channelsOut: number | null;
}

export interface Stage {
  index: number;
  /** Spatial size [H, W] of the stage's blocks' outputs (null when unknown). */
  resolution: [number | string | null, number | string | null] | null;
  /** Nodes at the start of the stage that change resolution or width (stride-2 conv, MaxPool), if any. */
  entry: string[];
  blocks: Block[];
  channels: number | null;
}

export interface Structure {
  family: 'resnet' | 'darknet53' | 'vovnet' | 'unknown';
  stem: string[];
  stages: Stage[];
  head: string[];
  /** Nodes no rule explained (by name). */
  unmatched: string[];
  warnings: string[];
}
