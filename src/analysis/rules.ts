/**
 * Block rules: patterns kept as data in rules/*.json (as tfjs-converter keeps its op mappings), checked
 * against rules/rule.schema.json (strict draft-07) with ajv, then compiled into the form the matcher
 * walks. Composition follows TVM's dataflow patterns. A rule's `pattern` is a list of elements in
 * dataflow order:
 *
 *   { "id": "reduce", "op": "convBnAct", "inputs": ["$in"], "attrs": { "kernel": 1 },
 *     "channels": { "in": "C", "out": "C/2" }, "role": "conv" }
 *
 * - op: `A|B` alternatives; capitalised names are ONNX ops (any op of the op registry, src/ops),
 *   `@activation` is every single-node activation the registry knows, others are units (named sub-patterns
 *   with one input, defined under "units" in any loaded file; rules/units.json holds convBn,
 *   convBnAct, act, silu, hardSwishMul). A unit's `attrsTo` element takes the attrs of each use,
 *   and `with` overrides its elements by id.
 * - inputs: data inputs only (weights are not listed): '$in' (the block input), an earlier id, or
 *   'id*' for every repeat of a repeated element; default: the previous element.
 * - optional: tried present, then absent (the id then stands for its last input);
 *   repeat {min, max}: the element chained to itself, longest chain first.
 * - channels: 'C', 'C/2', 'M*4', '64'; a symbol is bound where first seen.
 * - residual: which elements are the Add, the shortcut and the branch.
 * A new block type is a new rule file; no TypeScript changes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type Ajv from 'ajv';
import type { ErrorObject } from 'ajv';
import { GptError, isGptError } from '../errors';
import { blockActivations, opInfo, registeredOps } from '../ops/registry';
import { readRegularFile } from '../onnx/files';
import { newAjv } from '../report/schema';

/** Largest rule file read (the shipped ones are a few KB). */
const MAX_RULE_FILE_BYTES = 1 << 20;

// ---------------------------------------------------------------------------------------------
// The file format (mirrors rules/rule.schema.json)

export type Role = 'conv' | 'shortcut' | 'projection' | 'mask' | 'add' | 'postAdd' | 'concat' | 'transition' | 'attention' | 'downsample';
export type RuleKind = 'residual' | 'osa' | 'elan' | 'plain' | 'downsample' | 'transition' | 'units';

/** Rules whose matches are blocks (a downsample, a transition or a units file is not). */
export function isBlockRule(r: { kind: RuleKind }): boolean {
  return r.kind === 'residual' || r.kind === 'osa' || r.kind === 'elan' || r.kind === 'plain';
}
export type Family = 'resnet' | 'darknet53' | 'vovnet' | 'plain';

export interface AttrConstraint {
  kernel?: number | number[];
  stride?: number | number[];
  group?: number | 'grouped' | 'depthwise';
  /** A Mul's constant operand (other ops unchecked): 'binaryMask' = only 0s and 1s, at least one of each, one per channel (PRN's channel mask). */
  constant?: 'binaryMask';
}
export interface ChannelConstraint {
  in?: string;
  out?: string;
}
export interface OverrideSpec {
  op?: string;
  attrs?: AttrConstraint;
  channels?: ChannelConstraint;
  optional?: boolean;
  role?: Role;
}
export interface ElementSpec extends OverrideSpec {
  id?: string;
  op: string;
  inputs?: string[];
  repeat?: { min: number; max: number };
  with?: Record<string, OverrideSpec>;
  /** Its output may also be read outside the block (a match is otherwise closed). */
  shared?: boolean;
}
export interface UnitSpec {
  description?: string;
  attrsTo?: string;
  pattern: ElementSpec[];
}
/** backbone: stages are built from the rule's matches; neck: matched only in a detector's neck. */
export type RulePart = 'backbone' | 'neck';
export interface RuleFile {
  name: string;
  kind: RuleKind;
  family?: Family;
  part?: RulePart;
  description?: string;
  reference?: string;
  units?: Record<string, UnitSpec>;
  pattern?: ElementSpec[];
  residual?: { add: string; shortcut: string; branch: string };
}

// ---------------------------------------------------------------------------------------------
// The compiled form the matcher walks

/** One way an element can be present: a single ONNX node, or a unit's sub-pattern. */
export type Alternative = { op: string } | { unit: string; pattern: Element[] };

export interface Element {
  id: string;
  alternatives: Alternative[];
  /** References: '$in', an earlier id (its last output) or 'id*' (all outputs of a repeated element). */
  inputs: string[];
  attrs?: AttrConstraint;
  channels?: ChannelConstraint;
  optional: boolean;
  repeat?: { min: number; max: number };
  role?: Role;
  /** Its output may also be read outside the block. */
  shared?: boolean;
}

export interface Rule {
  name: string;
  kind: RuleKind;
  family?: Family;
  part: RulePart;
  description: string;
  reference?: string;
  /** The file the rule came from. */
  file: string;
  pattern: Element[];
  residual?: { add: string; shortcut: string; branch: string };
}

/** The op class that stands for every single-node activation of the op registry (gates excepted). */
export const ACTIVATION_CLASS = '@activation';

// ---------------------------------------------------------------------------------------------
// Loading

/** The shipped rules/ folder: the package root is three folders above dist/src/analysis. */
export const SHIPPED_RULES_DIR = path.resolve(__dirname, '../../../rules');
const SCHEMA_FILE = 'rule.schema.json';

let validator: ReturnType<Ajv['compile']> | undefined;
function schemaValidator(): ReturnType<Ajv['compile']> {
  if (!validator) {
    const schema = JSON.parse(fs.readFileSync(path.join(SHIPPED_RULES_DIR, SCHEMA_FILE), 'utf8'));
    validator = newAjv({ allErrors: true, verbose: true, strict: true, strictRequired: false }).compile(schema);
  }
  return validator;
}

function ruleError(file: string, pointer: string, what: string): GptError {
  return new GptError('E_RULE', `${file} at ${pointer || '/'}: ${what}`, {
    hint: 'see rules/rule.schema.json for the format',
  });
}

/** One readable line from ajv's errors: the deepest location, and what each branch there expected. */
function describeAjvErrors(errors: ErrorObject[]): { pointer: string; what: string } {
  const real = errors.filter((e) => !['if', 'oneOf', 'anyOf', 'not'].includes(e.keyword));
  const pool = real.length ? real : errors;
  const depth = (e: ErrorObject) => e.instancePath.split('/').length;
  const deepest = Math.max(...pool.map(depth));
  const here = pool.filter((e) => depth(e) === deepest);
  const pointer = here[0].instancePath;
  const got = (d: unknown) => (typeof d === 'string' ? `"${d}"` : JSON.stringify(d));
  const typeName = (d: unknown) => (Array.isArray(d) ? 'array' : d === null ? 'null' : typeof d);
  // several branches that each wanted another type read best as one line
  const types = here.filter((e) => e.keyword === 'type').map((e) => String((e.params as { type: string }).type));
  const typeLine = types.length ? [`expected ${types.join(' or ')}, got ${typeName(here[0].data)}`] : [];
  const parts = typeLine.concat(here.filter((e) => e.keyword !== 'type').map((e) => {
    const p = e.params as Record<string, unknown>;
    const schema = e.parentSchema as { description?: string; properties?: Record<string, unknown> } | undefined;
    switch (e.keyword) {
      case 'additionalProperties':
        return `unknown property '${p.additionalProperty}' (allowed: ${Object.keys(schema?.properties ?? {}).join(', ') || 'none'})`;
      case 'required':
        return `missing property '${p.missingProperty}'`;
      case 'enum':
        return `expected one of ${(p.allowedValues as unknown[]).map(got).join(', ')}, got ${got(e.data)}`;
      case 'pattern':
        return `expected ${schema?.description ?? `a string matching ${p.pattern}`}, got ${got(e.data)}`;
      case 'false schema':
        return `property not allowed here (a file of kind 'units' has only units)`;
      case 'propertyNames':
        return `bad key ${got(p.propertyName)}`;
      default:
        return `${e.message ?? e.keyword}${e.data !== undefined && typeof e.data !== 'object' ? `, got ${got(e.data)}` : ''}`;
    }
  }));
  return { pointer, what: [...new Set(parts)].join('; or ') };
}

/** Parse a rule file and check it against the schema. */
function readRuleFile(file: string): RuleFile {
  // a regular file of at most 1 MiB: a FIFO would block, /dev/zero would never end
  const text = readRegularFile(file, file, { maxBytes: MAX_RULE_FILE_BYTES, code: 'E_RULE' }).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw ruleError(file, '', `not valid JSON (${(e as Error).message})`);
  }
  const validate = schemaValidator();
  if (!validate(json)) {
    const { pointer, what } = describeAjvErrors(validate.errors ?? []);
    throw ruleError(file, pointer, what);
  }
  return json as RuleFile;
}

interface UnitEntry {
  spec: UnitSpec;
  file: string;
  pointer: string;
}

/**
 * Turn a file's pattern into Elements: ids filled in, default inputs made explicit, references
 * and op names checked, units expanded per use (each use may override the unit's elements).
 */
function compilePattern(
  specs: ElementSpec[], file: string, pointer: string, units: Map<string, UnitEntry>, expanding: string[], budget: Budget = newBudget(file),
): Element[] {
  const out: Element[] = [];
  budget.elements += specs.length;
  if (budget.elements > MAX_COMPILED_ELEMENTS) {
    throw ruleError(file, pointer, `units expand to more than ${MAX_COMPILED_ELEMENTS} elements (units used inside units multiply)`);
  }
  const seen = new Map<string, Element>();
  specs.forEach((s, i) => {
    const at = `${pointer}/${i}`;
    const id = s.id ?? `e${i}`;
    if (seen.has(id)) throw ruleError(file, `${at}/id`, `duplicate element id '${id}'`);
    const inputs = s.inputs ?? [i === 0 ? '$in' : out[i - 1].id];
    inputs.forEach((ref, k) => {
      if (ref === '$in') return;
      const base = ref.replace(/\*$|:\d$/, '');
      const target = seen.get(base);
      if (!target) throw ruleError(file, `${at}/inputs/${k}`, `'${ref}' does not name an earlier element (use $in or one of: ${[...seen.keys()].join(', ') || 'none'})`);
      if (ref.endsWith('*') && !target.repeat) throw ruleError(file, `${at}/inputs/${k}`, `'${ref}' spreads the repeats of '${base}', which has no repeat`);
    });
    if (s.repeat && inputs.length !== 1) throw ruleError(file, at, `a repeated element needs exactly one input, got ${inputs.length}`);
    if (s.repeat && s.repeat.min > s.repeat.max) throw ruleError(file, `${at}/repeat`, `min ${s.repeat.min} is above max ${s.repeat.max}`);
    const alternatives = s.op.split('|').flatMap((name): Alternative[] => {
      if (name.startsWith('@')) {
        if (name !== ACTIVATION_CLASS) throw ruleError(file, `${at}/op`, `unknown op class '${name}' (known: ${ACTIVATION_CLASS})`);
        if (s.with) throw ruleError(file, `${at}/with`, `'with' overrides the elements of a unit, but '${name}' is a class of ops`);
        return blockActivations().map((op) => ({ op }));
      }
      if (/^[A-Z]/.test(name)) {
        if (!opInfo(name)) throw ruleError(file, `${at}/op`, `unknown ONNX op '${name}' (known: ${registeredOps().filter((o) => o.domain === '').map((o) => o.opType).join(', ')})`);
        if (s.with) throw ruleError(file, `${at}/with`, `'with' overrides the elements of a unit, but '${name}' is an op`);
        return [{ op: name }];
      }
      return [{ unit: name, pattern: expandUnit(name, s, file, `${at}/op`, units, expanding, budget) }];
    });
    const el: Element = {
      id, alternatives, inputs,
      attrs: alternatives.some((a) => 'op' in a) ? s.attrs : undefined,
      channels: s.channels, optional: s.optional ?? false, repeat: s.repeat, role: s.role, ...(s.shared ? { shared: true } : {}),
    };
    seen.set(id, el);
    out.push(el);
  });
  return out;
}

/** A unit's pattern as used at one place: the use's attrs go to the unit's `attrsTo` element, `with` overrides by id. */
function expandUnit(name: string, use: ElementSpec, file: string, at: string, units: Map<string, UnitEntry>, expanding: string[], budget: Budget): Element[] {
  const unit = units.get(name);
  if (!unit) throw ruleError(file, at, `unknown unit '${name}' (known: ${[...units.keys()].sort().join(', ')})`);
  if (expanding.includes(name)) throw ruleError(unit.file, unit.pointer, `unit '${name}' uses itself (${[...expanding, name].join(' -> ')})`);
  const overrides: Record<string, OverrideSpec> = { ...use.with };
  if (use.attrs) {
    if (!unit.spec.attrsTo) throw ruleError(file, at.replace(/\/op$/, '/attrs'), `unit '${name}' takes no attrs (it names no attrsTo element)`);
    overrides[unit.spec.attrsTo] = { ...overrides[unit.spec.attrsTo], attrs: { ...overrides[unit.spec.attrsTo]?.attrs, ...use.attrs } };
  }
  const ids = unit.spec.pattern.map((e, i) => e.id ?? `e${i}`);
  for (const key of Object.keys(overrides)) {
    if (!ids.includes(key)) throw ruleError(file, at.replace(/\/op$/, '/with'), `unit '${name}' has no element '${key}' (it has: ${ids.join(', ')})`);
  }
  const specs = unit.spec.pattern.map((e, i) => {
    const o = overrides[ids[i]];
    if (!o) return e;
    // attrs meant for a nested unit travel down through its own attrsTo
    return { ...e, ...o, attrs: o.attrs ? { ...e.attrs, ...o.attrs } : e.attrs };
  });
  return compilePattern(specs, unit.file, `${unit.pointer}/pattern`, units, [...expanding, name], budget);
}

/**
 * Bounds on what a rule may cost. Units are expanded per use (each use may override), so a unit used
 * twice in a unit used twice... grows exponentially: the compiled size is capped. The matcher tries an
 * optional element present then absent, a repeat at every length, every alternative: the number of
 * shapes one pattern can take is estimated and capped, and the matcher counts its steps (matcher.ts).
 */
export const MAX_COMPILED_ELEMENTS = 4096;
export const MAX_PATTERN_SHAPES = 1_000_000;
interface Budget {
  elements: number;
}
function newBudget(_file: string): Budget {
  return { elements: 0 };
}

/**
 * How many ways the matcher may have to try one pattern against one place: a repeat multiplies by its
 * number of lengths, an optional element adds its absence. Alternatives add up only where they can
 * start at the same node: a node has one op type, so alternatives whose first ops differ (Relu, SiLU's
 * Sigmoid -> Mul, HardSwish's Add -> Clip -> Mul -> Div, Mish's Softplus -> Tanh -> Mul) exclude each
 * other, and the element counts the largest group of alternatives sharing a first op. A rough measure
 * of backtracking, capped at Infinity.
 */
export function patternShapes(pattern: Element[]): number {
  let total = 1;
  const present = new Map<string, number>();
  for (const el of pattern) {
    let ways = alternativeShapes(el.alternatives) * (el.repeat ? el.repeat.max - el.repeat.min + 1 : 1);
    if (el.optional) {
      present.set(el.id, ways);
      // reading another optional element's output N (`part:1`): there only when that one is, so
      // the pair takes (its present ways x these) + (both absent), not the product
      const of = el.inputs.map((r) => /^(.*):\d$/.exec(r)?.[1]).find((id) => id !== undefined && present.has(id));
      if (of !== undefined) {
        const p = present.get(of)!;
        total = (total / (p + 1)) * (p * ways + 1);
        if (!Number.isFinite(total) || total > MAX_PATTERN_SHAPES * 1000) return Infinity;
        continue;
      }
      ways += 1;
    }
    total *= ways;
    if (!Number.isFinite(total) || total > MAX_PATTERN_SHAPES * 1000) return Infinity;
  }
  return total;
}

/** The op types a pattern's first node can have, or null when any (it does not start from its input). */
function firstOps(pattern: Element[]): Set<string> | null {
  const out = new Set<string>();
  for (const [i, el] of pattern.entries()) {
    if (i === 0 ? el.inputs.some((r) => r !== '$in') : !el.inputs.every((r) => r === pattern[i - 1].id)) return null;
    for (const alt of el.alternatives) {
      const ops = 'op' in alt ? new Set([alt.op]) : firstOps(alt.pattern);
      if (!ops) return null;
      ops.forEach((o) => out.add(o));
    }
    if (!el.optional && !(el.repeat && el.repeat.min === 0)) return out;
  }
  return null; // every element may be absent
}

/** The largest sum of shapes over alternatives that may start at the same node (first ops overlapping, or unknown). */
function alternativeShapes(alts: Alternative[]): number {
  const items = alts.map((a) => ('op' in a ? { ops: new Set([a.op]) as Set<string> | null, shapes: 1 } : { ops: firstOps(a.pattern), shapes: patternShapes(a.pattern) }));
  const group = items.map((_, i) => i);
  const find = (i: number): number => (group[i] === i ? i : (group[i] = find(group[i])));
  const overlap = (a: Set<string> | null, b: Set<string> | null) => !a || !b || [...a].some((o) => b.has(o));
  for (let i = 0; i < items.length; i++) for (let j = 0; j < i; j++) if (overlap(items[i].ops, items[j].ops)) group[find(i)] = find(j);
  const sums = new Map<number, number>();
  items.forEach((it, i) => sums.set(find(i), (sums.get(find(i)) ?? 0) + it.shapes));
  return Math.max(0, ...sums.values());
}

function collectUnits(files: { file: string; spec: RuleFile }[], into = new Map<string, UnitEntry>()): Map<string, UnitEntry> {
  for (const { file, spec } of files) {
    for (const [name, unit] of Object.entries(spec.units ?? {})) {
      const prior = into.get(name);
      if (prior && prior.file !== file) throw ruleError(file, `/units/${name}`, `unit '${name}' is already defined in ${prior.file}; pick another name`);
      into.set(name, { spec: unit, file, pointer: `/units/${name}` });
    }
  }
  return into;
}

function compileRule(file: string, spec: RuleFile, units: Map<string, UnitEntry>): Rule {
  const pattern = spec.pattern ? compilePattern(spec.pattern, file, '/pattern', units, []) : [];
  // compile every unit too, so a broken unit is reported even when no rule uses it yet
  for (const [name, u] of Object.entries(spec.units ?? {})) compilePattern(u.pattern, file, `/units/${name}/pattern`, units, [name]);
  if (spec.residual) {
    const ids = new Set(pattern.map((e) => e.id));
    for (const key of ['add', 'shortcut', 'branch'] as const) {
      const ref = spec.residual[key];
      if (ref !== '$in' && !ids.has(ref.replace(/\*$/, ''))) throw ruleError(file, `/residual/${key}`, `'${ref}' names no element of the pattern`);
    }
  }
  if (spec.kind === 'residual' && !spec.residual) throw ruleError(file, '', `a rule of kind 'residual' needs a 'residual' section`);
  const shapes = patternShapes(pattern);
  if (shapes > MAX_PATTERN_SHAPES) {
    throw ruleError(file, '/pattern', `the pattern can be tried in ${Number.isFinite(shapes) ? shapes.toExponential(1) : 'too many'} ways (optional elements, repeats and unit alternatives multiply), over the limit of ${MAX_PATTERN_SHAPES}; the matcher would take too long`);
  }
  return {
    name: spec.name, kind: spec.kind, family: spec.family, part: spec.part ?? 'backbone', description: spec.description ?? spec.name,
    reference: spec.reference, file, pattern, residual: spec.residual,
  };
}

/** Rule files under a folder (the schema itself excluded), or the file itself. */
function ruleFilesAt(p: string): string[] {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    throw new GptError('E_IO', 'no such rule file or folder', { subject: p });
  }
  if (!st.isDirectory()) return [path.resolve(p)];
  return fs.readdirSync(p).filter((f) => f.endsWith('.json') && !f.endsWith('.schema.json')).sort().map((f) => path.resolve(p, f));
}

function loadFiles(files: string[]): Rule[] {
  const parsed = files.map((file) => ({ file, spec: readRuleFile(file) }));
  const units = collectUnits(parsed);
  const names = new Map<string, string>();
  const rules: Rule[] = [];
  for (const { file, spec } of parsed) {
    const prior = names.get(spec.name);
    if (prior) throw ruleError(file, '/name', `rule '${spec.name}' is already defined in ${prior}; pick another name`);
    names.set(spec.name, file);
    rules.push(compileRule(file, spec, units));
  }
  return rules;
}

/**
 * The shipped rules plus any extra rule files or folders (`--rules DIR|FILE`). Unit-only files are
 * read for their units and left out of the result.
 */
export function loadRules(paths: string[] = []): Rule[] {
  const files = [SHIPPED_RULES_DIR, ...paths].flatMap(ruleFilesAt);
  return loadFiles([...new Set(files)]).filter((r) => r.kind !== 'units');
}

/**
 * Check one rule file against the schema and compile it (units resolve against the shipped ones
 * and the file's own). Throws E_RULE naming the file, the JSON pointer and what was expected.
 */
export function validateRuleFile(file: string): Rule {
  const spec = readRuleFile(file);
  const shipped = ruleFilesAt(SHIPPED_RULES_DIR)
    .filter((f) => path.resolve(f) !== path.resolve(file))
    .map((f) => {
      try {
        return { file: f, spec: readRuleFile(f) };
      } catch (e) {
        if (isGptError(e)) return null; // a broken shipped file is reported when it is validated itself
        throw e;
      }
    })
    .filter((x): x is { file: string; spec: RuleFile } => x !== null);
  const units = collectUnits([...shipped, { file, spec }]);
  return compileRule(file, spec, units);
}

/** The same as loadRules (the name src/commands/convert.ts uses). */
export const loadRuleSet = loadRules;

/** A summary of the rules that would be used (shipped plus extra paths). */
export function listRules(paths: string[] = []): { name: string; kind: RuleKind; family?: Family; description: string; file: string }[] {
  return loadRules(paths).map(({ name, kind, family, description, file }) => ({ name, kind, family, description, file }));
}
