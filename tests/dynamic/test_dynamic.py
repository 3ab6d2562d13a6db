"""Dynamic input dims (issue 9): one artifact runs every size in the declared range, matching
eager on the virtual device, and refuses sizes outside it with a clear error."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.export import Dim

import nnapi_compiler as nc
from nnapi_compiler.errors import ConversionError, InputError, NnapiCompilerError
from tests.conftest import assert_close_scaled


def run_sizes(model: nn.Module, example: tuple, sizes: list[tuple], **kw: Any) -> nc.CompiledModel:
    """Compile once with ``kw`` (dynamic_shapes, ...), run every input tuple in ``sizes`` through
    the NNAPI path and the CPU path, and compare with eager."""
    model = model.eval()
    cm = nc.compile(model, example, **kw)
    with nc.virtual_device():
        for inputs in sizes:
            with torch.no_grad():
                ref = model(*[x.clone() for x in inputs])
            assert_close_scaled(cm(*[x.clone() for x in inputs]), ref, rtol=1e-4, atol=1e-4)
    return cm


class FCN(nn.Module):
    """Fully convolutional: strided convs, BN, ceil-mode pooling, bilinear upsample to the input."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.c3 = nn.Conv2d(16, 4, 1)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn(self.c1(x)))
        y = self.pool(F.relu(self.c2(y)))
        return F.interpolate(self.c3(y), size=x.shape[-2:], mode="bilinear", align_corners=False)


class ConvOnly(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), nn.ReLU6(),
                                  nn.Conv2d(8, 4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_mobilenet_v2_dynamic_batch() -> None:
    tv = pytest.importorskip("torchvision")
    m = tv.models.mobilenet_v2().eval()
    batch = Dim("batch", min=1, max=16)
    cm = run_sizes(m, (torch.randn(2, 3, 64, 64),),
                   [(torch.randn(b, 3, 64, 64),) for b in (1, 3, 8)],
                   dynamic_shapes=({0: batch},))
    assert cm.stats["segments"] == 1 and cm.stats["host_ops"] == 0  # all of it on NNAPI
    with nc.virtual_device():
        with pytest.raises(InputError, match=r"dim 0 is 17, outside its dynamic range "
                                             r"\(batch in \[1, 16\]\)"):
            cm(torch.randn(17, 3, 64, 64))
        with pytest.raises(InputError, match="size 64 in dim 2"):
            cm(torch.randn(2, 3, 32, 64))
        cm.use_cpu()  # the CPU path takes every batch too
        x = torch.randn(5, 3, 64, 64)
        assert_close_scaled(cm(x), m(x), rtol=1e-4, atol=1e-4)


def test_wrapper_refuses_out_of_range_in_torchscript() -> None:
    """The artifact itself (what the phone runs) checks the declared range, not just Python."""
    cm = nc.compile(ConvOnly().eval(), (torch.randn(1, 3, 16, 16),),
                    dynamic_shapes={"x": {2: Dim("h", min=8, max=32)}})
    with nc.virtual_device():
        cm.script_module(torch.randn(1, 3, 9, 16))
        with pytest.raises(torch.jit.Error, match=r"dim 2 \(dynamic dim h in \[8, 32\]\) got 33"):
            cm.script_module(torch.randn(1, 3, 33, 16))


@pytest.mark.parametrize("model_cls", [ConvOnly, FCN])
def test_fully_convolutional_dynamic_hw(model_cls: type) -> None:
    h, w = Dim("h", min=8, max=128), Dim("w", min=8, max=128)
    sizes = [(32, 32), (17, 45), (64, 31), (9, 8), (127, 128)]
    cm = run_sizes(model_cls(), (torch.randn(1, 3, 32, 32),),
                   [(torch.randn(1, 3, a, b),) for a, b in sizes],
                   dynamic_shapes=({2: h, 3: w},))
    assert cm.stats["segments"] >= 1


def test_shape_arithmetic_view_and_size() -> None:
    """``x.size()`` and ``view(b, -1)`` follow the runtime size; flatten + linear stay on NNAPI."""

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 8 * 8, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b = x.size(0)
            y = F.relu(self.conv(x)).view(b, -1)
            return self.fc(y) * 2.0

    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 8 * 8, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.flatten(F.relu(self.conv(x)), 1))

    for m in (Head(), Flat()):
        cm = run_sizes(m, (torch.randn(2, 3, 8, 8),), [(torch.randn(b, 3, 8, 8),) for b in (1, 2, 7)],
                       dynamic_shapes=({0: Dim("b", max=32)},))
        if isinstance(m, Flat):
            assert cm.stats["host_ops"] == 0


def test_two_inputs_sharing_a_dim() -> None:
    class Add(nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return torch.relu(a + b) * a

    n = Dim("n", min=1, max=64)
    cm = run_sizes(Add(), (torch.randn(4, 6), torch.randn(4, 6)),
                   [(torch.randn(k, 6), torch.randn(k, 6)) for k in (1, 9)],
                   dynamic_shapes={"a": {0: n}, "b": {0: n}})
    with nc.virtual_device():
        with pytest.raises(InputError, match="must equal the other dims named 'n'"):
            cm(torch.randn(3, 6), torch.randn(5, 6))
        with pytest.raises(torch.jit.Error, match="must equal the other dims named 'n'"):
            cm.script_module(torch.randn(3, 6), torch.randn(5, 6))


def test_size_zero_marks_dynamic_dim() -> None:
    """torch.backends._nnapi's convention: a size-0 dim in the example is dynamic (>= 1)."""
    m = ConvOnly()
    run_sizes(m, (torch.zeros(0, 3, 0, 0),),
              [(torch.randn(b, 3, h, w),) for b, h, w in ((1, 8, 8), (3, 21, 16), (2, 40, 33))])


@pytest.mark.parametrize("spec, match", [
    ({"y": {0: Dim("b")}}, "not inputs of forward"),
    (({5: Dim("b")},), "is not a dim"),
    (({0: "batch"},), "expected torch.export.Dim"),
    (({0: Dim("b", min=4, max=8)},), "outside its range"),
])
def test_bad_declarations_are_conversion_errors(spec: Any, match: str) -> None:
    with pytest.raises(ConversionError, match=match):
        nc.compile(ConvOnly().eval(), (torch.randn(2, 3, 8, 8),), dynamic_shapes=spec)


def test_model_fixing_a_dynamic_dim_is_refused() -> None:
    class Fixed(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x.view(2, 12)) + 1.0

    with pytest.raises(NnapiCompilerError, match="dynamic"):
        nc.compile(Fixed().eval(), (torch.randn(2, 3, 4),), dynamic_shapes=({0: Dim("b")},))


def test_segmentation_lraspp_two_resolutions() -> None:
    """torchvision's LR-ASPP: its bilinear resizes to the input size run on the CPU (their NNAPI
    form bakes the size); everything else is NNAPI, and results match eager at any size."""
    tv = pytest.importorskip("torchvision")
    seg = tv.models.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                           num_classes=3).eval()

    class Out(nn.Module):  # TorchScript returns a plain dict for the OrderedDict: compare "out"
        def __init__(self) -> None:
            super().__init__()
            self.seg = seg

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.seg(x)["out"]

    m = Out().eval()
    hw = {2: Dim("h", min=32, max=256), 3: Dim("w", min=32, max=256)}
    cm = run_sizes(m, (torch.randn(1, 3, 64, 64),),
                   [(torch.randn(1, 3, 96, 72),), (torch.randn(1, 3, 57, 83),)],
                   dynamic_shapes=(hw,))
    assert cm.stats["nnapi_ops"] > 100


def test_export_dialect_with_dynamic_dims() -> None:
    """A model fx cannot trace (Python branches on a size) is exported with symbolic dims."""

    class Branch(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.size(1) == 3:
                x = x * 2.0
            y = F.relu(self.conv(x))
            return y.view(y.size(0), -1)

    dims = {0: Dim("b", max=9), 2: Dim("h", min=4, max=20)}
    cm = run_sizes(Branch(), (torch.randn(2, 3, 8, 8),),
                   [(torch.randn(b, 3, h, 8),) for b, h in ((1, 8), (5, 13), (9, 20))],
                   dynamic_shapes=(dims,))
    assert cm.stats["capture"] == "export"


def test_saved_ptl_runs_several_sizes_in_the_lite_interpreter(tmp_path: Any) -> None:
    from torch.jit.mobile import _load_for_lite_interpreter

    m = FCN().eval()
    cm = nc.compile(m, (torch.randn(1, 3, 24, 24),),
                    dynamic_shapes=({0: Dim("n", max=4), 2: Dim("h", min=8, max=64),
                                     3: Dim("w", min=8, max=64)},))
    lite = _load_for_lite_interpreter(str(cm.save(tmp_path / "fcn.ptl")))
    with nc.virtual_device():
        for shape in ((1, 3, 24, 24), (3, 3, 31, 18), (2, 3, 64, 9)):
            x = torch.randn(shape)
            with torch.no_grad():
                assert_close_scaled(lite(x.clone()), m(x), rtol=1e-4, atol=1e-4)
        with pytest.raises(torch.jit.Error, match=r"dynamic dim h in \[8, 64\]\) got 65"):
            lite(torch.randn(1, 3, 65, 24))


def test_model_failing_inside_the_declared_range_is_a_conversion_error() -> None:
    class Even(nn.Module):  # a skip connection that only works for even sizes
        def __init__(self) -> None:
            super().__init__()
            self.down = nn.Conv2d(3, 3, 3, stride=2, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + F.interpolate(self.down(x), scale_factor=2.0)

    with pytest.raises(ConversionError, match=r"must match the size of tensor b \(2\*"):
        nc.compile(Even().eval(), (torch.randn(1, 3, 16, 16),),
                   dynamic_shapes=({2: Dim("h", min=8, max=64)},))


def test_classifier_with_dynamic_hw_stays_on_nnapi() -> None:
    """Global average pooling + linear: no size is baked, so nothing leaves NNAPI."""
    m = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    dims = {0: Dim("b", max=4), 2: Dim("h", min=8, max=64), 3: Dim("w", min=8, max=64)}
    cm = run_sizes(m, (torch.randn(1, 3, 16, 16),),
                   [(torch.randn(b, 3, h, w),) for b, h, w in ((1, 16, 16), (3, 9, 33), (4, 64, 8))],
                   dynamic_shapes=(dims,))
    assert cm.stats["host_ops"] == 0 and cm.stats["segments"] == 1 and cm.stats["cpu_segments"] == 0


def test_explain_names_the_dynamic_reasons() -> None:
    report = str(nc.explain(FCN().eval(), (torch.randn(1, 3, 32, 32),),
                            dynamic_shapes=({2: Dim("h", min=8, max=64)},)))
    assert "reads the size of a dynamic dimension" in report
    assert "depends on the size of a dynamic dimension" in report  # the ceil-mode pool


def test_slices_following_the_size_stay_on_nnapi() -> None:
    """Slice bounds at a fixed distance from a dynamic dim become "to the end" / negative indices
    (STRIDED_SLICE counts them from the end), so chunk and shifted differences stay on NNAPI."""

    class Shift(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            a, b = x.chunk(2, dim=1)
            d = a[:, :, 1:, :] - a[:, :, :-1, :]
            return torch.cat([d, b[:, :, 1:, :]], dim=1).relu(), x[:, :, :, -3:] * 2.0

    dims = {0: Dim("b", max=8), 2: Dim("h", min=4, max=40), 3: Dim("w", min=3, max=40)}
    cm = run_sizes(Shift(), (torch.randn(2, 6, 10, 12),),
                   [(torch.randn(b, 6, h, w),) for b, h, w in ((1, 10, 12), (3, 5, 3), (8, 40, 17))],
                   dynamic_shapes=(dims,))
    assert cm.stats["host_ops"] == 0 and cm.stats["segments"] == 1


def test_dynamic_dims_on_an_uncapturable_model_are_refused() -> None:
    class Loop(nn.Module):  # data-dependent Python control flow: neither fx nor export captures it
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            while x.sum() > 0:
                x = x - 1.0
            return x.relu()

    with pytest.raises(nc.CaptureError, match="dynamic dims need a captured model"):
        nc.compile(Loop().eval(), (torch.randn(2, 3),), dynamic_shapes=({0: Dim("b")},))


@pytest.mark.parametrize("scale, whole", [(2.0, True), (3.0, True), (1.5, False)])
def test_nearest_upsample_by_scale_with_dynamic_hw(scale: float, whole: bool) -> None:
    """An integer scale factor stays on NNAPI as RESIZE_NEAREST_NEIGHBOR "by scale" (its output
    size follows the input); another factor's size and source indices bake the size: CPU."""

    class Up(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x * 2.0, scale_factor=scale, mode="nearest") + 1.0

    sizes = [(torch.randn(1, 3, h, w),) for h, w in ((8, 8), (5, 11), (1, 1), (23, 2))]
    cm = run_sizes(Up(), (torch.randn(1, 3, 8, 8),), sizes,
                   dynamic_shapes=({2: Dim("h", max=64), 3: Dim("w", max=64)},))
    assert (cm.stats["host_ops"] == 0) == whole
    cm.use_cpu()
    for (x,) in sizes:
        assert_close_scaled(cm(x.clone()), Up()(x), rtol=1e-4, atol=1e-4)


class _SliceAll(nn.Module):  # the prototype's slice case: dim 1 yields 2 elements only from 5 up
    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return t[1:, 1:5:2, :]


def test_size_zero_range_is_narrowed_to_what_the_model_runs() -> None:
    """Every dim flexible (the prototype refuses this case): the samples cannot see that the
    slice needs dim 1 >= 5, the range ends can; the artifact accepts exactly [5, inf)."""
    m = _SliceAll().eval()
    cm = nc.compile(m, (torch.zeros(0, 0, 0),))
    for shape in [(4, 6, 2), (3, 9, 5), (1, 5, 1)]:
        x = torch.randn(shape)
        with nc.virtual_device():
            got = cm(x)
        assert torch.equal(got, m(x))
    with nc.virtual_device(), pytest.raises(nc.InputError, match=r"dim 1 is 2, outside .*\[5, inf\]"):
        cm(torch.randn(2, 2, 3))


def test_declared_range_the_model_cannot_run_names_the_range_to_declare() -> None:
    with pytest.raises(ConversionError, match=r"only runs with sizes in \[5, 20\] .*c >= 5.*"
                                              r"Dim\('c', min=5, max=20\)"):
        nc.compile(_SliceAll().eval(), (torch.randn(4, 6, 3),),
                   dynamic_shapes=({1: Dim("c", min=2, max=20)},))


def test_conv_without_padding_narrows_a_size_zero_dim_and_runs_at_its_minimum() -> None:
    m = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU()).eval()
    cm = nc.compile(m, (torch.zeros(1, 2, 0, 8),))
    for h in (3, 4, 11):
        x = torch.randn(1, 2, h, 8)
        with nc.virtual_device():
            assert_close_scaled(cm(x), m(x))
    with nc.virtual_device(), pytest.raises(nc.InputError, match="outside its dynamic range"):
        cm(torch.randn(1, 2, 2, 8))
