/** oclif hook: an unknown command is one line on stderr and exit status 2, like every other error. */
import type { Hook } from '@oclif/core';

const hook: Hook.CommandNotFound = async function (opts) {
  const known = opts.config.commandIDs.map((id) => id.replace(/:/g, ' ')).sort();
  process.stderr.write(`gpt: unknown command '${opts.id.replace(/:/g, ' ')}' (commands: ${known.join(', ')}; see gpt --help)\n`);
  process.exit(2);
};

export default hook;
