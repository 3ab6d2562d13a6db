"""Op traits: declared once on the op classes, consistent with each class's fields and operands."""

from __future__ import annotations

import attrs
import pytest

from nnapi_compiler.ir import ops
from nnapi_compiler.ir.codes import OpCode
from nnapi_compiler.ir.ops.base import NnapiOp, _field_names

CLASSES = ops.op_classes()


def test_every_op_class_is_found() -> None:
    names = {c.__name__ for c in CLASSES}
    assert {"Conv2d", "Relu", "HostOp", "Constant", "Interpolate", "LogSoftmax"} <= names
    assert not any(c.__name__.startswith("_") for c in CLASSES)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_traits_agree_with_fields(cls: type) -> None:
    fields = {f.name for f in attrs.fields(cls)}
    assert cls.fusable == ("fuse" in fields)  # fusable means: has a fuse-code operand
    if cls.weighted is not None:
        field, axis = cls.weighted
        assert field in _field_names(cls) and "bias" in fields and axis in (0, 3)
    assert not (cls.spatial and cls.layout_follows)
    if cls is ops.HostOp or cls is ops.Constant:
        assert not (cls.fusable or cls.spatial or cls.layout_follows or cls.weighted
                    or cls.nchw_flag)


def test_layout_flag_codes_come_from_the_classes() -> None:
    assert {
        OpCode.CONV_2D, OpCode.DEPTHWISE_CONV_2D, OpCode.GROUPED_CONV_2D,
        OpCode.TRANSPOSE_CONV_2D, OpCode.AVERAGE_POOL_2D, OpCode.MAX_POOL_2D, OpCode.L2_POOL_2D,
        OpCode.RESIZE_BILINEAR, OpCode.RESIZE_NEAREST_NEIGHBOR,
        OpCode.DEPTH_TO_SPACE, OpCode.SPACE_TO_DEPTH, OpCode.INSTANCE_NORMALIZATION,
    } == ops.LAYOUT_FLAG_CODES
    assert all(issubclass(c, NnapiOp) for c in CLASSES if c.nchw_flag)
