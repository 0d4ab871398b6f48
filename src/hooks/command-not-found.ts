/**
 * oclif hook: an unknown command is one line on stderr (or a JSON error with --json) and exit
 * status 2, with "did you mean" when a command is a small edit away.
 *
 * oclif joins the words after the command into the id it could not find ("inspct model.onnx" ->
 * "inspct:model.onnx"): the unknown command is the known topic words, if any, plus the next word.
 */
import type { Hook } from '@oclif/core';
import { reportFailure } from '../cli/base';
import { closest } from '../cli/suggest';

const hook: Hook.CommandNotFound = async function (opts) {
  const words = opts.id.split(':');
  const topics = new Set(opts.config.topics.map((t) => t.name));
  let n = 1;
  while (n < words.length && topics.has(words.slice(0, n).join(':'))) n++;
  const typed = words.slice(0, n).join(' ');
  const known = opts.config.commandIDs.map((id) => id.replace(/:/g, ' ')).sort();
  const guess = closest(typed, known);
  reportFailure({
    code: 'E_ARG',
    message: `unknown command '${typed}'${guess ? `; did you mean '${guess}'?` : ''}`,
    subject: null,
    hint: `commands: ${known.join(', ')}; see gpt --help`,
    exit: 2,
  }, (opts.argv ?? []).includes('--json') || words.includes('--json'));
  process.exit(2);
};

export default hook;
