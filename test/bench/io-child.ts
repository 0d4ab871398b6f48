/** One load + save of a model, timed, in a fresh process (so peak RSS is this work's alone). */
import { loadModel, saveModel } from '../../src/onnx/io';

const [src, dest] = process.argv.slice(2);
const t0 = process.hrtime.bigint();
const m = loadModel(src);
const t1 = process.hrtime.bigint();
saveModel(m, dest);
const t2 = process.hrtime.bigint();
process.stdout.write(JSON.stringify({ load: Number(t1 - t0) / 1e6, save: Number(t2 - t1) / 1e6, maxRssKiB: process.resourceUsage().maxRSS }) + '\n');
