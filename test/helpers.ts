/** Shared test helpers: the fixture folder, .npy reading, tiny graph building. */
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';

/** ../shared/fixtures beside the checkout (the repo root is two folders above dist/test). */
export const repoRoot = path.resolve(__dirname, '..', '..');
export const fixturesDir = process.env.GPT_FIXTURES ?? path.resolve(repoRoot, '..', 'shared', 'fixtures');

export interface FixtureEntry {
  model: string;
  family: string;
  opset: number;
  irVersion: number;
  input: { name: string; shape: (number | string)[] };
  output: string;
  quirk: string;
  sampleInput: string;
  sampleOutput: string;
  prnOutput?: string;
}

/** ../shared/fixtures-realworld: PyTorch exports of public timm definitions at reduced width. */
export const realworldDir = process.env.GPT_FIXTURES_REALWORLD ?? path.resolve(repoRoot, '..', 'shared', 'fixtures-realworld');

export interface RealworldEntry extends FixtureEntry {
  prnOutput: string;
  params: number;
  onnxParams: number;
  macs: number;
  residualAdds: number;
  outputShape: number[];
  /** [input, output, prn-output] of a second sample (symbolic axes). */
  extraSamples?: string[];
}

export function realworld(): RealworldEntry[] {
  return JSON.parse(fs.readFileSync(path.join(realworldDir, 'manifest.json'), 'utf8')).models;
}

export function realworldPath(name: string): string {
  return path.join(realworldDir, name);
}

export function fixtures(): FixtureEntry[] {
  return JSON.parse(fs.readFileSync(path.join(fixturesDir, 'manifest.json'), 'utf8')).models;
}

export function fixturePath(name: string): string {
  return path.join(fixturesDir, name);
}

/** Read a little-endian float32 .npy file. */
export function readNpy(file: string): { shape: number[]; data: Float32Array } {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = b[6];
  const headerLen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = b.toString('latin1', start, start + headerLen);
  if (!header.includes("'<f4'")) throw new Error(`${file}: only little-endian float32 is supported (${header})`);
  if (header.includes("'fortran_order': True")) throw new Error(`${file}: Fortran order not supported`);
  const shape = (/'shape': \(([^)]*)\)/.exec(header)?.[1] ?? '').split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const dataStart = start + headerLen;
  const data = new Float32Array(b.buffer.slice(b.byteOffset + dataStart, b.byteOffset + b.length));
  return { shape, data };
}

/** The fixture tolerance: max abs diff <= 1e-4 x max(1, largest |expected value|). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; tol: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let diff = 0;
  let largest = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    largest = Math.max(largest, Math.abs(b[i]));
  }
  return { diff, tol: 1e-4 * Math.max(1, largest) };
}

export function tmpDir(prefix = 'gpt-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Mark the running test as skipped (a missing optional tool, say): uvu has no run-time skip, so the
 * test returns after this line and test/run.ts counts the marker as a skip, not a pass.
 */
export const SKIP_MARKER = '# skip:';
export function skipTest(reason: string): void {
  // on a line of its own: uvu's progress dots have no newline after them
  console.log(`\n${SKIP_MARKER} ${reason}`);
}

/**
 * The browser for the chart and report checks. Without one the test is skipped (returns null), except
 * under CI=true, where .ci/run installs Debian's chromium and a missing browser is a failure.
 */
export function chromiumOrSkip(what: string): string | null {
  const found = findChromium();
  if (found) return found;
  if (process.env.CI) throw new Error(`chromium is not installed (apt-get install chromium): ${what} cannot run under CI`);
  skipTest(`chromium is not installed: ${what}`);
  return null;
}

function findChromium(): string | null {
  for (const bin of ['chromium', 'chromium-browser', 'google-chrome']) {
    const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return null;
}

/** Arithmetic agreement of a derived figure with its hand value (recorded samples, never a timing bound). */
export function assertNear(actual: number, expected: number, tolerance: number, what = 'value'): void {
  if (!(Math.abs(actual - expected) <= tolerance)) throw new Error(`${what}: ${actual} is not ${expected} within ${tolerance}`);
}
