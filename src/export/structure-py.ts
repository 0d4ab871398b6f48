/**
 * Structure that survives `Net.export_onnx`: torch.onnx.export writes no metadata_props, so a converted
 * model re-exported from PyTorch would lose the structure it records (recorded-structure.ts) — the rules
 * describe plain architectures and do not recognise every block a pass builds (ELAN blocks, PRN's masked
 * residual). model.py keeps the module path of each stage and block (STRUCTURE); export_onnx maps the
 * exported nodes to them by the scope names torch gives them ('/stages.0/blocks/blocks.1/conv/Conv')
 * and appends the record as one more metadata_props entry (ModelProto field 14: appending a
 * length-delimited field to a serialized message is valid protobuf).
 */
import type { Structure } from '../analysis/structure-types';
import type { Group } from './module-tree';

interface TemplateBlock {
  id: string;
  rule: string;
  kind: string;
  module: string;
  /** Sub-modules whose nodes belong to the stage's added nodes (PRN's masked residual). */
  except: string[];
}
export interface StructureTemplate {
  family: Structure['family'];
  stem: string | null;
  stages: {
    index: number;
    resolution: unknown;
    channels: number | null;
    module: string;
    entry: string | null;
    blocks: TemplateBlock[];
    added: { id: string; rule: string; kind: string }[];
  }[];
}

/** The template, or null when a stage or block did not become a module (nothing can be recorded then). */
export function structureTemplate(root: Group, structure: Structure | null, paths: Map<Group, string>): StructureTemplate | null {
  if (!structure) return null;
  const stem = root.children.find((c) => c.role.kind === 'stem');
  if (structure.stem.length && !stem) return null;
  const stages: StructureTemplate['stages'] = [];
  for (const s of structure.stages) {
    const sg = root.children.find((c) => c.role.kind === 'stage' && c.role.stage === s);
    if (!sg || sg.role.kind !== 'stage') return null;
    const entry = sg.children.find((c) => c.role.kind === 'entry');
    if (s.entry.length && !entry) return null;
    const blocks: TemplateBlock[] = [];
    for (const c of sg.children) {
      if (c.role.kind !== 'block') continue;
      const except = c.children.filter((x) => x.role.kind === 'added').map((x) => paths.get(x) as string);
      blocks.push({ id: c.role.id, rule: c.role.rule, kind: c.role.blockKind, module: paths.get(c) as string, except });
    }
    if (blocks.length !== s.blocks.filter((b) => !b.rule.startsWith('gpt ')).length) return null;
    stages.push({
      index: s.index, resolution: s.resolution, channels: s.channels, module: paths.get(sg) as string,
      entry: entry ? (paths.get(entry) as string) : null, blocks, added: sg.role.added,
    });
  }
  return { family: structure.family, stem: stem ? (paths.get(stem) as string) : null, stages };
}

/** The template as the Net's STRUCTURE attribute: one line per stage. */
export function pyStructure(t: StructureTemplate | null): string {
  if (!t) return '    STRUCTURE = None';
  return [
    `    STRUCTURE = {"family": ${pyJson(t.family)}, "stem": ${pyJson(t.stem)}, "stages": [`,
    ...t.stages.map((s) => `        ${pyJson(s)},`),
    '    ]}',
  ].join('\n');
}

/** A Python literal of a JSON value. */
export function pyJson(x: unknown): string {
  if (x === null || x === undefined) return 'None';
  if (x === true) return 'True';
  if (x === false) return 'False';
  if (typeof x === 'number' || typeof x === 'string') return JSON.stringify(x);
  if (Array.isArray(x)) return `[${x.map(pyJson).join(', ')}]`;
  return `{${Object.entries(x as Record<string, unknown>).map(([k, v]) => `${JSON.stringify(k)}: ${pyJson(v)}`).join(', ')}}`;
}

/** Module-level Python: read node names from ONNX bytes, build the record, append it. */
export const PY_ONNX_RECORD = `

def _varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def _pb_fields(buf, pos, end):
    """(field, wire type, value or (start, end)) of each field of one protobuf message."""
    while pos < end:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 1 or wire == 5:
            val, pos = None, pos + (8 if wire == 1 else 4)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            val, pos = (pos, pos + n), pos + n
        else:
            raise ValueError("unsupported protobuf wire type %d" % wire)
        yield field, wire, val


def _onnx_nodes(data):
    """(name, op_type) of each node of the main graph (ModelProto.graph = 7, GraphProto.node = 1)."""
    nodes = []
    for f, w, v in _pb_fields(data, 0, len(data)):
        if f == 7 and w == 2:
            for gf, gw, gv in _pb_fields(data, *v):
                if gf == 1 and gw == 2:
                    name = op = ""
                    for nf, nw, nv in _pb_fields(data, *gv):
                        if nf == 3 and nw == 2:
                            name = data[nv[0]:nv[1]].decode()
                        elif nf == 4 and nw == 2:
                            op = data[nv[0]:nv[1]].decode()
                    nodes.append((name, op))
    return nodes


def _pb_len(field, payload):
    out, n = bytearray(), (field << 3) | 2
    for x in (n, len(payload)):
        while x > 0x7F:
            out.append((x & 0x7F) | 0x80)
            x >>= 7
        out.append(x)
    return bytes(out) + payload


def _scope_prefixes(net):
    """Module path -> the prefix torch.onnx.export gives its nodes ('stages.0.blocks.1' -> '/stages.0/blocks/blocks.1')."""
    out = {}

    def walk(m, qual, prefix, base):
        for name, c in m.named_children():
            q = qual + "." + name if qual else name
            seg = q[len(base) + 1:] if base else q
            p = prefix if isinstance(c, (nn.ModuleList, nn.ModuleDict)) else prefix + "/" + seg
            out[q] = p
            walk(c, q, p, base if isinstance(c, (nn.Sequential, nn.ModuleList, nn.ModuleDict)) else q)

    walk(net, "", "", "")
    return out


def _structure_record(net, nodes):
    """gpt's structure record for the exported nodes, or None when a stage or block got no node."""
    s = net.STRUCTURE
    prefixes = _scope_prefixes(net)
    names = [n for n, op in nodes if op != "Constant"]
    taken = set()

    def under(path, name):
        p = prefixes.get(path)
        return p is not None and name.startswith(p + "/")

    def pick(path, exclude=()):
        got = [n for n in names if n not in taken and under(path, n) and not any(under(e, n) for e in exclude)]
        taken.update(got)
        return got

    rec = {"family": s["family"], "stem": pick(s["stem"]) if s["stem"] else [], "stages": [], "head": []}
    for st in s["stages"]:
        entry = pick(st["entry"]) if st["entry"] else []
        blocks = []
        for b in st["blocks"]:
            got = pick(b["module"], b["except"])
            if not got:
                return None
            blocks.append({"id": b["id"], "rule": b["rule"], "kind": b["kind"], "nodes": got})
        rest = pick(st["module"])
        for a in st["added"][:1]:
            if rest:
                blocks.append({"id": a["id"], "rule": a["rule"], "kind": a["kind"], "nodes": rest})
        rec["stages"].append({"index": st["index"], "resolution": st["resolution"], "channels": st["channels"],
                              "entry": entry, "blocks": blocks})
    last = max([i for i, n in enumerate(names) if n in taken] or [-1])
    rec["head"] = [n for n in names[last + 1:] if n not in taken]
    return rec
`;

/** The Net's export_onnx method (indented for the class body). */
export const PY_EXPORT_ONNX = `
    def export_onnx(self, path, *args, **kwargs):
        """torch.onnx.export of this module (eval mode, opset 13 unless given), then gpt's structure record
        appended to the file's metadata_props, so gpt analyze reads back the same stages and blocks.
        args: example inputs (default: zeros of INPUTS' shapes, 1 for a free dim)."""
        import io
        import warnings
        if not args:
            args = tuple(torch.zeros([d if isinstance(d, int) else 1 for d in shape], dtype=getattr(torch, dtype))
                         for _, shape, dtype in self.INPUTS)
        kwargs.setdefault("opset_version", 13)
        kwargs.setdefault("input_names", [name for name, _, _ in self.INPUTS])
        kwargs.setdefault("output_names", list(self.OUTPUTS))
        buf = io.BytesIO()
        torch.onnx.export(self, args, buf, **kwargs)
        data = buf.getvalue()
        if self.STRUCTURE is not None:
            rec = _structure_record(self, _onnx_nodes(data))
            if rec is None:
                warnings.warn("export_onnx: a stage or block has no node in the exported graph; no structure recorded")
            else:
                entry = _pb_len(1, b"gpt.structure") + _pb_len(2, json.dumps(rec).encode())
                data += _pb_len(14, entry)
        with open(path, "wb") as f:
            f.write(data)
        return path
`;
