/**
 * npm run bench -- baseline [REF]: analysis and conversion of this checkout side by side with an
 * older commit (default: the tag or commit in BASELINE_REF below), in one process, in alternating
 * rounds with a rotating order, so a loaded machine slows both alike. Only the public API is used
 * (loadModel, analyze, convert), so any two versions compare.
 *
 * The baseline is checked out with `git worktree add --detach` under .bench/, shares this
 * checkout's node_modules and is compiled once. Not a test: it prints what it measured.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The last commit before the core restructuring (op registry, plan -> apply passes). */
export const BASELINE_REF = '6d40d42';

interface Api {
  loadModel(file: string): unknown;
  saveModel(model: unknown, file: string): void;
  analyze(model: unknown): unknown;
  convert(model: unknown, options: Record<string, unknown>): { model: unknown };
  buildSample(name: string, options?: Record<string, unknown>): unknown;
}

const repo = path.resolve(__dirname, '..', '..', '..');

function baselineApi(ref: string): Api {
  const dir = path.join(repo, '.bench', `baseline-${ref.replace(/[^A-Za-z0-9._-]/g, '_')}`);
  if (!fs.existsSync(path.join(dir, 'dist', 'src', 'index.js'))) {
    if (!fs.existsSync(dir)) execFileSync('git', ['-C', repo, 'worktree', 'add', '--detach', dir, ref], { stdio: 'inherit' });
    if (!fs.existsSync(path.join(dir, 'node_modules'))) fs.symlinkSync(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'));
    execFileSync(process.execPath, [path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { stdio: 'inherit' });
  }
  return require(path.join(dir, 'dist', 'src', 'index.js')) as Api;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function time(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export function benchBaseline(ref = BASELINE_REF, rounds = 5): void {
  const current = require(path.join(repo, 'dist', 'src', 'index.js')) as Api;
  const base = baselineApi(ref);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpt-bench-baseline-'));
  try {
    const files: Record<string, string> = {};
    for (const [name, opts] of [['darknet53', { resolution: 256 }], ['resnet50', {}], ['vovnet39', {}]] as const) {
      files[name] = path.join(tmp, `${name}.onnx`);
      current.saveModel(current.buildSample(name, opts), files[name]);
    }
    const jobs: { label: string; run: (api: Api) => void }[] = [];
    for (const name of Object.keys(files)) {
      jobs.push({ label: `${name}: load + analyze`, run: (api) => void api.analyze(api.loadModel(files[name])) });
      for (const to of ['prn', 'csp', 'elan']) {
        if (to === 'prn' && name === 'vovnet39') continue; // no residual: nothing to convert
        jobs.push({ label: `${name}: load + convert --to ${to}`, run: (api) => void api.convert(api.loadModel(files[name]), { to }) });
      }
    }
    console.log(`\n## Analysis and conversion: this checkout vs ${ref}, ${rounds} alternating rounds, medians`);
    console.log(`${'job'.padEnd(36)} ${'now'.padStart(9)} ${ref.padStart(9)}  ratio now/${ref}`);
    const ratios: number[] = [];
    for (const job of jobs) {
      const now: number[] = [];
      const old: number[] = [];
      job.run(current); // warm-up: JIT and file cache for both
      job.run(base);
      for (let r = 0; r < rounds; r++) {
        if (r % 2 === 0) { now.push(time(() => job.run(current))); old.push(time(() => job.run(base))); }
        else { old.push(time(() => job.run(base))); now.push(time(() => job.run(current))); }
      }
      const ratio = median(now) / median(old);
      ratios.push(ratio);
      console.log(`${job.label.padEnd(36)} ${`${median(now).toFixed(0)} ms`.padStart(9)} ${`${median(old).toFixed(0)} ms`.padStart(9)}  ${ratio.toFixed(2)}x`);
    }
    const geo = Math.exp(ratios.reduce((s, r) => s + Math.log(r), 0) / ratios.length);
    console.log(`geometric mean ratio: ${geo.toFixed(2)}x (target <= 1.00: no slower than before)`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
