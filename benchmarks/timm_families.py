"""One small model per timm architecture family: does it compile whole, and what blocks it?

Issue 10 measures coverage this way: for each timm module (architecture family), the smallest
model with at most ``--max-params`` parameters (counted on the meta device, so nothing is
allocated), built with ``pretrained=False`` (nothing is downloaded), is compiled at each target.
A model "compiles whole" when the artifact is one NNAPI segment with no host op. For the others
the table names the torch ops that became host code (the blockers), counted by family.

    .venv/bin/python benchmarks/timm_families.py --targets android-10 android-13 --out families.md

Numerics are not checked here (tests/zoo/test_timm.py does that for the models CI runs); this
is a coverage survey, so it reports and never fails on a model.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import timm
import timm.models._registry as registry
import torch

import nnapi_compiler as nc
from nnapi_compiler.ir.model import Placement

#: The models picked by ``pick_models`` for timm 1.0.31, kept so a survey starts at once.
PICKED = Path(__file__).with_name("timm_families.json")

#: Name fragments of the small members of a family, smallest first; used only to order the
#: candidates so the first few meta-device builds usually find the smallest model.
_SMALL = ("atto", "femto", "pico", "nano", "xxs", "tiny", "xs", "s0", "t0", "t8", "b0", "a0",
          "mini", "small", "s1", "m0", "050", "075", "100", "18", "lite")


def _rank(name: str) -> tuple[int, str]:
    for i, frag in enumerate(_SMALL):
        if re.search(rf"(^|_){frag}", name):
            return i, name
    return len(_SMALL), name


def _params_on_meta(name: str) -> int | None:
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = timm.create_model(name, pretrained=False)
    except Exception:
        return None
    return sum(p.numel() for p in m.parameters())


def pick_models(max_params: int, tries: int) -> dict[str, str]:
    """{family: smallest model name under ``max_params``} for every timm module that has one."""
    by_module: dict[str, list[str]] = collections.defaultdict(list)
    for name in timm.list_models():
        if name.startswith("test_"):  # timm's own unit-test models are not architectures
            continue
        by_module[registry._model_to_module.get(name, "?")].append(name)
    picked = {}
    for module, names in sorted(by_module.items()):
        sizes = []
        for name in sorted(names, key=_rank)[:tries]:
            n = _params_on_meta(name)
            if n is not None and n <= max_params:
                sizes.append((n, name))
        if sizes:
            picked[module] = min(sizes)[1]
    return picked


def _input(model: torch.nn.Module, res: int, resized: bool) -> torch.Tensor:
    """The example input: ``res`` square (at least the configured ``min_input_size``), unless
    the model only takes its configured size (``resized``: the model was built for ``res``
    through ``img_size``)."""
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    size = cfg.get("input_size", (3, res, res))
    least = cfg.get("min_input_size", (3, 0, 0))
    fixed = cfg.get("fixed_input_size", False) and not resized
    return torch.randn(1, size[0], size[1] if fixed else max(res, least[1]),
                       size[2] if fixed else max(res, least[2]))


def _runs(model: torch.nn.Module, x: torch.Tensor) -> bool:
    try:
        with torch.no_grad():
            model(x)
    except Exception:
        return False
    return True


def survey_one(name: str, target: str, res: int) -> dict[str, Any]:
    torch.manual_seed(0)
    row: dict[str, Any] = {"model": name, "target": target}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kw = {"img_size": res}  # transformers with a fixed size take it; others refuse
            try:
                model = timm.create_model(name, pretrained=False, **kw).eval()
            except TypeError:
                kw = {}
                model = timm.create_model(name, pretrained=False).eval()
            x = _input(model, res, bool(kw))
            if kw and not _runs(model, x):  # e.g. crossvit: res must suit both patch sizes
                model = timm.create_model(name, pretrained=False).eval()
                x = _input(model, res, False)
            t0 = time.perf_counter()
            report = nc.explain(model, (x,), target=target)
            row["seconds"] = time.perf_counter() - t0
    except Exception as e:
        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
        return row
    g = report.graph
    if g is None:
        row["whole"] = False
        row["blockers"] = ["(scripted: " + report.capture_error.splitlines()[0][:80] + ")"]
        return row
    hosts = [r.target for r in report.rows if r.where.startswith("CPU")]
    segs = [s for s in g.segments if s.placement is Placement.NNAPI]
    row["segments"] = len(segs)
    row["whole"] = not hosts and len(segs) == 1
    row["blockers"] = sorted(collections.Counter(hosts))
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", nargs="+", default=["android-10", "android-13"])
    ap.add_argument("--max-params", type=float, default=12e6)
    ap.add_argument("--tries", type=int, default=12, help="candidates built per family")
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--only", nargs="*", help="families to survey (default: all)")
    ap.add_argument("--refresh", action="store_true",
                    help=f"pick the models again (a few minutes) instead of reading {PICKED.name}")
    ap.add_argument("--out", help="write the markdown table here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.refresh or not PICKED.exists():
        picked = pick_models(int(args.max_params), args.tries)
        PICKED.write_text(json.dumps(picked, indent=1, sort_keys=True) + "\n")
    picked = json.loads(PICKED.read_text())
    if args.only:
        picked = {k: v for k, v in picked.items() if k in args.only}
    lines = ["| family | model | " + " | ".join(args.targets) + " |",
             "|---|---|" + "---|" * len(args.targets)]
    whole = collections.Counter()
    blockers: dict[str, collections.Counter] = {t: collections.Counter() for t in args.targets}
    for family, name in picked.items():
        cells = []
        for t in args.targets:
            r = survey_one(name, t, args.res)
            if "error" in r:
                cells.append("error: " + r["error"])
            elif r["whole"]:
                whole[t] += 1
                cells.append("whole")
            else:
                blockers[t].update(set(r["blockers"]))
                cells.append(", ".join(r["blockers"][:4]))
        lines.append(f"| {family} | {name} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    lines.append("")
    for t in args.targets:
        lines.append(f"- {t}: {whole[t]} of {len(picked)} families compile whole; blockers by "
                     "families stopped: " + ", ".join(f"{k} {v}" for k, v in
                                                      blockers[t].most_common(12)))
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
