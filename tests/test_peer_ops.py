"""tools/peer_ops.tsv (the peer columns of docs/op_support.md) is consistent with what it
describes, and the ops a peer converts to NNAPI and we do not (the gaps) are listed and pinned.

Other work this session adds ops (matmul, LayerNorm, GELU, GRU and other recurrent layers):
those are reported, not asserted, so that their arrival does not fail this test; every other
gap is pinned, so a new one (a converter removed) or a closed one (the table not updated)
fails here."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from torch.backends._nnapi.serializer import _NnapiSerializer

from nnapi_compiler.frontend.registry import REGISTRY, key_name
from nnapi_compiler.ir.codes import OpCode

ROOT = Path(__file__).resolve().parents[1]
VALUES = {"prototype": {"yes", "partial", "no", "n/a"}}
#: Gaps that work in progress elsewhere may close; reported only.
IN_FLUX: set[str] = set()
#: Every other gap, as of 2026-11-29: NNAPI has the op, a peer converts it, we do not.
PINNED_GAPS: set[str] = set()  # none left: every op a peer converts to NNAPI, we convert too


def _gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_op_table", ROOT / "tools" / "gen_op_table.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rows_are_well_formed() -> None:
    peers = _gen().load_peers()
    assert len(peers) > 70
    for op, r in peers.items():
        assert r["prototype"] in VALUES["prototype"], (op, r["prototype"])
        assert all(r[c] for c in ("ours", "torchscript", "nnapi", "tflite", "ort")), op
        for name in r["nnapi"].split(","):
            assert name == "-" or name in OpCode.__members__, f"{op}: {name} is not an NNAPI op"


def test_prototype_column_matches_its_adder_map() -> None:
    """yes: every node kind the op scripts to has an adder; partial: some do; no: not all."""
    adders = set(_NnapiSerializer.ADDER_MAP)
    for op, r in _gen().load_peers().items():
        if r["torchscript"] == "-":
            continue
        kinds = r["torchscript"].split(",")
        have = [k in adders for k in kinds]
        want = {"yes": all(have), "partial": any(have), "no": not all(have)}.get(r["prototype"])
        found = dict(zip(kinds, have, strict=True))
        assert want, f"{op}: prototype={r['prototype']} but ADDER_MAP has {found}"


def test_our_column_names_registered_converters() -> None:
    names = {e.name for e in REGISTRY.values()}
    peers = _gen().load_peers()
    for op, r in peers.items():
        assert r["ours"] == "-" or r["ours"] in names, f"{op}: no converter named {r['ours']}"
    # Converters registered but absent from the table render as "?"; list them.
    missing = sorted(names - {r["ours"] for r in peers.values()})
    print("converters with no peer_ops.tsv row:", missing or "none")


def _registered(op: str) -> bool:
    spellings = {key_name(k) for k in REGISTRY}
    return any(s in spellings for s in (f"aten.{op}.default", f"torch.{op}", f"Tensor.{op}",
                                        f"F.{op}"))


def test_gaps_are_listed_and_pinned() -> None:
    gen = _gen()
    peers = gen.load_peers()
    gaps = set(gen.gaps(peers))
    print("gaps (NNAPI op exists, a peer converts it, we do not):", sorted(gaps))
    print("  of which work in progress may close:", sorted(gaps & IN_FLUX))
    assert gaps - IN_FLUX == PINNED_GAPS
    stale = sorted(op for op in PINNED_GAPS if _registered(op))
    assert not stale, f"now converted, update tools/peer_ops.tsv and PINNED_GAPS: {stale}"
    closed = sorted(op for op in IN_FLUX & gaps if _registered(op))
    print("  in-flux gaps now registered (update tools/peer_ops.tsv):", closed or "none")
