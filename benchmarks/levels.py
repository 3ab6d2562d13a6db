"""What each NNAPI feature level changes: the ops, operand types and optional inputs it unlocks
(from operations.tsv / operands.tsv), and what compiling a few models for it gives.

For each model and level 3..8: NNAPI ops, NNAPI segments, host ops plus CPU segments, the share
of FLOPs on NNAPI, and how the NNAPI op histogram differs from the level below (e.g. one
``HARD_SWISH`` at FL4 in place of FL3's exact multi-op rewrite).
Run: ``python benchmarks/levels.py [--models a,b] [--out table.md]``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nnapi_compiler as nc
from nnapi_compiler.ir.codes import OP_SPECS, OPERAND_MIN_LEVEL, OperandCode
from nnapi_compiler.ir.legality import SIGNATURES
from nnapi_compiler.ir.ops.base import NnapiOp
from tests.zoo.models import build, example_input

LEVELS = range(3, 9)
MODELS = ["mobilenet_v3_small", "mobilenet_v3_large", "mobilenet_v2", "resnet18",
          "lraspp_mobilenet_v3_large", "timm:levit_128s"]


def _emitted_codes() -> set[int]:
    """NNAPI operation codes some IR op class of this compiler emits."""
    seen, todo = set(), list(NnapiOp.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if "code" in vars(cls) or hasattr(cls, "code"):
            seen.add(int(cls.code))
    return seen


def unlocked(level: int) -> tuple[str, str, str, str]:
    """(new ops, of them the ones this compiler emits, new operand types / types of older ops,
    ops gaining optional inputs) at ``level``."""
    emitted = _emitted_codes()
    new = [s for s in OP_SPECS.values() if s.min_level == level]
    ops = ", ".join(sorted(s.name for s in new)) or "-"
    ours = ", ".join(sorted(s.name for s in new if s.code in emitted)) or "-"
    types = sorted(OperandCode(c).name for c, lv in OPERAND_MIN_LEVEL.items() if lv == level)
    older = sorted({f"{s.name}:{e}" for s in OP_SPECS.values() if s.min_level < level
                    for lv, entries in s.types_by_level if lv == level for e in entries})
    shown = ", ".join(older[:4]) + (", ..." if len(older) > 4 else "")
    typ = f"{', '.join(types) or '-'}; {len(older)} new types of older ops" + (
        f" ({shown})" if older else "")
    optional = ", ".join(sorted({OP_SPECS[c].name for c, sigs in SIGNATURES.items()
                                 for sig in sigs for _, lv in sig.groups if lv == level})) or "-"
    return ops, ours, typ, optional


def _model(name: str) -> tuple[torch.nn.Module, torch.Tensor]:
    if name.startswith("timm:"):
        import timm

        torch.manual_seed(0)
        return timm.create_model(name[5:], pretrained=False).eval(), torch.randn(1, 3, 224, 224)
    return build(name), example_input(name)


def _nnapi_ops(cm: nc.CompiledModel) -> Counter[str]:
    return Counter(type(op).code.name for op in cm.program.ops if isinstance(op, NnapiOp))


def _delta(now: Counter[str], before: Counter[str]) -> str:
    diff = Counter(now)
    diff.subtract(before)
    parts = [f"{'+' if n > 0 else '-'}{abs(n)} {k}" for k, n in sorted(diff.items()) if n]
    return ", ".join(parts) or "-"


def rows(name: str) -> list[str]:
    out, before = [], None
    for level in LEVELS:
        model, x = _model(name)  # fresh: timm's LeViT caches attention biases on its first run
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cm = nc.compile(model, (x,), target=level)
        s, used = cm.stats, _nnapi_ops(cm)
        share = s.get("nnapi_flops_share")
        out.append(f"| {name} | FL{level} | {s['nnapi_ops']} | {s['segments']} | "
                   f"{s['host_ops']} + {s['cpu_segments']} | "
                   f"{'' if share is None else f'{100 * share:.1f}%'} | "
                   f"{'(base)' if before is None else _delta(used, before)} |")
        before = used
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    lines = ["| level | new ops | of them, emitted by this compiler | new operand types | "
             "ops gaining optional inputs |", "|---|---|---|---|---|"]
    lines += ["| FL{} | {} | {} | {} | {} |".format(lv, *unlocked(lv)) for lv in LEVELS]
    lines += ["", "| model | target | NNAPI ops | NNAPI segments | host ops + CPU segments | "
              "FLOPs on NNAPI | NNAPI ops vs the level below |", "|---|---|---|---|---|---|---|"]
    for name in args.models.split(","):
        lines += rows(name)
        print("\n".join(lines[-len(LEVELS):]), flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
