"""The virtual NNAPI device through its C entry points, called directly as a C program would."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from nnapi_compiler.errors import VirtualDeviceError
from nnapi_compiler.ir.codes import OpCode, OperandCode, ResultCode, is_tensor_code
from nnapi_compiler.ir.flat import OperandDesc, OperationDesc
from nnapi_compiler.runtime import device, driver_io, shim
from nnapi_compiler.runtime.device import last_error, virtual_device

from .conftest import F32, NO_ERROR, CApi, add_model, f32_bytes

C = OperandCode
R = ResultCode


@pytest.mark.parametrize("code", sorted(driver_io.STORAGE))
def test_argument_bytes_round_trip(code: int) -> None:
    desc = OperandDesc(code, (3,) if is_tensor_code(code) else ())
    scalar = not desc.dims
    raw = bytes(range(1, 1 + (desc.byte_size() or 0)))
    if code in (C.BOOL, C.TENSOR_BOOL8):
        raw = bytes([0, 1, 1][: len(raw)])
    buf = ctypes.create_string_buffer(raw, len(raw))
    t = driver_io.read_tensor(desc, ctypes.addressof(buf), len(raw), "input")
    assert t.dtype == driver_io.STORAGE[code][1] and t.shape == (() if scalar else (3,))
    back = driver_io.to_storage(t, desc, "output")
    assert ctypes.string_at(back.data_ptr(), back.nbytes) == raw


# -- direct C calls ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "dims", "scale", "zp", "level", "want"),
    [
        (F32, (2, 3), 0.0, 0, 8, R.NO_ERROR),
        (77, (2,), 0.0, 0, 8, R.BAD_DATA),  # unknown type
        (C.TENSOR_QUANT8_ASYMM_SIGNED, (2,), 0.1, 0, 3, R.BAD_DATA),  # FL4 type at FL3
        (C.TENSOR_QUANT8_ASYMM, (2,), 0.0, 0, 8, R.BAD_DATA),  # scale must be > 0
        (C.TENSOR_QUANT8_ASYMM, (2,), 0.1, 256, 8, R.BAD_DATA),  # zp outside [0, 255]
        (C.TENSOR_QUANT8_SYMM, (2,), 0.1, 1, 8, R.BAD_DATA),  # symmetric: zp 0
        (F32, (2,), 0.5, 0, 8, R.BAD_DATA),  # float with a scale
        (C.TENSOR_INT32, (2,), 0.5, 1, 8, R.BAD_DATA),  # int32 zp must be 0
        (C.INT32, (1,), 0.0, 0, 8, R.BAD_DATA),  # scalars have no dims
        (F32, (65536, 65536, 2), 0.0, 0, 8, R.BAD_DATA),  # > 2**31 bytes
        (F32, (1,) * 9, 0.0, 0, 8, R.BAD_DATA),  # rank 9
        (F32, (), 0.0, 0, 2, R.BAD_DATA),  # unknown rank before FL3
    ],
)
def test_c_operand_checks(
    capi: CApi, code: int, dims: tuple[int, ...], scale: float, zp: int, level: int, want: int
) -> None:
    with virtual_device(feature_level=level):
        assert capi.add_operand(capi.model(), code, dims, scale, zp) == want


def test_c_null_pointers_and_state(capi: CApi) -> None:
    with virtual_device():
        assert capi.Model_create(None) == R.UNEXPECTED_NULL
        m = capi.model()
        assert capi.Model_addOperand(m, None) == R.UNEXPECTED_NULL
        assert capi.add_operand(m, F32, (2,), count=2) == NO_ERROR
        assert capi.Model_addOperation(m, OpCode.ADD, 2, None, 1, None) == R.UNEXPECTED_NULL
        assert capi.Model_finish(None) == R.UNEXPECTED_NULL
        m = capi.build(add_model(), finish=False)
        assert capi.create("Compilation_create", m)[0] == R.BAD_STATE  # model not finished
        assert capi.Model_finish(m) == NO_ERROR
        assert capi.Model_finish(m) == R.BAD_STATE
        assert capi.add_operand(m, F32, (2,)) == R.BAD_STATE
        rc, comp = capi.create("Compilation_create", m)
        assert rc == NO_ERROR
        assert capi.create("Execution_create", comp)[0] == R.BAD_STATE  # compilation not finished
        ex = capi.execution(m)
        x = torch.ones(2, 3)
        assert capi.bind(ex, 2, x) == R.BAD_DATA  # input index out of range
        assert capi.Execution_getOutputOperandRank(ex, 0, ctypes.byref(ctypes.c_uint32())) == 6
        assert capi.Execution_compute(ex) == R.BAD_DATA  # inputs never set
        assert capi.Execution_compute(0x12345) in (R.BAD_DATA, R.UNEXPECTED_NULL)


def test_c_values_and_operations(capi: CApi) -> None:
    with virtual_device():
        m = capi.model()
        for dims in [(2,), (2,), (0,), (2,)]:
            assert capi.add_operand(m, F32, dims) == NO_ERROR
        assert capi.add_operand(m, C.INT32) == NO_ERROR
        assert capi.set_value(m, 0, f32_bytes([1.0])) == R.BAD_DATA  # 4 bytes for 8
        assert capi.set_value(m, 9, f32_bytes([1.0, 2.0])) == R.BAD_DATA  # no operand 9
        assert capi.set_value(m, 2, f32_bytes([1.0])) == R.BAD_DATA  # unknown dims
        assert capi.Model_setOperandValue(m, 1, None, 8) == R.UNEXPECTED_NULL
        assert capi.set_value(m, 4, None) == NO_ERROR  # omitted
        assert capi.set_value(m, 4, b"\0" * 4) == R.BAD_DATA  # set twice
        assert capi.add_operation(m, 4242, [0], [3]) == R.BAD_DATA  # unknown op
        assert capi.add_operation(m, OpCode.ADD, [0, 1, 7], [3]) == R.BAD_DATA  # no operand 7
        assert capi.add_operation(m, OpCode.ADD, [0, 1, 4], [3]) == NO_ERROR
        assert capi.add_operation(m, OpCode.ADD, [0, 1, 4], [3]) == R.BAD_DATA  # 2nd writer
        assert capi.Model_finish(m) == R.BAD_DATA  # poisoned by the failures above
        # operations added out of order are put in run order at finish
        flat = add_model()
        flat.operands.append(flat.operands[3])
        flat.operations = [OperationDesc(OpCode.ADD, (3, 3, 2), (4,)), *flat.operations]
        flat.outputs = [4]
        with virtual_device() as dev:
            capi.build(flat)
        assert [op.outputs for op in dev.finished_models[0].operations] == [(3,), (4,)]
        flat.operations[1] = OperationDesc(OpCode.ADD, (4, 1, 2), (3,))  # a cycle
        m = capi.build(flat, finish=False)
        assert capi.Model_finish(m) == R.BAD_DATA and "cycle" in last_error()


def test_c_devices_events_memory(capi: CApi) -> None:
    with virtual_device(feature_level=3, refuse_ops=[OpCode.ADD]):
        n = ctypes.c_uint32()
        assert capi.getDeviceCount(ctypes.byref(n)) == NO_ERROR and n.value == 1
        rc, dev_h = capi.create("getDevice", 0)
        name, level = ctypes.c_char_p(), ctypes.c_int64()
        assert capi.Device_getName(dev_h, ctypes.byref(name)) == NO_ERROR
        assert name.value == b"nnapi-compiler-virtual"
        assert capi.Device_getFeatureLevel(dev_h, ctypes.byref(level)) == NO_ERROR
        assert level.value == 29
        assert capi.create("getDevice", 1)[0] == R.BAD_DATA
        m = capi.build(add_model())
        flags, devs = (ctypes.c_bool * 1)(True), (ctypes.c_void_p * 1)(dev_h)
        assert capi.Model_getSupportedOperationsForDevices(m, devs, 1, flags) == NO_ERROR
        assert list(flags) == [False]
        assert capi.create("Memory_createFromFd", 16, 3, 0, 0)[0] == R.BAD_DATA
        capi.Memory_free(None)
    with virtual_device(feature_level=8) as dev:
        level = ctypes.c_int64()
        assert capi.Device_getFeatureLevel(dev_h, ctypes.byref(level)) == NO_ERROR
        assert level.value == 1000008 == dev.api_level
        ex = capi.execution(m)
        a, b, out = torch.randn(2, 3), torch.randn(2, 3), torch.empty(2, 3)
        for i, t in enumerate([a, b]):
            assert capi.bind(ex, i, t) == NO_ERROR
        assert capi.bind(ex, 0, out, output=True) == NO_ERROR
        rc, event = capi.create("Execution_startCompute", ex)
        assert rc == NO_ERROR and capi.Event_wait(event) == NO_ERROR
        assert torch.equal(out, a + b)
        capi.Event_free(event)
        capi.Event_free(event)  # double free and frees of unknown handles are no-ops
        capi.Model_free(0xDEAD0)
        capi.Compilation_free(m)  # wrong kind: ignored, the model survives
        assert capi.create("Compilation_create", m)[0] == NO_ERROR


def test_c_calls_with_no_device_or_no_table(capi: CApi, tmp_path: Path) -> None:
    with virtual_device():  # installs the callbacks, which stay installed
        pass
    before = device.detached_calls["Model_create"]
    assert capi.create("Model_create")[0] == R.UNAVAILABLE_DEVICE
    assert device.detached_calls["Model_create"] == before + 1
    # A fresh copy of the library has no table installed: ints fail with 9, frees do nothing.
    # It runs in a child, which also checks that interpreter exit with live NNAPI objects is clean.
    script = textwrap.dedent(f"""
        import collections, ctypes, torch
        from nnapi_compiler.runtime import device, shim
        from nnapi_compiler.runtime.device import virtual_device
        import tests.runtime.conftest as h
        try:  # torch's dlopen fails before the shim is loaded, and is retried later
            h.compile_model(h.add_model())
            raise SystemExit("init2 worked without the shim")
        except RuntimeError as e:
            assert "Failed to load libneuralnetworks.so" in str(e), e
        shim.load()  # before the copy, so that the name resolves to the real one
        copy = ctypes.CDLL(str(shim.build({str(tmp_path)!r})), mode=os.RTLD_LOCAL)
        assert copy.ANeuralNetworksModel_create(None) == 9
        copy.ANeuralNetworksModel_free(None)
        with virtual_device():
            comp = h.compile_model(h.add_model())  # freed only at interpreter exit
        class Loud(collections.Counter):  # reports any callback made after this point
            def __setitem__(self, key, value, _write=os.write):
                _write(2, f"late callback {{key}}\\n".encode())
                super().__setitem__(key, value)
        device.detached_calls = Loud()
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.run(
        [sys.executable, "-c", "import os\n" + script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
    assert "late callback" not in proc.stderr and "Traceback" not in proc.stderr


def test_build_is_cached_by_source_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = shim.build(tmp_path)
    assert shim.build(tmp_path) == first and first.name.startswith("libneuralnetworks-")
    monkeypatch.setattr(shim, "source_bytes", lambda: b"int nnc_other(void) { return 1; }\n")
    assert shim.build(tmp_path) != first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".build-")]


def test_build_errors_are_virtual_device_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shim, "source_bytes", lambda: b"this is not C\n")
    with pytest.raises(VirtualDeviceError, match="error"):
        shim.build(tmp_path)
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(VirtualDeviceError, match="no C compiler"):
        shim.build(tmp_path)
