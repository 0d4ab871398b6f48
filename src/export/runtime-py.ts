/**
 * The Python that every exported model.py carries: the weight loader (the `safetensors` package when
 * installed, a short reader otherwise) and the few helpers that give ONNX's semantics where a torch
 * call differs (Reshape's 0, Slice's clamping and negative steps, Gather's index shapes, ScatterND).
 * Only torch and the standard library are imported.
 */
export const PY_HEADER = `import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
`;

export const PY_LOADER = `
_ST_DTYPES = {
    "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}


def read_safetensors(path):
    """The weights file: the safetensors package when installed, else this short reader."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        load_file = None
    if load_file is not None:
        return load_file(path)
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    base = 8 + n
    state = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = _ST_DTYPES[info["dtype"]]
        if end > begin:
            t = torch.frombuffer(bytearray(data[base + begin:base + end]), dtype=dtype)
        else:
            t = torch.empty(0, dtype=dtype)
        state[name] = t.reshape(info["shape"]).clone()
    return state
`;

/** Helpers, each emitted only when the forward uses it (keyed by function name). */
export const PY_HELPERS: Record<string, string> = {
  _ints: `
def _ints(v):
    return [int(s) for s in (v.tolist() if torch.is_tensor(v) else v)]
`,
  _reshape: `
def _reshape(x, shape, allowzero=0):
    """ONNX Reshape: 0 copies the input's dim (unless allowzero), -1 is inferred."""
    shape = _ints(shape)
    if not allowzero:
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)
`,
  _flatten: `
def _flatten(x, axis):
    """ONNX Flatten: always 2-D, dims before axis in the first."""
    if axis == 0:
        return x.reshape(1, -1)
    return x.flatten(axis) if axis == 1 else x.reshape(-1, int(torch.tensor(x.shape[axis:]).prod()))
`,
  _slice: `
def _slice(x, starts, ends, axes=None, steps=None):
    """ONNX Slice: bounds clamped per axis, negative steps walk backwards."""
    starts, ends = _ints(starts), _ints(ends)
    axes = list(range(len(starts))) if axes is None else _ints(axes)
    steps = [1] * len(starts) if steps is None else _ints(steps)
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = a % x.dim()
        n = int(x.shape[a])
        s, e = max(-n - 1, min(n, s)), max(-n - 1, min(n, e))
        if st > 0:
            idx = [slice(None)] * x.dim()
            idx[a] = slice(s, e, st)
            x = x[tuple(idx)]
        else:
            s = max(-1, min(n - 1, s + n if s < 0 else s))
            e = max(-1, min(n - 1, e + n if e < 0 else e))
            x = x.index_select(a, torch.arange(s, e, st, device=x.device))
    return x
`,
  _gather: `
def _gather(x, idx, axis):
    """ONNX Gather: negative indices count from the end; the index's shape replaces the axis."""
    idx = torch.as_tensor(idx, device=x.device).long()
    idx = torch.where(idx < 0, idx + x.shape[axis], idx)
    out = x.index_select(axis, idx.reshape(-1))
    return out.reshape(list(x.shape[:axis]) + list(idx.shape) + list(x.shape[axis + 1:]))
`,
  _unsqueeze: `
def _unsqueeze(x, axes):
    rank = x.dim() + len(axes)
    for a in sorted(a % rank for a in axes):
        x = x.unsqueeze(a)
    return x
`,
  _squeeze: `
def _squeeze(x, axes=None):
    if axes is None:
        return x.squeeze()
    for a in sorted((a % x.dim() for a in axes), reverse=True):
        x = x.squeeze(a)
    return x
`,
  _expand: `
def _expand(x, shape):
    """ONNX Expand broadcasts both ways (a 1 in the shape keeps the input's dim)."""
    return x.expand(torch.broadcast_shapes(tuple(x.shape), tuple(_ints(shape))))
`,
  _scatter_nd: `
def _scatter_nd(data, indices, updates):
    out = data.clone()
    k = indices.shape[-1]
    idx = indices.reshape(-1, k).long()
    out[tuple(idx.t())] = updates.reshape((-1,) + tuple(data.shape[k:]))
    return out
`,
  _pad: `
def _pad(x, pads, mode="constant", value=0.0):
    """ONNX Pad's [begin..., end...] as F.pad's (last dim first) pairs."""
    pads = _ints(pads)
    r = len(pads) // 2
    p = []
    for i in reversed(range(r)):
        p += [pads[i], pads[i + r]]
    while len(p) > 2 and p[-1] == 0 and p[-2] == 0:
        p = p[:-2]
    if mode == "constant":
        return F.pad(x, p, mode="constant", value=float(value))
    return F.pad(x, p, mode={"reflect": "reflect", "edge": "replicate"}[mode])
`,
  _div: `
def _div(a, b):
    """ONNX Div: integer division truncates."""
    if not a.is_floating_point() and not (torch.is_tensor(b) and b.is_floating_point()):
        return torch.div(a, b, rounding_mode="trunc")
    return a / b
`,
  _shape: `
def _shape(x, start=0, end=None):
    return torch.tensor(list(x.shape)[start:end], dtype=torch.int64, device=x.device)
`,
  _scalar: `
def _scalar(v):
    return v.reshape(-1)[0].item() if torch.is_tensor(v) else v
`,
};
