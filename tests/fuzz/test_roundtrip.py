"""Round trips: IR printer determinism, and ser_model write -> read -> equal (random and real)."""

from __future__ import annotations

import struct

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nnapi_compiler.backend.flatten import flatten
from nnapi_compiler.backend.ser_model import BufferRef, read_ser_model, write_ser_model
from nnapi_compiler.ir.flat import FlatModel, OperandDesc, OperationDesc
from nnapi_compiler.ir.ops.resize import Interpolate
from nnapi_compiler.ir.printer import print_program
from nnapi_compiler.passes import pipeline

from .ir_recipes import Recipe
from .ir_run import computed_outputs
from .ir_strategies import recipes
from .profiles import examples

I32 = st.integers(-(2**31), 2**31 - 1)
U32 = st.integers(0, 2**32 - 1)


@st.composite
def flat_models(draw: st.DrawFn) -> tuple[FlatModel, dict[int, BufferRef], list[torch.Tensor]]:
    """Structurally valid ser_model contents with arbitrary codes, dims and payloads.

    The reader checks structure, not NNAPI semantics, so any code, dim or scale must survive.
    Returns (model with every value resolved, buffer references, weights).
    """
    n = draw(st.integers(1, 10))
    idx = st.integers(0, n - 1)
    operands = [
        OperandDesc(draw(I32), tuple(draw(st.lists(U32, max_size=6))),
                    draw(st.floats(allow_nan=False, width=32)), draw(I32))
        for _ in range(n)
    ]
    weights = [torch.frombuffer(bytearray(draw(st.binary(min_size=1, max_size=64))), dtype=torch.uint8)
               for _ in range(draw(st.integers(0, 3)))]
    values: dict[int, bytes] = {}
    refs: dict[int, BufferRef] = {}
    for k in draw(st.sets(idx, max_size=n)):
        if weights and draw(st.booleans()):
            buf = draw(st.integers(0, len(weights) - 1))
            size = weights[buf].numel()
            off = draw(st.integers(0, size))
            length = draw(st.integers(0, size - off))
            refs[k] = BufferRef(buf, off, length)
            values[k] = bytes(weights[buf].numpy().tobytes()[off : off + length])
        else:
            values[k] = draw(st.binary(max_size=40))
    operations = [
        OperationDesc(draw(I32), tuple(draw(st.lists(idx, max_size=5))),
                      tuple(draw(st.lists(idx, max_size=3))))
        for _ in range(draw(st.integers(0, 6)))
    ]
    model = FlatModel(operands, values, operations, draw(st.lists(idx, max_size=4)),
                      draw(st.lists(idx, max_size=4)))
    return model, refs, weights


@settings(max_examples=examples(5.0))
@given(flat_models())
def test_ser_model_write_read_is_identity(
    case: tuple[FlatModel, dict[int, BufferRef], list[torch.Tensor]],
) -> None:
    model, refs, weights = case
    immediate = FlatModel(model.operands, {k: v for k, v in model.values.items() if k not in refs},
                          model.operations, model.inputs, model.outputs)
    ser = write_ser_model(immediate, refs)
    assert ser.dtype == torch.int32 and ser.is_contiguous()
    assert torch.equal(ser, write_ser_model(immediate, refs))  # deterministic bytes
    back = read_ser_model(ser, weights)
    assert back == model
    raw = ser.numpy().tobytes()
    assert struct.unpack_from("<6i", raw) == (1, len(model.operands), len(model.values),
                                              len(model.operations), len(model.inputs), len(model.outputs))
    assert read_ser_model(raw, weights) == model  # bytes and tensors read the same


@settings(max_examples=examples(3.0))
@given(recipes())
def test_flatten_round_trips_through_ser_model(recipe: Recipe) -> None:
    for p in (recipe.build(), computed_outputs(pipeline.default_pipeline().run(recipe.build()))):
        if not p.outputs:  # the pipeline reduced every output to an input (served by the wrapper)
            continue
        if any(isinstance(op, Interpolate) for op in p.ops):
            continue  # not an NNAPI op until simplify-upsample: the raw program has no ser_model
        seg = flatten(p)
        back = read_ser_model(seg.ser_model, list(seg.weights))
        flat = seg.flat
        assert back.operands == flat.operands and back.operations == flat.operations
        assert back.inputs == flat.inputs and back.outputs == flat.outputs
        for k, raw in flat.values.items():
            assert back.values[k] == raw
        assert set(back.values) >= set(flat.values)  # plus the constants held in weight buffers
        assert torch.equal(flatten(p).ser_model, seg.ser_model)


@settings(max_examples=examples(3.0))
@given(recipes())
def test_printer_is_deterministic_and_equal_programs_print_equal(recipe: Recipe) -> None:
    p, q = recipe.build(), recipe.build()
    assert p == q
    text = print_program(p)
    assert text == print_program(p) == print_program(q)
    assert text.startswith(f"program @fl{p.level} (") and text.endswith("}")
    assert len(text.splitlines()) == len(p.ops) + 2  # one line per op
    after_p, after_q = pipeline.default_pipeline().run(p), pipeline.default_pipeline().run(q)
    assert after_p == after_q
    assert print_program(after_p) == print_program(after_q)
