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

/**
 * A cross-stage partial around a stage's blocks (CSPNet, Wang et al. 2020, Fig. 2): the stage input
 * split in two, part 1 through the blocks, part 2 across the stage, both joined by a Concat with
 * 1x1 transitions before it (on part 1), after it, or both. Recognised around any run of blocks
 * (CSPDarknet, CSPResNet, CSPResNeXt, a CSP neck block), so a model that is already CSP says so.
 */
export interface CrossStagePartial {
  /**
   * How the input is split: one Split node, two Slices, two 1x1 convs on the same input, or the
   * layers that make the input written once per part ('producer': `split` names part 2's copy,
   * `input` is part 1's value, no tensor holding the undivided input).
   */
  splitOp: 'split' | 'slice' | 'conv' | 'producer';
  /** Widths of part 1 (through the blocks) and part 2 (across the stage). */
  parts: [number | null, number | null];
  /** Where the transitions sit: 'both' (CSPNet's own), 'first' (after the Concat only), 'last' (on part 1 only), 'none'. */
  fusion: 'both' | 'first' | 'last' | 'none';
  /** The 1x1 conv (+BN, act) in front of the split that widens the stage input (timm's conv_exp), if any. */
  expand: string[];
  /** The split nodes (Split, two Slices, or both 1x1 conv units). */
  split: string[];
  /** Transition on part 1 before the Concat. */
  transitionBefore: string[];
  concat: string;
  /** Transition after the Concat. */
  transitionAfter: string[];
  /** The value the cross-stage partial reads and the one it produces. */
  input: string;
  output: string;
}

/** What share of a stage (or the network) the rules explain. */
export interface Coverage {
  /** Recognised blocks. */
  blocks: number;
  /** Recognised blocks plus block-like nodes no rule explained (a residual Add, a channel Concat). */
  candidates: number;
  /** The block-like nodes no rule explained, by name. */
  unexplained: string[];
  /** Nodes no rule explained, by name. */
  unmatched: string[];
}

export interface Stage {
  index: number;
  /** Spatial size [H, W] of the stage's blocks' outputs (null when unknown). */
  resolution: [number | string | null, number | string | null] | null;
  /** Nodes at the start of the stage that change resolution or width (stride-2 conv, MaxPool), if any. */
  entry: string[];
  blocks: Block[];
  channels: number | null;
  /** Set when the stage is already cross-stage partial. */
  csp?: CrossStagePartial;
  /** Recognised blocks against candidates, and what no rule explained between this stage's blocks. */
  coverage?: Coverage;
}

export interface Structure {
  family: 'resnet' | 'darknet53' | 'vovnet' | 'plain' | 'unknown';
  stem: string[];
  stages: Stage[];
  head: string[];
  /** Nodes no rule explained (by name). */
  unmatched: string[];
  warnings: string[];
  /** The whole network's coverage; stem and head included in the candidates. */
  coverage?: Coverage & {
    /** Distinct feature-map resolutions after the stem (global pooling excluded). */
    resolutions: number;
  };
  /** Why the structure cannot be trusted (fewer stages than resolution changes): convert refuses it. */
  errors?: string[];
}
