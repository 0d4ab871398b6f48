/**
 * The boundary between library and terminal: every command extends GptCommand, whose catch() turns a
 * GptError into one line on stderr ("gpt: <file>: <problem> (<fix>)") and a non-zero exit status.
 * Exit status 2 means a bad argument; 1 any other error.
 */
import { Command, Errors, Flags } from '@oclif/core';
import { GptError, isGptError } from '../errors';

export abstract class GptCommand extends Command {
  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    if (isGptError(err)) {
      process.stderr.write(`gpt: ${err.oneLine()}\n`);
      process.exitCode = err.code === 'E_ARG' ? 2 : 1;
      this.exit(process.exitCode);
    }
    if (err instanceof Errors.ExitError) throw err;
    if (err.oclif) {
      // oclif's parse errors (unknown flag, missing argument, bad option value) span several lines and
      // print the usage; the README promises one line: keep the problem, point to --help
      process.stderr.write(`gpt: ${parseErrorLine(err.message)} (see ${this.id ? `gpt ${this.id.replace(/:/g, ' ')}` : 'gpt'} --help)\n`);
      this.exit(err.oclif.exit ?? 2);
    }
    process.stderr.write(`gpt: internal error: ${err.message.split('\n')[0]}\n`);
    if (process.env.GPT_DEBUG) process.stderr.write(`${err.stack}\n`);
    this.exit(1);
  }

  /** Print a JSON document on stdout. */
  protected printJson(obj: unknown): void {
    process.stdout.write(JSON.stringify(obj, null, 2) + '\n');
  }
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
  dim: Flags.string({ description: 'value of a symbolic dimension for the cost model, NAME=N (default 1)', multiple: true }),
  rules: Flags.string({ description: 'extra rule file or folder (repeatable)', multiple: true }),
};

/** --dim NAME=N values (N >= 1), for the cost model's symbolic dims. */
export function parseDims(list: string[] | undefined): Record<string, number> {
  const dims: Record<string, number> = {};
  for (const item of list ?? []) {
    const m = /^([^=]+)=(\d+)$/.exec(item);
    if (!m || Number(m[2]) < 1) {
      throw argError(`--dim ${item}: expected NAME=N with N >= 1`, 'e.g. --dim batch=8');
    }
    dims[m[1]] = Number(m[2]);
  }
  return dims;
}
