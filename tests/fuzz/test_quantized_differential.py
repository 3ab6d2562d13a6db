"""Differential fuzzing of quantized models (``quant_cases``): random DAGs of conv (plain,
depthwise, per-tensor or per-channel weights, fused ReLU/ReLU6, max pooling), QFunctional
add/add_relu/mul/cat/scalars, average pooling, means, nearest and bilinear upsampling, eight
activations and a linear head, quantized in eager mode (qnnpack; float or quint8 model I/O)
or through PT2E with ``NnapiQuantizer``, compiled for Android 10 or 11 and run on the virtual
device. Each stage is checked against PyTorch run on the compiled values of its inputs
(``quant_oracle``): bit-exact, or within the one quantum (or the derived per-channel bound)
that its arithmetic warrants. Every stage is checked on every element; no share is waived.

``test_the_strategy_reaches_every_kind`` pins what the generator draws, as the pass
changed-rates do for the IR fuzz."""

from __future__ import annotations

import warnings
from collections import Counter

from hypothesis import HealthCheck, given, note, settings

import nnapi_compiler as nc

from .profiles import examples
from .quant_cases import KINDS, QCase, build, qcases
from .quant_oracle import eager_stages, pt2e_stages, quanta


def run_case(case: QCase) -> list[tuple[str, float, float]]:
    """[(stage, worst error, its bound at that element)] for one case; asserts the bounds."""
    model, x = build(case)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*per-channel weights requantized")
        cm = nc.compile(model, (x,), target=case.target, verify_each_pass=True)
    with nc.virtual_device(), warnings.catch_warnings():
        # The CPU fallback would hide a model the virtual device refuses.
        warnings.filterwarnings("error", message="NNAPI is unavailable")
        got = cm(x)
    got = got if isinstance(got, tuple) else (got,)
    stages = (pt2e_stages if case.flow == "pt2e" else eager_stages)(model, case, x, got)
    report = []
    for i, (name, g, ref, bound) in enumerate(stages):
        err = quanta(g, ref).reshape(ref.int_repr().shape)
        slack = bound - err
        worst = int(slack.flatten().argmin())
        report.append((name, err.flatten()[worst].item(), bound.expand_as(err).flatten()[worst].item()))
        assert (slack >= -1e-4).all(), (
            f"tap {i} ({name}): {err.flatten()[worst].item():.0f} quanta where the bound is "
            f"{bound.expand_as(err).flatten()[worst].item():.3g}; {(slack < -1e-4).sum().item()} "
            f"of {err.numel()} elements over")
    return report


@settings(max_examples=examples(0.5))
@given(qcases())
def test_random_quantized_models_match_eager_stage_by_stage(case: QCase) -> None:
    note(repr(case))
    note(str(run_case(case)))


#: Minimum share of drawn cases that contain each label (a kind, a variant, a flow, a target).
MIN_SHARE = 0.02
LABELS = ({*KINDS["eager"], *KINDS["pt2e"], "linear", "eager", "pt2e", "per-channel", "quint8-io",
           "android-10", "android-11", "conv-depthwise", "conv-act-relu", "conv-act-relu6",
           "conv-pool-max", "add-op-add", "add-op-add_relu", "mean-mode-hw", "mean-mode-h",
           "mean-mode-c", "upsample-mode-nearest", "upsample-mode-bilinear", "scalar-op-add",
           "scalar-op-mul"})


def measure(n: int) -> Counter[str]:
    """How many of ``n`` derandomized cases contain each label."""
    seen: Counter[str] = Counter()

    @settings(max_examples=n, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(qcases())
    def draw(case: QCase) -> None:
        seen.update(case.labels())

    draw()
    return seen


def test_the_strategy_reaches_every_kind() -> None:
    n = 400
    seen = measure(n)
    low = {k: seen[k] / n for k in sorted(LABELS) if seen[k] / n < MIN_SHARE}
    assert not low, f"labels drawn in under {MIN_SHARE:.0%} of {n} cases: {low}"


if __name__ == "__main__":  # python -m tests.fuzz.test_quantized_differential: the coverage table
    counts = measure(400)
    for k in sorted(LABELS):
        print(f"| `{k}` | {counts[k]} / 400 | {100 * counts[k] / 400:.0f}% |")
