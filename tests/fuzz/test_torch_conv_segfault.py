"""Eager PyTorch's oneDNN conv2d segfault, and the fuzz generator's way around it.

The differential fuzz compares against eager PyTorch, whose oneDNN conv2d kills the process on
a channels_last input with a 1-wide, dilated, strided kernel dimension
(``tools/torch_conv_segfault.py``). The generator never draws a 1-wide kernel with dilation
(the dilation of a 1-wide kernel changes nothing), so a campaign cannot die on it.
"""

from __future__ import annotations

import importlib.util
import signal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from .strategies import MAX_C, MAX_HW, convs

TOOL = Path(__file__).resolve().parents[2] / "tools" / "torch_conv_segfault.py"


def _tool():
    spec = importlib.util.spec_from_file_location("torch_conv_segfault", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_crash_is_torch_alone_and_onednn_s() -> None:
    """Without oneDNN the call is right; with it, it is right or torch dies by SIGSEGV.

    Both run in ``python -I``, which cannot import this repository: a crash is torch's. A torch
    that no longer crashes must give the right answer too (then the workaround can go).
    """
    tool = _tool()
    native = tool.run(onednn=False)
    assert native.returncode == 0, tool.describe(native)
    assert native.stdout.split()[-1] == "0.0", native.stdout
    onednn = tool.run(onednn=True)
    assert onednn.returncode in (0, -signal.SIGSEGV), tool.describe(onednn)
    if onednn.returncode == 0:
        assert float(onednn.stdout.split()[-1]) < 1e-5, onednn.stdout


_SHAPES = st.tuples(st.integers(1, 3), st.integers(1, MAX_C), st.integers(1, MAX_HW),
                    st.integers(1, MAX_HW))


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(st.data(), _SHAPES, st.booleans())
def test_the_generator_never_dilates_a_one_wide_kernel(data: st.DataObject,
                                                       shape: tuple[int, int, int, int],
                                                       same_only: bool) -> None:
    conv = data.draw(convs(shape, same_only))
    for k, d in zip(conv.k, conv.dilation, strict=True):
        assert k > 1 or d == 1, conv
