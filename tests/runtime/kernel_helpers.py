"""Helpers for kernel tests: one-op FlatModels from tensors and scalars, and comparisons."""
from __future__ import annotations

import torch

from nnapi_compiler.ir.codes import OperandCode
from nnapi_compiler.ir.flat import FlatModel, OperandDesc, OperationDesc, scalar_bytes
from nnapi_compiler.runtime.interpreter import (
    execute,
)

C = OperandCode
F32 = C.TENSOR_FLOAT32
I32 = C.TENSOR_INT32
_CODES = {
    torch.float32: C.TENSOR_FLOAT32,
    torch.float16: C.TENSOR_FLOAT16,
    torch.int32: C.TENSOR_INT32,
    torch.uint8: C.TENSOR_QUANT8_ASYMM,
    torch.int8: C.TENSOR_QUANT8_ASYMM_SIGNED,
    torch.bool: C.TENSOR_BOOL8,
}


class In:
    """A runtime model input (the other tensor arguments of ``run1`` become constants)."""

    def __init__(self, t: torch.Tensor, scale: float = 0.0, zp: int = 0) -> None:
        self.t, self.scale, self.zp = t, scale, zp


class Omit:
    """An omitted optional operand of the given type."""

    def __init__(self, code: int, dims: tuple[int, ...]) -> None:
        self.code, self.dims = code, dims


def _raw(t: torch.Tensor) -> bytes:
    return t.contiguous().view(torch.uint8).numpy().tobytes()


class Builder:
    """Builds FlatModels operand by operand, remembering which tensors feed the inputs."""

    def __init__(self) -> None:
        self.model = FlatModel()
        self.feeds: list[torch.Tensor] = []

    def _add(self, desc: OperandDesc, raw: bytes | None = None) -> int:
        self.model.operands.append(desc)
        k = len(self.model.operands) - 1
        if raw is not None:
            self.model.values[k] = raw
        return k

    def arg(self, a: object) -> int:
        if isinstance(a, In):
            code = _CODES[a.t.dtype]
            k = self._add(OperandDesc(code, tuple(a.t.shape), a.scale, a.zp))
            self.model.inputs.append(k)
            self.feeds.append(a.t)
            return k
        if isinstance(a, Omit):
            return self._add(OperandDesc(a.code, a.dims), b"")
        if isinstance(a, torch.Tensor):
            return self._add(OperandDesc(_CODES[a.dtype], tuple(a.shape)), _raw(a))
        if isinstance(a, bool):
            return self._add(OperandDesc(C.BOOL), scalar_bytes(C.BOOL, a))
        if isinstance(a, int):
            return self._add(OperandDesc(C.INT32), scalar_bytes(C.INT32, a))
        if isinstance(a, float):
            return self._add(OperandDesc(C.FLOAT32), scalar_bytes(C.FLOAT32, a))
        raise TypeError(a)

    def tmp(self, code: int, dims: tuple[int, ...], scale: float = 0.0, zp: int = 0) -> int:
        return self._add(OperandDesc(code, dims, scale, zp))

    def out(self, code: int, dims: tuple[int, ...], scale: float = 0.0, zp: int = 0) -> int:
        k = self.tmp(code, dims, scale, zp)
        self.model.outputs.append(k)
        return k

    def op(self, code: int, ins: list[int], outs: list[int]) -> None:
        self.model.operations.append(OperationDesc(code, tuple(ins), tuple(outs)))

    def run(self, level: int = 4) -> list[torch.Tensor]:
        return execute(self.model, self.feeds, level)


def one_op(code, args, out_dims, out_code=None, n_out=1, scale=0.0, zp=0) -> Builder:
    b = Builder()
    ins = [b.arg(a) for a in args]
    if out_code is None:
        first = args[0].t if isinstance(args[0], In) else args[0]
        out_code = _CODES[first.dtype]
    outs = [b.out(out_code, tuple(out_dims), scale, zp) for _ in range(n_out)]
    b.op(code, ins, outs)
    return b


def run1(code, args, out_dims, out_code=None, level=4, **kw) -> torch.Tensor:
    return one_op(code, args, out_dims, out_code, **kw).run(level)[0]


def close(got: torch.Tensor, want: torch.Tensor) -> None:
    """float32 comparison: rtol 1e-5, atol 1e-5 scaled to the output magnitude."""
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = max(1.0, float(want.abs().max())) if want.numel() else 1.0
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * scale)


def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1).contiguous()


def nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2).contiguous()


def ints(*v: int) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.int32)
