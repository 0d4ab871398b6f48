"""Checks exported modules in one process: eval outputs against the expected ones, one SGD step in
train mode, Net.export_onnx and a plain torch.onnx.export. Reads a JSON list of jobs on stdin, prints one JSON line per job."""
import importlib.util
import json
import os
import sys
import traceback
import warnings

import torch

warnings.filterwarnings("ignore")
torch.manual_seed(0)


def read_f32(path, shape):
    with open(path, "rb") as f:
        return torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(shape)


def outputs(out):
    return out if isinstance(out, (tuple, list)) else (out,)


def check(i, job):
    spec = importlib.util.spec_from_file_location("gpt_export_%d" % i, os.path.join(job["dir"], "model.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.Net.load(job["dir"])
    res = {"id": job["id"]}
    net.eval()
    x = read_f32(job["input"], job["inputShape"])
    with torch.no_grad():
        outs = outputs(net(x))
    res["eval"] = []
    for o, e in zip(outs, job["expected"]):
        exp = read_f32(e["path"], e["shape"])
        ok_shape = list(o.shape) == list(exp.shape)
        diff = (o.float() - exp).abs().max().item() if ok_shape else float("inf")
        res["eval"].append({"diff": diff, "tol": 1e-4 * max(1.0, exp.abs().max().item()), "shape": list(o.shape)})
    res["outputs"] = len(outs)
    if job.get("train"):
        net.train()
        gen = torch.Generator().manual_seed(1)
        xb = torch.randn(job["trainShape"], generator=gen)
        opt = torch.optim.SGD(net.parameters(), lr=1e-3)

        def loss():
            return sum(o.float().pow(2).mean() for o in outputs(net(xb)) if o.is_floating_point())

        before = loss()
        opt.zero_grad()
        before.backward()
        grads = sum(1 for p in net.parameters() if p.grad is not None and p.grad.abs().sum().item() > 0)
        opt.step()
        with torch.no_grad():
            after = loss()
        res["train"] = {"before": before.item(), "after": after.item(), "withGrad": grads,
                        "parameters": sum(1 for _ in net.parameters())}
    if job.get("onnx"):
        net.eval()
        # the model's own export_onnx: torch.onnx.export's bytes with gpt's structure record appended.
        # The bytes torch.onnx.export itself wrote are kept as they were, before the record: what a
        # plain call with export_onnx's arguments (opset 13, input / output names) writes. One export,
        # not two: a YOLOv3's takes minutes on a loaded 2-core machine
        real, written = torch.onnx.export, {}

        def capture(model, args, f, *rest, **kwargs):
            real(model, args, f, *rest, **kwargs)
            written["bytes"] = f.getvalue()

        torch.onnx.export = capture
        try:
            net.export_onnx(job["onnx"], x)
        finally:
            torch.onnx.export = real
        with open(job["plainOnnx"], "wb") as f:
            f.write(written["bytes"])
        res["onnx"] = job["onnx"]
        res["plainOnnx"] = job["plainOnnx"]
    if job.get("defaultsOnnx"):
        # what a user types: torch.onnx.export with the exporter's defaults (its default opset too)
        torch.onnx.export(net, (x,), job["defaultsOnnx"])
        res["defaultsOnnx"] = job["defaultsOnnx"]
    return res


def main():
    jobs = json.load(sys.stdin)
    for i, job in enumerate(jobs):
        try:
            res = check(i, job)
        except Exception:
            res = {"id": job["id"], "error": traceback.format_exc()[-3000:]}
        print(json.dumps(res), flush=True)


main()
