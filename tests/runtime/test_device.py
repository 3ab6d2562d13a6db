"""The virtual NNAPI device, driven by PyTorch's real NNAPI runtime (``torch.classes._nnapi``)."""

from __future__ import annotations

import gc

import pytest
import torch

from nnapi_compiler.backend.ser_model import BufferRef
from nnapi_compiler.errors import VirtualDeviceError
from nnapi_compiler.ir.codes import OpCode, OperandCode
from nnapi_compiler.ir.flat import FlatModel, OperandDesc, OperationDesc
from nnapi_compiler.runtime import interpreter
from nnapi_compiler.runtime.device import current_device, last_error, live_handles, virtual_device

from .conftest import F32, add_model, compile_model

C = OperandCode


def run_add(comp: torch.ScriptObject, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
    comp.run([a, b], [out])


def test_add_runs_and_is_recorded_exactly() -> None:
    a, b, out = torch.randn(2, 3), torch.randn(2, 3), torch.empty(2, 3)
    model = add_model()
    with virtual_device() as dev:
        assert current_device() is dev
        comp = compile_model(model)
        comp.run([a, b], [out])
    assert torch.equal(out, a + b)
    assert dev.finished_models == [model]  # the runtime replayed our model call for call
    assert dev.calls["Model_addOperand"] == 4 and dev.calls["Execution_compute"] == 1
    assert current_device() is None


def test_weights_list_values() -> None:
    model = add_model()
    model.inputs = [0]
    const = torch.arange(6, dtype=torch.float32)
    weights = [torch.cat([torch.zeros(2), const])]
    refs = {1: BufferRef(buffer=0, offset=8, length=24)}
    x, out = torch.randn(2, 3), torch.empty(2, 3)
    with virtual_device():
        compile_model(model, weights, refs).run([x], [out])
    assert torch.equal(out, x + const.reshape(2, 3))


def test_outside_the_context_nnapi_fails_cleanly() -> None:
    with pytest.raises(RuntimeError):
        compile_model(add_model())
    with virtual_device():
        comp = compile_model(add_model())
    with pytest.raises(RuntimeError, match="error 9"):  # UNAVAILABLE_DEVICE
        run_add(comp, torch.randn(2, 3), torch.randn(2, 3), torch.empty(2, 3))
    assert "no virtual_device() is active" in last_error()


def test_unavailable_device_fails_model_create() -> None:
    with virtual_device(available=False) as dev, pytest.raises(RuntimeError, match="Model_create"):
        compile_model(add_model())
    assert dev.calls["Model_create"] == 1 and "available=False" in last_error()


def test_refused_op_fails_at_compilation() -> None:
    with virtual_device(refuse_ops=[OpCode.ADD]), pytest.raises(RuntimeError):
        compile_model(add_model())
    assert "refuses operation 0 (ADD)" in last_error()
    with pytest.raises(VirtualDeviceError), virtual_device(refuse_ops=[4242]):
        pass


def test_feature_level_gates_ops_and_nesting_restores_outer() -> None:
    t = OperandDesc(F32, (4,))
    model = FlatModel([t, t], {}, [OperationDesc(OpCode.HARD_SWISH, (0,), (1,))], [0], [1])
    x, out = torch.linspace(-4, 4, 4), torch.empty(4)
    with virtual_device(feature_level=4) as outer:
        with virtual_device(feature_level=3) as inner:
            assert current_device() is inner
            with pytest.raises(RuntimeError, match="NNAPI returned error: 4"):  # BAD_DATA
                compile_model(model)
            assert "(HARD_SWISH) needs feature level 4, device has 3" in last_error()
        assert current_device() is outer
        compile_model(model).run([x], [out])
    assert torch.allclose(out, x * torch.clamp(x + 3, 0, 6) / 6)


@pytest.mark.parametrize(
    ("a", "out", "match"),
    [
        (torch.randn(2, 4), torch.empty(2, 3), "setInput"),  # wrong dims
        (torch.randn(3, 2), torch.empty(2, 3), "setInput"),
        (torch.ones(2, 3, dtype=torch.int32), torch.empty(2, 3), "setInput"),  # wrong type
        (torch.randn(2, 3), torch.empty(5), "setOutput"),  # output buffer too small
    ],
)
def test_bad_arguments_raise(a: torch.Tensor, out: torch.Tensor, match: str) -> None:
    with virtual_device():
        comp = compile_model(add_model())
        with pytest.raises(RuntimeError, match=match):
            run_add(comp, a, torch.randn(2, 3), out)
        run_add(comp, torch.ones(2, 3), torch.ones(2, 3), ok := torch.empty(2, 3))  # still usable
    assert torch.equal(ok, torch.full((2, 3), 2.0))


def test_dynamic_output_shape() -> None:
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    with virtual_device():
        comp = compile_model(add_model(out_dims=(0, 3)))
        with pytest.raises(RuntimeError, match="error 8"):  # OUTPUT_INSUFFICIENT_SIZE
            run_add(comp, a, b, torch.empty(0))
        run_add(comp, a, b, out := torch.empty(100))
    assert out.shape == (2, 3) and torch.equal(out, a + b)  # torch resized it from our dims


def test_quantized_io_and_qparams_check() -> None:
    q = OperandDesc(C.TENSOR_QUANT8_ASYMM, (2, 3), 0.5, 10)
    ops = [
        OperationDesc(OpCode.DEQUANTIZE, (0,), (1,)),
        OperationDesc(OpCode.QUANTIZE, (1,), (2,)),
    ]
    model = FlatModel([q, OperandDesc(F32, (2, 3)), q], {}, ops, [0], [1, 2])
    qa = torch.quantize_per_tensor(torch.randn(2, 3), 0.5, 10, torch.quint8)
    f = torch.empty(2, 3)
    q2 = torch._empty_affine_quantized((2, 3), scale=0.5, zero_point=10, dtype=torch.quint8)
    with virtual_device():
        comp = compile_model(model)
        comp.run([qa], [f, q2])
        other = torch.quantize_per_tensor(torch.randn(2, 3), 0.5, 11, torch.quint8)
        with pytest.raises(RuntimeError, match="setInput"):
            comp.run([other], [f, q2])
    assert "does not match the model's" in last_error()
    assert torch.equal(f, qa.dequantize()) and torch.equal(q2.int_repr(), qa.int_repr())


def test_undefined_operand_fails_at_finish() -> None:
    model = add_model()
    model.inputs = [0]  # operand 1 has no value, is no model input and no op writes it
    with virtual_device(), pytest.raises(RuntimeError, match="Model_finish"):
        compile_model(model)
    assert "reads operand 1" in last_error()


def test_omitted_optional_operand() -> None:
    t_in, t_out = OperandDesc(F32, (2, 3)), OperandDesc(F32, (3, 2))
    model = add_model()
    model.operands = [t_in, OperandDesc(C.TENSOR_INT32, (2,)), t_out]
    model.values = {1: b""}  # TRANSPOSE perm omitted: reverse the dims
    model.operations = [OperationDesc(OpCode.TRANSPOSE, (0, 1), (2,))]
    model.inputs, model.outputs = [0], [2]
    x, out = torch.randn(2, 3), torch.empty(3, 2)
    with virtual_device() as dev:
        compile_model(model).run([x], [out])
    assert torch.equal(out, x.t()) and dev.finished_models[0].values == {1: b""}


def test_relax_flag_is_recorded() -> None:
    with virtual_device() as dev:
        compile_model(add_model(), relax=True)
    assert dev.finished_models[0].relaxed and dev.calls["Model_relaxComputationFloat32toFloat16"]


def test_interpreter_failures_are_op_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> list[torch.Tensor]:
        raise ValueError("kernel exploded")

    with virtual_device():
        comp = compile_model(add_model())
        monkeypatch.setattr(interpreter, "execute", broken)
        with pytest.raises(RuntimeError, match="error 5"):
            run_add(comp, torch.randn(2, 3), torch.randn(2, 3), torch.empty(2, 3))
        assert "kernel exploded" in last_error()
        monkeypatch.setattr(interpreter, "execute", lambda *a: [torch.zeros(2, 3, dtype=torch.int32)])
        with pytest.raises(RuntimeError, match="error 5"):
            run_add(comp, torch.randn(2, 3), torch.randn(2, 3), torch.empty(2, 3))
        assert "expected torch.float32" in last_error()


def test_handles_are_freed_and_many_models_work() -> None:
    gc.collect()
    before = live_handles()
    with virtual_device():
        for n in range(1, 25):
            a, b, out = torch.randn(n, 2), torch.randn(n, 2), torch.empty(n, 2)
            run_add(compile_model(add_model((n, 2))), a, b, out)
            assert torch.equal(out, a + b)
    gc.collect()
    assert live_handles() == before


def test_pytorch_converter_output_runs_on_the_device() -> None:
    from torch.backends._nnapi.prepare import convert_model_to_nnapi

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 5, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(5 * 4 * 6, 7),
    ).eval()
    x = torch.randn(1, 3, 4, 6)
    nchw = convert_model_to_nnapi(torch.jit.trace(net, x), x)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3), torch.nn.ReLU()).eval()
    xn = torch.randn(1, 3, 6, 7).contiguous(memory_format=torch.channels_last)
    xn.nnapi_nhwc = True
    nhwc = convert_model_to_nnapi(torch.jit.trace(conv, xn), xn)
    with virtual_device(feature_level=3), torch.no_grad():
        assert torch.allclose(nchw(x), net(x), atol=1e-5)
        y = nhwc(xn)
        want = conv(xn)
        assert torch.allclose(y if y.shape == want.shape else y.permute(0, 3, 1, 2), want, atol=1e-5)
