/**
 * The boundary between library and terminal: every command extends GptCommand, whose catch() turns a
 * GptError into one line on stderr ("gpt: <file>: <problem> (<fix>)") and a non-zero exit status.
 * Exit status 2 means a bad argument; 1 any other error.
 */
import { Command, Errors } from '@oclif/core';
import { GptError, isGptError } from '../errors';

export abstract class GptCommand extends Command {
  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    if (isGptError(err)) {
      process.stderr.write(`gpt: ${err.oneLine()}\n`);
      process.exitCode = err.code === 'E_ARG' ? 2 : 1;
      this.exit(process.exitCode);
    }
    if (err instanceof Errors.ExitError) throw err;
    if (err.oclif) throw err; // oclif's own parse errors keep their messages and exit codes
    process.stderr.write(`gpt: internal error: ${err.message.split('\n')[0]}\n`);
    if (process.env.GPT_DEBUG) process.stderr.write(`${err.stack}\n`);
    this.exit(1);
  }

  /** Print a JSON document on stdout. */
  protected printJson(obj: unknown): void {
    process.stdout.write(JSON.stringify(obj, null, 2) + '\n');
  }
}

export function argError(message: string, hint?: string): GptError {
  return new GptError('E_ARG', message, { hint });
}
