/**
 * The text of one class of model.py's module tree (module-tree.ts): its layers' names inside the
 * class, its channel widths and block counts as constructor arguments.
 */
import type { Group } from './module-tree';
import { pyIdent } from './py';

/**
 * Inside a block or stage class, a layer is named by its own segment without the instance's numbers
 * ('/features/csp.s1/transition1/Conv' -> 'transition1', '/features/features.7/b1/b1.0/Conv' -> 'b1',
 * '/features/features.6/features.6.0/Conv' -> 'conv'), so every instance of a block has the same
 * class text and the blocks share one class.
 */
export function classLayerName(node: string): string {
  const raw = node.split('/').filter(Boolean);
  const op = raw.find((p) => /^[A-Z][A-Za-z]+(_\d+)?$/.test(p))?.replace(/_\d+$/, '').toLowerCase() ?? 'layer';
  const segs = raw.filter((p) => !/^[A-Z][A-Za-z]+(_\d+)?$/.test(p));
  const suffix = segs[segs.length - 1] === 'bn' ? (segs.pop(), '_bn') : '';
  let last = segs[segs.length - 1] ?? op;
  const parent = segs[segs.length - 2];
  if (parent && last.startsWith(`${parent}.`)) last = /^[A-Za-z_]\w*$/.test(parent) ? parent : last.slice(parent.length + 1);
  last = last.replace(/([_.]\d+)+$/, '');
  if (!/[A-Za-z]/.test(last)) last = op;
  return pyIdent(`${last}${suffix}`, 'layer');
}

/**
 * A block class's text: its layers' channel widths become constructor arguments (c1, c2... in order
 * of first appearance), so blocks that differ only in width share one class.
 */
export function classText(scope: { init: string[]; body: string[] }, args: string[], returns: string[]): { ctorArgs: number[]; text: string } {
  const widths: number[] = [];
  const counts: number[] = [];
  const param = (w: string) => {
    const n = Number(w);
    let i = widths.indexOf(n);
    if (i < 0) i = widths.push(n) - 1;
    return `c${i + 1}`;
  };
  const count = (w: string) => {
    counts.push(Number(w));
    return counts.length === 1 ? 'n' : `n${counts.length}`;
  };
  const init = scope.init.map((l) => l
    .replace(/nn\.(Conv\dd|ConvTranspose\dd|Linear)\((\d+), (\d+)/, (_m, cls: string, a: string, b: string) => `nn.${cls}(${param(a)}, ${param(b)}`)
    .replace(/nn\.(BatchNorm\dd)\((\d+)/, (_m, cls: string, a: string) => `nn.${cls}(${param(a)}`)
    // a child module's widths are this class's widths too (a stage passes its widths to its blocks)
    .replace(/(?<![\w.])([A-Z]\w*)\(([\d, ]+)\)/g, (_m, cls: string, a: string) => `${cls}(${a.split(', ').map(param).join(', ')})`)
    .replace(/ for _ in range\((\d+)\)/, (_m, k: string) => ` for _ in range(${count(k)})`));
  // a channel split's sizes are widths too (CSP's part 1 and part 2)
  // (kept as attributes: forward reads them)
  const used = new Set<string>();
  const attr = (w: string) => {
    const p = param(w);
    used.add(p);
    return `self.${p}`;
  };
  const body = scope.body.map((l) => l.replace(/  # .*$/, '')
    .replace(/torch\.split\((\w+), \[([\d, ]+)\], dim=1\)/, (_m, v: string, a: string) => `torch.split(${v}, [${a.split(', ').map(attr).join(', ')}], dim=1)`)
    .replace(/\[:, :(\d+)\]/g, (_m, a: string) => `[:, :${attr(a)}]`)
    .replace(/\[:, (\d+):\]/g, (_m, a: string) => `[:, ${attr(a)}:]`));
  if (used.size) init.push(`        ${[...used].map((p) => `self.${p}`).join(', ')} = ${[...used].join(', ')}`);
  const names = [...widths.map((_, i) => `c${i + 1}`), ...counts.map((_, i) => (i === 0 ? 'n' : `n${i + 1}`))];
  const text = [
    `    def __init__(self${names.map((x) => `, ${x}`).join('')}):`,
    '        super().__init__()',
    ...init,
    '',
    `    def forward(self, ${args.join(', ')}):`,
    ...body,
    `        return ${returns.join(', ')}`,
    '',
  ].join('\n');
  return { ctorArgs: [...widths, ...counts], text };
}

/** The comment beside a child call in the Net. */
export function roleNote(c: Group): string {
  const r = c.role;
  if (r.kind === 'stage') return `stage ${r.stage.index}`;
  if (r.kind === 'block') return `${r.rule} ${r.id}`;
  return r.kind;
}

