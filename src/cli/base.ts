/**
 * The boundary between library and terminal: every command extends GptCommand, whose catch() turns a
 * GptError into one line on stderr ("gpt: <file>: <problem> (<fix>)") and a non-zero exit status, or,
 * under --json, into { error: { code, message, subject, hint } } on stdout with the same status.
 * Exit status 2 means a bad argument; 1 any other error.
 */
import { Command, Errors, Flags } from '@oclif/core';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GptError, isGptError } from '../errors';
import type { Model } from '../ir/model';
import { escapeText } from '../report/escape';
import { closest } from './suggest';
import { progressBar, steps, Steps } from './progress';

export abstract class GptCommand extends Command {
  /** -q / -v on every command. */
  static override baseFlags = {
    quiet: Flags.boolean({ char: 'q', description: 'print only the result: no warnings, no progress bar' }),
    verbose: Flags.boolean({ char: 'v', description: 'say more: on an internal error, the stack trace' }),
  };

  /** -q: warnings and progress are not printed. */
  protected get quiet(): boolean {
    return this.argv.includes('-q') || this.argv.includes('--quiet');
  }

  /**
   * Progress over steps of the given relative weights: a bar with an ETA on stderr when it is a TTY,
   * nothing when piped, with --json or -q. Call done() before printing the result.
   */
  protected progress(weights: number[], json: boolean): Steps {
    return steps(progressBar(!json && !this.quiet && !!process.stderr.isTTY), weights);
  }

  /** A warning on stderr, unless -q. */
  protected warning(message: string): void {
    if (!this.quiet) process.stderr.write(`gpt: warning: ${escapeText(message)}\n`);
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    if (err instanceof Errors.ExitError) throw err;
    const json = this.argv.includes('--json');
    let failure: CliFailure;
    if (isGptError(err)) {
      failure = { code: err.code, message: err.message, subject: err.subject ?? null, hint: err.hint ?? null, exit: err.code === 'E_ARG' ? 2 : 1 };
    } else if (err.oclif) {
      // oclif's parse errors (unknown flag, missing argument, bad option value) span several lines and
      // print the usage; the README promises one line: keep the problem, point to --help
      failure = { code: 'E_ARG', message: withFlagSuggestion(parseErrorLine(err.message), Object.keys((this.constructor as typeof Command).flags ?? {})), subject: null, hint: `see ${this.id ? `gpt ${this.id.replace(/:/g, ' ')}` : 'gpt'} --help`, exit: err.oclif.exit ?? 2 };
    } else {
      failure = { code: 'E_INTERNAL', message: `internal error: ${err.message.split('\n')[0]}`, subject: null, hint: 'run again with -v (or GPT_DEBUG=1) for the stack trace', exit: 1 };
      if (process.env.GPT_DEBUG || this.argv.includes('-v') || this.argv.includes('--verbose')) process.stderr.write(`${err.stack}\n`);
    }
    reportFailure(failure, json);
    process.exitCode = failure.exit;
    this.exit(failure.exit);
  }

  /** Print a JSON document on stdout. */
  protected printJson(obj: unknown): void {
    process.stdout.write(JSON.stringify(obj, null, 2) + '\n');
  }
}

/** A failed command as the user sees it: one line on stderr, or with --json an error document on stdout. */
export interface CliFailure {
  code: string;
  message: string;
  subject: string | null;
  hint: string | null;
  exit: number;
}

export function reportFailure(f: CliFailure, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify({ error: { code: f.code, message: f.message, subject: f.subject, hint: f.hint } }, null, 2) + '\n');
    return;
  }
  // names from the model may hold control characters: escaped on the terminal, as they are in JSON
  const head = f.subject ? `${f.subject}: ${f.message}` : f.message;
  process.stderr.write(`gpt: ${escapeText(f.hint ? `${head} (${f.hint})` : head)}\n`);
}

/** "Nonexistent flag: --jsn" -> "Nonexistent flag: --jsn; did you mean --json?" when one flag is that close. */
export function withFlagSuggestion(line: string, flags: string[]): string {
  const typed = /Nonexistent flags?: --([\w-]+)/.exec(line)?.[1];
  const guess = typed === undefined ? undefined : closest(typed, flags);
  return guess ? `${line}; did you mean --${guess}?` : line;
}

/** An oclif parse error's message as one line: its problem lines, without the help pointer and notes. */
export function parseErrorLine(message: string): string {
  let out = '';
  // eslint-disable-next-line no-control-regex
  for (const raw of message.replace(/\u001b\[[0-9;]*m/g, '').split('\n')) {
    const l = raw.trim().replace(/\s+/g, ' ');
    if (/^Note:/.test(l)) break;
    if (!l || /^See more help with/.test(l) || /^The following errors? occurred:?$/.test(l)) continue;
    out = out ? `${out}${out.endsWith(':') ? ' ' : ': '}${l}` : l;
  }
  return out.replace(/:$/, '') || 'bad arguments';
}

/**
 * A decimal number given as a flag value ("0.5", "2", "1e-3"): Number() alone would also take "",
 * " ", "0x10" and "Infinity".
 */
export function parseDecimal(value: string, flag: string, hint?: string): number {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(value.trim())) throw argError(`${flag} ${value}: expected a decimal number`, hint);
  return Number(value);
}

export function argError(message: string, hint?: string): GptError {
  return new GptError('E_ARG', message, { hint });
}

/** Flags several commands share, defined once so their help text stays the same. */
export const commonFlags = {
  dim: Flags.string({ description: 'value of a symbolic dimension of the model for the cost model, NAME=N, N from 1 to 1048576 (default 1)', multiple: true }),
  rules: Flags.string({ description: 'extra rule file or folder (repeatable)', multiple: true }),
};

/** --dim NAME=N values (1 <= N <= 2^20), for the cost model's symbolic dims. A null-prototype object: a dim may be named 'constructor'. */
export function parseDims(list: string[] | undefined): Record<string, number> {
  const dims: Record<string, number> = Object.create(null);
  for (const item of list ?? []) {
    const m = /^([^=]+)=(\d+)$/.exec(item);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 2 ** 20) {
      throw argError(`--dim ${escapeText(item)}: expected NAME=N with N from 1 to 1048576`, 'e.g. --dim batch=8');
    }
    dims[m[1]] = Number(m[2]);
  }
  return dims;
}

/**
 * A whole-number option in [min, max]: the ranges are documented in the README and each flag's
 * description, and checked here, at the boundary, so no option can drive gpt into hours or gigabytes.
 */
export function parseIntRange(value: string | number | undefined, flag: string, min: number, max: number, hint?: string): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value).trim();
  if (!/^[+-]?\d+$/.test(text)) throw argError(`${flag} ${escapeText(String(value))}: expected a whole number from ${min} to ${max}`, hint);
  const n = Number(text);
  if (!(n >= min && n <= max)) throw argError(`${flag} ${escapeText(String(value))} is outside ${min}..${max}`, hint);
  return n;
}

/** A decimal option in a range; `open` marks ends that are excluded ("(0, 1]"). */
export function parseDecimalRange(value: string | undefined, flag: string, min: number, max: number, open: { min?: boolean; max?: boolean } = {}, hint?: string): number | undefined {
  if (value === undefined) return undefined;
  const n = parseDecimal(value, flag, hint);
  const low = open.min ? n > min : n >= min;
  const high = open.max ? n < max : n <= max;
  if (!(Number.isFinite(n) && low && high)) {
    throw argError(`${flag} ${escapeText(value)} is outside ${open.min ? '(' : '['}${min}, ${max}${open.max ? ')' : ']'}`, hint);
  }
  return n;
}

/** --dim values must name symbolic dims the models have: a typo would otherwise be ignored without a word. */
export function checkDimNames(dims: Record<string, number>, models: { model: Model; file: string }[]): void {
  const known = new Set<string>();
  for (const { model } of models) {
    for (const v of model.graph.inputs) for (const d of v.declared?.shape ?? []) if (typeof d === 'string') known.add(d);
    for (const v of [...model.graph.outputs, ...model.graph.valueInfo]) for (const d of v.declared?.shape ?? []) if (typeof d === 'string') known.add(d);
  }
  for (const name of Object.keys(dims)) {
    if (!known.has(name)) {
      throw argError(`--dim ${escapeText(name)}: ${models.map((m) => escapeText(m.file)).join(', ')} has no symbolic dimension of that name`,
        known.size ? `its symbolic dims: ${[...known].map(escapeText).join(', ')}` : 'the model has no symbolic dims; leave --dim out');
    }
  }
}

/** Rule files a --rules list reads (a folder's .json files), for the output check. */
export function ruleInputFiles(paths: string[] | undefined): string[] {
  const out: string[] = [];
  for (const p of paths ?? []) {
    out.push(p);
    try {
      if (fs.statSync(p).isDirectory()) for (const f of fs.readdirSync(p)) if (f.endsWith('.json')) out.push(path.join(p, f));
    } catch {
      // missing: reported when the rules are loaded
    }
  }
  return out;
}

/**
 * What a subject says after naming `file`: '' when it is the file, the rest after "file: ", or null
 * when it does not start with it. The library names a loaded model by its resolved path
 * (model.sourcePath), the user typed it relative: both spellings are the same file.
 */
function afterFile(subject: string, file: string): string | null {
  for (const spelled of new Set([file, path.resolve(file)])) {
    if (subject === spelled) return '';
    if (subject.startsWith(`${spelled}: `)) return subject.slice(spelled.length + 2);
  }
  return null;
}

/**
 * Run a step on one model file: an error from it names the file first, once, as the user typed it
 * ("m.onnx: node 'x': ...").
 */
export function withFile<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isGptError(e) && e.subject !== file) {
      const rest = e.subject ? afterFile(e.subject, file) : '';
      const subject = rest === null ? `${file}: ${e.subject}` : rest ? `${file}: ${rest}` : file;
      if (subject !== e.subject) throw new GptError(e.code, e.message, { subject, hint: e.hint, cause: e });
    }
    throw e;
  }
}
