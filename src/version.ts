/** The package version, read once from package.json. */
import * as fs from 'node:fs';
import * as path from 'node:path';

function readVersion(): string {
  for (const p of [path.resolve(__dirname, '../../package.json'), path.resolve(__dirname, '../package.json')]) {
    try {
      return JSON.parse(fs.readFileSync(p, 'utf8')).version as string;
    } catch {
      /* try the next location */
    }
  }
  return '0.0.0';
}

export const TOOL_VERSION = readVersion();
