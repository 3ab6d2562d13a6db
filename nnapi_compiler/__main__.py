"""Command line: compile a model to a PyTorch Mobile ``.ptl`` and verify it on the virtual device.

    python -m nnapi_compiler compile torchvision.models:mobilenet_v2 \
        --input-shape 1,3,224,224 -o mobilenet_v2.ptl --verify
    python -m nnapi_compiler compile torchvision.models:mobilenet_v2 \
        --input-shape 1,3,224,224 --dynamic batch=0.0:1:8 -o mnv2_batch.ptl --verify
    python -m nnapi_compiler explain timm:convnext_atto --input-shape 1,3,224,224 --dot g.dot
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .errors import NnapiCompilerError


def load_model(spec: str) -> torch.nn.Module:
    """``package.module:factory`` -> ``factory()`` (torchvision builders get ``weights=None``);
    ``timm:name`` -> ``timm.create_model(name, pretrained=False)``."""
    mod_name, _, attr = spec.partition(":")
    if mod_name == "timm" and attr:  # timm's registry: random init, nothing downloaded
        import timm

        return timm.create_model(attr, pretrained=False)
    if not attr:
        raise SystemExit(f"model spec {spec!r} must look like 'package.module:factory'")
    factory = getattr(importlib.import_module(mod_name), attr)
    if isinstance(factory, torch.nn.Module):
        return factory
    kwargs: dict[str, None] = {}
    if mod_name.startswith("torchvision"):  # no downloads: random init, no pretrained backbone
        params = inspect.signature(factory).parameters
        kwargs = {k: None for k in ("weights", "weights_backbone") if k in params}
    return factory(**kwargs)


def _shape(text: str) -> tuple[int, ...]:
    return tuple(int(d) for d in text.split(","))


def parse_dynamic(specs: list[str], n_inputs: int) -> tuple[dict[int, Any], ...] | None:
    """``NAME=INPUT.DIM:MIN:MAX`` (repeatable) -> torch.export-style ``dynamic_shapes``: per
    input a dict from dim index to ``torch.export.Dim``; one name across inputs is one Dim."""
    if not specs:
        return None
    dims: dict[str, Any] = {}
    shapes: tuple[dict[int, Any], ...] = tuple({} for _ in range(n_inputs))
    for spec in specs:
        m = re.fullmatch(r"(\w+)=(\d+)\.(\d+):(\d+):(\d+)", spec)
        if m is None:
            raise SystemExit(f"--dynamic {spec!r} must look like NAME=INPUT.DIM:MIN:MAX, "
                             "e.g. batch=0.0:1:8")
        name, i, d, lo, hi = m[1], int(m[2]), int(m[3]), int(m[4]), int(m[5])
        if i >= n_inputs:
            raise SystemExit(f"--dynamic {spec!r}: there are only {n_inputs} inputs")
        if name not in dims:
            dims[name] = torch.export.Dim(name, min=lo, max=hi)
        shapes[i][d] = dims[name]
    return shapes


def _sized(inputs: tuple[torch.Tensor, ...], shapes: tuple[dict[int, Any], ...] | None,
           end: str) -> tuple[torch.Tensor, ...]:
    """``inputs`` with every dynamic dim at its declared ``end`` ("min" or "max")."""
    if shapes is None:
        return inputs
    out = []
    for x, dims in zip(inputs, shapes, strict=True):
        size = list(x.shape)
        for d, dim in dims.items():
            size[d] = getattr(dim, end)
        out.append(torch.randn(*size))
    return tuple(out)


def cmd_compile(args: argparse.Namespace) -> int:
    import nnapi_compiler as nc

    torch.manual_seed(args.seed)
    model = load_model(args.model).eval()
    inputs = tuple(torch.randn(*_shape(s)) for s in args.input_shape)
    dynamic = parse_dynamic(args.dynamic, len(inputs))
    cm = nc.compile(model, inputs, target=args.target, fallback=args.fallback,
                    dynamic_shapes=dynamic)
    out = cm.save(args.output)
    s = cm.stats
    print(f"compiled {args.model} for {args.target} (feature level {cm.level}) "
          f"via {s['capture']} in {s['compile_seconds']:.2f}s")
    print(f"  NNAPI ops: {s['nnapi_ops']}  segments: {s['segments']}  "
          f"CPU segments: {s['cpu_segments']}  host ops: {s['host_ops']}  "
          f"FLOPs on NNAPI: {100 * s['nnapi_flops_share']:.1f}%  "
          f"layout conversions: {s['layout_conversions']}")
    print(f"  ser_model: {s['ser_model_bytes']} B  weights: {s['weight_bytes']} B  "
          f"{out}: {out.stat().st_size} B")
    if args.verify:
        from torch.jit.mobile import _load_for_lite_interpreter

        reloaded = _load_for_lite_interpreter(str(out))
        runs = [inputs] if dynamic is None else [inputs, _sized(inputs, dynamic, "min"),
                                                 _sized(inputs, dynamic, "max")]
        ok = True
        for xs in runs:
            with torch.no_grad():
                ref = model(*xs)
            t0 = time.perf_counter()
            with nc.virtual_device(feature_level=cm.level):
                got = reloaded(*xs)
            dt = time.perf_counter() - t0
            refs = torch.utils._pytree.tree_leaves(ref)
            gots = torch.utils._pytree.tree_leaves(got)
            err = max((g - r).abs().max().item() for g, r in zip(gots, refs, strict=True))
            mag = max(r.abs().max().item() for r in refs)
            good = err <= 1e-4 * max(1.0, mag)
            ok = ok and good
            sizes = " ".join("x".join(map(str, x.shape)) for x in xs)
            print(f"  verified {out} at {sizes} on the virtual NNAPI device in {dt:.2f}s: "
                  f"max |error| = {err:.3g} (max |output| = {mag:.3g}) -> "
                  f"{'OK' if good else 'MISMATCH'}")
        return 0 if ok else 1
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    import nnapi_compiler as nc

    torch.manual_seed(args.seed)
    model = load_model(args.model).eval()
    inputs = tuple(torch.randn(*_shape(s)) for s in args.input_shape)
    report = nc.explain(model, inputs, target=args.target)
    print(report)
    if args.dot:
        report.to_dot(args.dot)
        print(f"wrote {args.dot}")
    return 0


def _common(c: argparse.ArgumentParser) -> None:
    c.add_argument("model", help="package.module:factory, e.g. torchvision.models:mobilenet_v2")
    c.add_argument("--input-shape", action="append", required=True,
                   help="comma-separated shape of one float32 input; repeat per input")
    c.add_argument("--target", default="android-10")
    c.add_argument("--seed", type=int, default=0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m nnapi_compiler", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compile", help="compile a model to a .ptl file")
    _common(c)
    c.add_argument("-o", "--output", type=Path, required=True)
    c.add_argument("--fallback", choices=("cpu", "error"), default="cpu",
                   help="what to do with nodes NNAPI cannot run: CPU host code, or an error")
    c.add_argument("--dynamic", action="append", default=[], metavar="NAME=INPUT.DIM:MIN:MAX",
                   help="declare a dynamic dim, e.g. batch=0.0:1:8 (input 0, dim 0, sizes 1..8); "
                        "repeat per dim, one NAME across inputs means one size")
    c.add_argument("--verify", action="store_true",
                   help="run the saved artifact on the virtual device and compare with eager "
                        "(with --dynamic: also at every dynamic dim's MIN and at its MAX)")
    e = sub.add_parser("explain", help="say where each node runs and why")
    _common(e)
    e.add_argument("--dot", type=Path, help="also write the partitioned graph as Graphviz DOT")
    args = p.parse_args(argv)
    try:
        return cmd_compile(args) if args.command == "compile" else cmd_explain(args)
    except NnapiCompilerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
