/**
 * NumPy .npy files (format 1.0 / 2.0 / 3.0), little-endian float32 or float64, C order: enough to
 * feed recorded inputs to `gpt verify --inputs`. Anything else is E_ARG naming the file.
 */
import * as fs from 'node:fs';
import { GptError } from '../errors';

export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

export function parseNpy(b: Buffer, file = 'the .npy data'): NpyArray {
  const bad = (why: string) => new GptError('E_ARG', `not a usable .npy file: ${why}`, { subject: file, hint: 'save it with numpy.save(file, array.astype(numpy.float32))' });
  if (b.length < 10 || b[0] !== 0x93 || b.toString('latin1', 1, 6) !== 'NUMPY') throw bad('no NUMPY magic');
  const major = b[6];
  const start = major === 1 ? 10 : 12;
  if (b.length < start) throw bad('truncated header');
  const headerLen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  if (start + headerLen > b.length) throw bad('truncated header');
  const header = b.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']*)'/.exec(header)?.[1];
  if (descr !== '<f4' && descr !== '<f8') throw bad(`dtype ${descr ?? '?'} (float32 or float64 only)`);
  if (/'fortran_order':\s*True/.test(header)) throw bad('Fortran order');
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (shapeText === undefined) throw bad('no shape');
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(`shape (${shapeText})`);
  const n = shape.reduce((a, d) => a * d, 1);
  const size = descr === '<f4' ? 4 : 8;
  const dataStart = start + headerLen;
  if (b.length - dataStart !== n * size) throw bad(`${b.length - dataStart} data bytes for shape (${shape.join(', ')})`);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = size === 4 ? b.readFloatLE(dataStart + 4 * i) : b.readDoubleLE(dataStart + 8 * i);
  return { shape, data };
}

export function readNpy(file: string): NpyArray {
  let b: Buffer;
  try {
    b = fs.readFileSync(file);
  } catch (e) {
    throw new GptError('E_IO', `cannot read: ${(e as Error).message}`, { subject: file });
  }
  return parseNpy(b, file);
}
