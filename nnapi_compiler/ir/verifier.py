"""IR verifier: SSA, inferred types, op well-formedness and legality at the target feature level.

Host ops (and HostType values) get the SSA, type and well-formedness checks of any op; NNAPI
legality (feature level, operand types, quantized bias) does not apply to code run by torch.

A failure raises VerificationError showing the IR around the failing op, so a broken pass is
found where it broke the program rather than later on a phone.
"""

from __future__ import annotations

from ..errors import VerificationError
from .codes import OP_SPECS, OPERAND_MIN_LEVEL, OpCode, OperandCode, type_name
from .legality import RANK_RULES, inputs_level, outputs_level, rank_problem
from .ops.base import NnapiOp, Op
from .ops.host import HostOp
from .printer import print_op
from .program import Program
from .types import Scalar, TensorType, Value


def _context(p: Program, index: int, radius: int = 3) -> str:
    lo, hi = max(0, index - radius), min(len(p.ops), index + radius + 1)
    lines = []
    for i in range(lo, hi):
        mark = ">>" if i == index else "  "
        lines.append(f"{mark} {i:4d}: {print_op(p.ops[i])}")
    return "\n".join(lines)


def _table_problems(op: NnapiOp, level: int) -> list[str]:
    """What operations.tsv (through ``legality``) forbids: ranks, optional inputs and scalar
    operand types newer than ``level``."""
    errs = []
    try:
        operands = op.nnapi_operands()
    except Exception as e:  # a malformed op; op.check() / infer() already said why
        return [f"{OpCode(op.code).name} has no NNAPI operand list: {e}"]
    tensors = [v for v in (*operands, *op.results)
               if isinstance(v, Value) and isinstance(v.type, TensorType)]
    rule = RANK_RULES[op.code]
    first = op.results[0] if rule.which == "output" else operands[0] if operands else None
    primary = first.type.rank if isinstance(first, Value) and isinstance(
        first.type, TensorType) else None
    why = rank_problem(op.code, level, primary, [v.type.rank for v in tensors])
    if why:
        errs.append(why)
    for count_level, count, what in ((inputs_level, len(operands), "inputs"),
                                     (outputs_level, len(op.results), "outputs")):
        try:
            need = count_level(op.code, count)
        except ValueError as e:
            errs.append(str(e))
            continue
        if need is not None and need > level:
            errs.append(f"{OpCode(op.code).name} with {count} {what} (optional {what} added "
                        f"later) needs feature level {need} > target {level}")
    for s in operands:
        if isinstance(s, Scalar) and OPERAND_MIN_LEVEL[s.code] > level:
            errs.append(f"{OpCode(op.code).name} scalar {OperandCode(s.code).name} needs "
                        f"feature level {OPERAND_MIN_LEVEL[s.code]}")
    return errs


def op_problems(op: Op, level: int | None) -> list[str]:
    """Everything wrong with one op in isolation (and, unless ``level`` is None, at ``level``)."""
    errs = list(op.check())
    if not errs:
        try:
            inferred = op.infer()
        except Exception as e:
            errs.append(f"type inference failed: {e}")
        else:
            actual = tuple(r.type for r in op.results)
            if inferred != actual:
                errs.append(
                    "result types " + ", ".join(map(str, actual))
                    + " != inferred " + ", ".join(map(str, inferred))
                )
    if level is None or isinstance(op, HostOp):  # host code runs in TorchScript, not NNAPI
        return errs
    bias = getattr(op, "bias", None)
    x = op.inputs()[0].type if op.inputs() else None
    if isinstance(bias, Value) and isinstance(x, TensorType) and x.quant is not None and (
        not isinstance(bias.type, TensorType) or bias.type.code != OperandCode.TENSOR_INT32
        or bias.type.quant is None
    ):
        errs.append("quantized layer needs an INT32 bias (run requantize-bias)")
    if isinstance(op, NnapiOp):
        errs += _table_problems(op, level)
        need = op.required_level()
        if need > level:
            errs.append(f"{OpCode(op.code).name} as used needs feature level {need} > target {level}")
        ins = op.inputs()
        k = op.typed_input  # the input the spec's type column describes (SELECT: the values)
        if len(ins) > k and isinstance(ins[k].type, TensorType):
            primary = type_name(ins[k].type.code)
            legal = OP_SPECS[op.code].primary_types_at(level)
            if "*" not in legal and primary not in legal:
                errs.append(f"{OpCode(op.code).name} does not take {primary} at level {level}")
    for v in (*op.inputs(), *op.results):
        if isinstance(v.type, TensorType) and OPERAND_MIN_LEVEL[v.type.code] > level:
            errs.append(f"{v.type.code.name} needs feature level {OPERAND_MIN_LEVEL[v.type.code]}")
    return errs


def verify(p: Program, check_level: bool = True) -> None:
    """Raise VerificationError on the first op (or program boundary) that breaks an invariant.

    Before legalization the IR may hold ops the target lacks; ``check_level=False`` checks
    everything else (SSA, types, op well-formedness).
    """
    defined: set[int] = set()
    for v in p.inputs:
        if v.id in defined:
            raise VerificationError(f"program input {v} defined twice")
        defined.add(v.id)
    for i, op in enumerate(p.ops):
        problems = []
        for v in op.inputs():
            if v.id not in defined:
                problems.append(f"uses {v} before it is defined")
        for r in op.results:
            if r.id in defined:
                problems.append(f"redefines {r}")
        if not op.results:
            problems.append("has no results")
        problems += op_problems(op, p.level if check_level else None)
        if problems:
            where = f" (from {op.loc})" if op.loc else ""
            raise VerificationError(
                f"op {i} {op.mnemonic}{where}: " + "; ".join(problems) + "\n" + _context(p, i)
            )
        defined.update(r.id for r in op.results)
    for v in p.outputs:
        if v.id not in defined:
            raise VerificationError(f"program output {v} is never defined")


def nnapi_refusal(op: Op, level: int) -> str:
    """Why ``op`` cannot run in an NNAPI segment at ``level`` ("" if it can).

    The one predicate behind partitioning and explain(): host ops say why they were refused
    when lowered; NNAPI-IR ops are refused by whatever the verifier finds illegal at ``level``.
    """
    if isinstance(op, HostOp):
        return op.reason or "host code"
    if not isinstance(op, NnapiOp):
        return f"{op.mnemonic} is not an NNAPI operation"
    return "; ".join(op_problems(op, level))
