/**
 * What every pass is: options checked, then a plan (every change decided and checked, nothing
 * touched: it may fail), then apply (the plan carried out: it cannot fail halfway). convert() drives
 * the pipeline: recognise, measure, plan, (strict check), apply, validate, measure, report.
 */
import type { GradientPathSummary } from '../analysis/gradient-path';
import type { Rule } from '../analysis/rules';
import type { AddedNodes } from '../analysis/structure-refs';
import type { DetectorStructure } from '../analysis/detector';
import type { Structure } from '../analysis/structure-types';
import type { Node } from '../ir/graph';
import type { Model } from '../ir/model';
import type { ConvertOptions } from './options';

export interface PassContext {
  model: Model;
  structure: Structure;
  /** The model's file (or 'model'), for errors. */
  subject: string;
  strict: boolean;
  /** The rules the structure was recognised with (undefined: the shipped ones). */
  rules?: Rule[];
  /** The model read as a detector (backbone + neck + heads) before any change, or null when it is not one; undefined: not looked at. */
  detector?: DetectorStructure | null;
  /**
   * A pass with several steps (ELAN, then the CSP split) calls this at the start of each: convert()
   * measures the model there and reports each step's effect. A one-step pass need not call it.
   */
  step(label: string): void;
}

/** A block or stage left as it was, and why. */
export interface Unconverted {
  block: string;
  reason: string;
}

export interface Plan {
  /** What the plan leaves as it was (under strict, convert() fails before applying anything). */
  unconverted: Unconverted[];
  /**
   * Ids among `unconverted` that the target does not apply to (a detector neck's SPP: a pooling
   * block, no conv chain to restack): reported with their reason, not counted as left undone.
   */
  notApplicable?: string[];
  warnings: string[];
}

/** What applying a plan did; convert() turns it into the report. */
export interface PassOutcome {
  converted: { block: string; stage: number; change: string }[];
  /** Blocks or stages left as they were (the plan's, and any a later step of the pass could not convert). */
  unconverted: Unconverted[];
  /** Parameters whose values did not come from the source model (new layers, new input channels). */
  freshParams: number;
  notes: string[];
  warnings: string[];
  /** Nodes the pass added, by stage index. */
  added: AddedNodes;
}

export function addTo(added: AddedNodes, stage: number, nodes: Iterable<Node>): void {
  added.set(stage, [...(added.get(stage) ?? []), ...nodes]);
}

/** The figures convert() measured, as a pass's notes use them. */
export interface StepFigures {
  label: string;
  from: { macs: number; params: number; paths: GradientPathSummary };
  to: { macs: number; params: number; paths: GradientPathSummary };
}
export interface Figures {
  before: { network: GradientPathSummary; stages: GradientPathSummary[] };
  after: { network: GradientPathSummary; stages: GradientPathSummary[] };
  /** One entry per ctx.step() call: the model at that step's start and at the next one's (or the end). */
  steps: StepFigures[];
}

export interface Pass<O, P extends Plan> {
  readonly target: string;
  /** Check and default this target's options: E_ARG naming the bad one. */
  options(o: ConvertOptions): O;
  /** The options as recorded in the report and in metadata_props. */
  recorded(o: O): Record<string, unknown>;
  /** Decide and check every change; reads the model, changes nothing. */
  plan(ctx: PassContext, o: O): P;
  /** Carry the plan out. */
  apply(ctx: PassContext, plan: P, o: O): PassOutcome;
  /** Notes from the figures convert() measured (before, after, and at each step). */
  notes?(f: Figures, outcome: PassOutcome, structure: Structure): string[];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyPass = Pass<any, Plan>;
