"""UNIDIRECTIONAL_SEQUENCE_LSTM (FL3): a whole LSTM layer over a static sequence in one op.

Only the plain cell is emitted: all four gates (no CIFG), no peephole, projection or layer norm
(those optional operands are omitted), cell and projection clipping off, and the TANH activation.
The final hidden and cell states are extra outputs from FL4 on (``with_state``); at FL3 the op
has the sequence output only, which is what ``required_level`` reports.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from ..codes import OpCode, OperandCode
from ..types import Omitted, Operand, TensorType, Value, boolean, f32, i32
from .base import Loc, NnapiOp

#: The LSTM family's activation operand: 0 none, 1 relu, 3 relu6, 4 tanh, 6 sigmoid.
ACTIVATION_TANH = 4


@attrs.frozen(kw_only=True)
class SequenceLstm(NnapiOp):
    """``params`` are W_xi, W_xf, W_xc, W_xo ([U, in]), W_hi, W_hf, W_hc, W_ho ([U, U]), then
    b_i, b_f, b_c, b_o ([U]) (one tuple: the IR text form has room for one variadic field);
    ``h0`` / ``c0`` the initial states [B, U]. The input is [T, B, in] if ``time_major`` else
    [B, T, in]; results: the sequence (same major order, last dim U), then, if ``with_state``,
    the final h and c [B, U]."""

    mnemonic: ClassVar[str] = "sequence_lstm"
    code: ClassVar[OpCode] = OpCode.UNIDIRECTIONAL_SEQUENCE_LSTM
    results: tuple[Value, ...] = ()
    x: Value
    params: tuple[Value, ...]
    h0: Value
    c0: Value
    time_major: bool = False
    with_state: bool = False
    loc: Loc | None = attrs.field(default=None, eq=False)

    @property
    def weights(self) -> tuple[Value, ...]:
        return self.params[:8]

    @property
    def biases(self) -> tuple[Value, ...]:
        return self.params[8:]

    @property
    def units(self) -> int:
        return int(self.biases[0].type.shape[0])  # type: ignore[arg-type]

    def infer(self) -> tuple[TensorType, ...]:
        t = self.x.type
        assert isinstance(t, TensorType)
        seq = attrs.evolve(t, shape=(*t.shape[:2], self.units))
        if not self.with_state:
            return (seq,)
        state = self.h0.type
        assert isinstance(state, TensorType)
        return (seq, state, state)

    def check(self) -> list[str]:
        t = self.x.type
        if t.rank != 3 or t.code != OperandCode.TENSOR_FLOAT32:
            return [f"input must be a rank-3 float32 sequence, got {t}"]
        if len(self.params) != 12:
            return ["expected 8 weight matrices and 4 biases"]
        u, n_in, batch = self.units, t.shape[2], t.shape[1 if self.time_major else 0]
        want = [(u, n_in)] * 4 + [(u, u)] * 4
        if [w.type.shape for w in self.weights] != want:
            return [f"weight shapes {[w.type.shape for w in self.weights]} != {want}"]
        if any(b.type.shape != (u,) for b in self.biases):
            return [f"bias shapes must be ({u},)"]
        if self.h0.type.shape != (batch, u) or self.c0.type.shape != (batch, u):
            return [f"initial states must be ({batch}, {u})"]
        return []

    def required_level(self) -> int:
        return max(self.spec_level(), 4 if self.with_state else 3)

    def nnapi_operands(self) -> list[Operand]:
        none = Omitted(OperandCode.TENSOR_FLOAT32)
        return [self.x, *self.weights, none, none, none, *self.biases, none, none,
                self.h0, self.c0, i32(ACTIVATION_TANH),
                f32(0.0), f32(0.0), boolean(self.time_major), none, none, none, none]
