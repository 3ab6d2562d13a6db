"""Generate docs/op_support.md from the converter registry (``--check`` fails if it is stale),
with what three other routes to NNAPI support beside each op, from tools/peer_ops.tsv."""

from __future__ import annotations

import argparse
import ast
import inspect
import sys
import textwrap
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from nnapi_compiler.frontend import converters
from nnapi_compiler.frontend.registry import REGISTRY, Entry, key_name
from nnapi_compiler.ir import ops
from nnapi_compiler.ir.codes import MIN_RUNTIME_LEVEL
from nnapi_compiler.ir.ops.resize import Interpolate
from nnapi_compiler.passes.legalize import Legalize
from nnapi_compiler.passes.upsample import _lower as upsample_lowering

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "op_support.md"
PEERS = ROOT / "tools" / "peer_ops.tsv"
#: Peer columns of peer_ops.tsv, with their headings and the sources the file cites.
PEER_COLUMNS = {
    "prototype": ("torch prototype", "`torch.backends._nnapi` (`ADDER_MAP` in "
                  "`torch/backends/_nnapi/serializer.py`, torch 2.14)"),
    "tflite": ("TFLite delegate", "the TFLite NNAPI delegate (`NNAPIDelegateKernel::Validate`, "
               "https://github.com/google-ai-edge/LiteRT/blob/main/tflite/delegates/nnapi/nnapi_delegate.cc)"),
    "ort": ("ORT NNAPI EP", "ONNX Runtime's NNAPI execution provider "
            "(https://github.com/microsoft/onnxruntime/blob/main/tools/python/util/"
            "mobile_helpers/nnapi_supported_ops.md, "
            "linked from https://onnxruntime.ai/docs/execution-providers/NNAPI-ExecutionProvider.html)"),
}
COMMAND = "python tools/gen_op_table.py"

_CONVERTERS_PKG = converters.__name__ + "."


class _Refs(ast.NodeVisitor):
    """Collects ``ops.<Name>`` attributes and called plain names in a function's code.

    Comments, strings, type annotations and decorators are not code that runs during lowering,
    so they are skipped (``cls: type[ops.Softmax]`` in a helper must not count as a use).
    """

    def __init__(self) -> None:
        self.ops: list[str] = []
        self.calls: list[str] = []
        self.names: list[str] = []

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.visit(node.args)
        for stmt in node.body:
            self.visit(stmt)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_arg(self, node: ast.arg) -> None:
        return  # only an annotation lives here

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and node.value.id == "ops":
            self.ops.append(node.attr)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name):
            self.calls.append(node.func.id)
        # A helper handed to another one by keyword (``sequence=_sequence_lstm``) is called too.
        self.calls += [k.value.id for k in node.keywords if isinstance(k.value, ast.Name)]
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self.names.append(node.id)


def _op_classes(fn: Callable[..., Any], seen: set[Callable[..., Any]] | None = None) -> list[type]:
    """NNAPI op classes named as ``ops.<Class>`` in ``fn`` or in the project helpers it calls.

    Helpers are followed through ``fn``'s module globals, so ``relu6`` -> ``clamp_value`` counts.
    The result is an upper bound: a converter may pick only some of them for a given call.
    """
    seen = set() if seen is None else seen
    seen.add(fn)
    refs = _Refs()
    refs.visit(ast.parse(textwrap.dedent(inspect.getsource(fn))))
    found: list[type] = []
    for name in refs.ops:
        cls = getattr(ops, name, None)
        if isinstance(cls, type) and issubclass(cls, ops.NnapiOp) and cls not in found:
            found.append(cls)
    if upsample_lowering not in seen and any(fn.__globals__.get(n) is Interpolate for n in refs.names):
        # The canonical Interpolate op becomes NNAPI ops in the simplify-upsample pass.
        found += [c for c in _op_classes(upsample_lowering, seen) if c not in found]
    for name in refs.calls:
        helper = fn.__globals__.get(name)
        if (inspect.isfunction(helper) and helper not in seen
                and helper.__module__.startswith("nnapi_compiler.")):
            found += [c for c in _op_classes(helper, seen) if c not in found]
    return found


def _code_name(cls: type) -> str:
    return cls.code.name  # type: ignore[attr-defined]


def _op_cell(classes: list[type]) -> str:
    """NNAPI op names, with the feature level of any op newer than the runtime's minimum."""
    parts = []
    for cls in sorted(classes, key=_code_name):
        level = cls.spec_level()  # type: ignore[attr-defined]
        note = f" (FL{level}+)" if level > MIN_RUNTIME_LEVEL else ""
        parts.append(f"`{_code_name(cls)}`{note}")
    return ", ".join(parts)


def _legalize_notes(classes: list[type]) -> list[str]:
    """What the ``legalize`` pass turns an op into below the level that introduced it."""
    notes = []
    for cls, (level, rule) in Legalize.RULES.items():
        if cls in classes:
            into = ", ".join(f"`{n}`" for n in sorted(_code_name(c) for c in _op_classes(rule)))  # type: ignore[arg-type]
            notes.append(f"below FL{level} the `{Legalize.name}` pass rewrites "
                         f"`{_code_name(cls)}` as {into}")
    return notes


def _spelling(key: Any) -> str:
    name = key_name(key)
    if name.startswith("torch._ops.quantized."):
        # The op packet's printed module embeds the pybind11 ABI tag of this torch build.
        name = "torch.ops.quantized." + name.rsplit(".", 1)[-1]
    # Method keys are matched by name; mark those torch.Tensor does not actually have.
    if isinstance(key, str) and not hasattr(torch.Tensor, key):
        return f"`{name}`†"
    return f"`{name}`"


def _family(entry: Entry) -> str:
    mod = entry.fn.__module__
    return mod[len(_CONVERTERS_PKG):] if mod.startswith(_CONVERTERS_PKG) else mod


def load_peers(path: Path = PEERS) -> dict[str, dict[str, str]]:
    """peer_ops.tsv as {op: {column: value}} (``#`` lines are provenance comments)."""
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    header = lines[0].split("\t")
    rows = {}
    for ln in lines[1:]:
        cells = ln.split("\t")
        row = dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=True))
        rows[row["op"]] = row
    return rows


def _peer_cell(column: str, value: str | None) -> str:
    """yes / partial / no / n/a; for TFLite and ORT, the peer op that computes it."""
    if value is None:
        return "?"
    if column == "prototype" or value in ("-", "n/a"):
        return {"-": "no"}.get(value, value)
    return f"yes (`{value}`)"


def gaps(peers: dict[str, dict[str, str]]) -> list[str]:
    """Ops we do not convert that NNAPI can express and a peer supports."""
    return [op for op, r in peers.items() if r["ours"] == "-" and r["nnapi"] != "-"
            and any(r[c] not in ("no", "-", "n/a") for c in PEER_COLUMNS)]


def _peer_section(peers: dict[str, dict[str, str]]) -> list[str]:
    rows = []
    for op, r in peers.items():
        if r["ours"] != "-":
            continue
        nnapi = ", ".join(f"`{n}`" for n in r["nnapi"].split(",")) if r["nnapi"] != "-" else "none"
        gap = " **gap**" if op in gaps(peers) else ""
        cells = " | ".join(_peer_cell(c, r[c]) for c in PEER_COLUMNS)
        rows.append(f"| `{op}`{gap} | {nnapi} | {cells} | {r['note']} |")
    heads = " | ".join(h for h, _ in PEER_COLUMNS.values())
    return [
        "## Ops other converters support and we do not",
        "",
        "From `tools/peer_ops.tsv`. **gap** marks an op that NNAPI can express and at least one "
        "peer converts; `tests/test_peer_ops.py` lists the gaps and pins the ones no work in "
        "progress covers.",
        "",
        f"| PyTorch op | NNAPI | {heads} | Note |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "## Sources of the peer columns",
        "",
        *(f"- **{h}**: {src}." for h, src in PEER_COLUMNS.values()),
        "",
        "A peer supports an op when one op it converts computes it; each peer has limits of its "
        "own (ranks, constant operands, Android versions) that these columns do not repeat. "
        "`tools/peer_ops.tsv` records how each list was read; `tests/test_peer_ops.py` checks the "
        "prototype column against the installed `ADDER_MAP`.",
        "",
    ]


def generate() -> str:
    """The full text of docs/op_support.md for the registry as currently imported."""
    groups: dict[str, list[Any]] = defaultdict(list)
    entries: dict[str, Entry] = {}
    for key, entry in REGISTRY.items():
        groups[entry.name].append(key)
        entries.setdefault(entry.name, entry)
    order = sorted(entries, key=lambda n: (_family(entries[n]),
                                           inspect.getsourcelines(entries[n].fn)[1], n))
    peers = load_peers()
    rows = []
    for name in order:
        entry = entries[name]
        classes = _op_classes(entry.fn)
        cell = _op_cell(classes) or "none (passes its input through)"
        notes = _legalize_notes(classes)
        if notes:
            cell += "; " + "; ".join(notes)
        spellings = ", ".join(_spelling(k) for k in sorted(groups[name], key=key_name))
        # The row of the op, else the row whose `ours` column names this converter
        # (peer_ops.tsv row `rnn_tanh` is converted by `rnn`).
        peer = peers.get(name) or next((r for r in peers.values() if r["ours"] == name), None)
        others = " | ".join(_peer_cell(c, peer[c] if peer else None) for c in PEER_COLUMNS)
        rows.append(f"| `{name}` | {_family(entry)} | {cell} | {others} | {spellings} |")
    n_keys = sum(len(v) for v in groups.values())
    lines = [
        "# Supported PyTorch ops",
        "",
        f"<!-- Generated by `{COMMAND}` from the converter registry. Do not edit by hand. -->",
        "",
        f"This file is generated by `{COMMAND}` from the converter registry "
        "(`nnapi_compiler.frontend.registry.REGISTRY`); `tests/test_docs.py` fails when it is "
        f"stale. {len(rows)} converters are registered under {n_keys} spellings.",
        "",
        "- **Converter**: the registered function (in `nnapi_compiler/frontend/converters/<family>.py`).",
        "- **NNAPI ops**: every NNAPI operation the converter's source (and the helpers it calls) "
        "can emit; which ones a given call emits depends on its arguments (e.g. `clamp(0, 6)` is "
        "one `RELU6`, other bounds are `MAXIMUM`/`MINIMUM`). `(FLn+)` marks an op that exists from "
        f"feature level n only (the lowest target is FL{MIN_RUNTIME_LEVEL}).",
        "- **Spellings**: every registry key, as `nnapi_compiler.frontend.registry.key_name` "
        "prints it: torch functions, `F.*` functions, `Tensor.<method>` names (call_method "
        "nodes), `operator.*`, module classes (`nn.<Class>`, call_module nodes) and the "
        "ATen overloads `torch.export` emits. † marks a method name `torch.Tensor` does not "
        "have in this torch build (registered, but never produced by a real model).",
        "",
        "- **" + " / ".join(h for h, _ in PEER_COLUMNS.values()) + "**: whether PyTorch's "
        "prototype NNAPI converter, TensorFlow Lite's NNAPI delegate and ONNX Runtime's NNAPI "
        "execution provider support the op (with the peer op that computes it), from "
        "`tools/peer_ops.tsv` ([sources](#sources-of-the-peer-columns)); `?` = not recorded there yet.",
        "",
        "A spelling listed here can still be refused for particular arguments (the converter "
        "raises `Refuse` with the reason; `compile()` reports every refused node at once).",
        "",
        "| Converter | Family | NNAPI ops | " + " | ".join(h for h, _ in PEER_COLUMNS.values())
        + " | Spellings |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        *_peer_section(peers),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help=f"exit 1 if {OUTPUT.relative_to(ROOT)} differs from what would be generated")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = args.output.read_text() if args.output.is_file() else None
        if current != text:
            print(f"{args.output} is stale; run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    n_lines = text.count("\n")
    print(f"wrote {args.output} ({n_lines} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
