/**
 * Temp files for atomic writes. Each is named `.NAME.gpt-tmp-PID-RAND` in the output's folder (NAME
 * shortened so the whole name stays within 255 bytes), removed when the write fails, when the
 * process gets SIGINT / SIGTERM / SIGHUP, and, after a SIGKILL, by the next write into the same
 * folder, which removes the temp files of processes that no longer exist.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

const live = new Set<string>();
const TEMP = /^\..*\.gpt-tmp-(\d+)-[0-9a-f]{8}$/;
let handlersInstalled = false;

function cleanupNow(): void {
  for (const f of live) {
    try {
      fs.rmSync(f, { force: true });
    } catch {
      // best effort: the process is going away
    }
  }
  live.clear();
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', cleanupNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      cleanupNow();
      // die of the signal as we would have without a handler (exit status 128 + n)
      process.removeListener(sig, handler);
      process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}

/** Shorten a file name to at most `max` UTF-8 bytes without cutting a character. */
function clip(name: string, max: number): string {
  if (Buffer.byteLength(name) <= max) return name;
  let out = '';
  for (const ch of name) {
    if (Buffer.byteLength(out + ch) > max) break;
    out += ch;
  }
  return out;
}

/** A new temp path beside `dest`, registered for removal on failure or signal. */
export function tempPathFor(dest: string): string {
  installHandlers();
  const suffix = `.gpt-tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const name = `.${clip(path.basename(dest), 255 - 1 - suffix.length)}${suffix}`;
  const p = path.join(path.dirname(dest), name);
  live.add(p);
  return p;
}

/** The temp file is renamed into place or removed: stop tracking it. */
export function releaseTemp(p: string): void {
  live.delete(p);
}

/** Remove a temp file (after a failure). */
export function removeTemp(p: string | undefined): void {
  if (!p) return;
  try {
    fs.rmSync(p, { force: true });
  } catch {
    // nothing more to do
  }
  live.delete(p);
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove temp files in `dir` left by gpt processes that are gone (killed with SIGKILL, power loss). */
export function removeStaleTemps(dir: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return removed;
  }
  for (const n of names) {
    const m = TEMP.exec(n);
    if (!m || alive(Number(m[1]))) continue;
    const p = path.join(dir, n);
    try {
      if (fs.lstatSync(p).isFile()) {
        fs.rmSync(p, { force: true });
        removed.push(p);
      }
    } catch {
      // another process removed it first
    }
  }
  return removed;
}

export const TEMP_PATTERN = TEMP;
