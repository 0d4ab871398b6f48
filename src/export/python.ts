/**
 * Finding a Python that has PyTorch: $GPT_PYTHON, then `python3` on PATH, then Debian's
 * /usr/bin/python3 (a pyenv shim on PATH often has no torch while the system interpreter does).
 */
import { spawnSync } from 'node:child_process';

let cached: { python: string | null; tried: string[] } | undefined;

export function findTorchPython(env: NodeJS.ProcessEnv = process.env): { python: string | null; tried: string[] } {
  if (cached && env === process.env) return cached;
  const candidates = [env.GPT_PYTHON, 'python3', '/usr/bin/python3'].filter((c): c is string => !!c);
  const tried: string[] = [];
  let python: string | null = null;
  for (const c of [...new Set(candidates)]) {
    tried.push(c);
    const r = spawnSync(c, ['-c', 'import torch'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) {
      python = c;
      break;
    }
  }
  const found = { python, tried };
  if (env === process.env) cached = found;
  return found;
}
