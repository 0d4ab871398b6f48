#!/usr/bin/env node
// The `gpt` command line (oclif). Commands live in dist/src/commands after `npm run build`.
require('@oclif/core').execute({ dir: __dirname }).catch((err) => {
  process.stderr.write(`gpt: ${err && err.message ? err.message.split('\n')[0] : String(err)}\n`);
  process.exit(1);
});
