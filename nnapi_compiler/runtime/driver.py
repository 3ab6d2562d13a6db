"""The virtual NNAPI driver: one method per C function, on NNAPI objects behind integer handles."""

from __future__ import annotations

import ctypes

import attrs

from ..ir.codes import PreferenceCode, ResultCode
from ..ir.flat import OperationDesc
from . import interpreter
from .device_state import DEVICE_NAME, CompilationRecord, VirtualDevice
from .driver_checks import (
    DriverError,
    check_device_can_run,
    check_graph,
    check_io_list,
    check_operand,
    check_operation,
    check_value_length,
    fail,
    level_problem,
    read_operand_type,
    read_ptr_array,
    read_u32_array,
    write_out,
)
from .driver_exec import ExecutionCalls
from .driver_limits import check_value_total, check_work
from .driver_objects import CompilationObject, DeviceObject, ModelObject, Registry

_NAME = ctypes.create_string_buffer(DEVICE_NAME.encode())
_VERSION = ctypes.create_string_buffer(b"1.0")


@attrs.define(eq=False)
class Driver(ExecutionCalls):
    """Implements the C API; every method takes the active device first and raises DriverError."""

    registry: Registry = attrs.field(factory=Registry)
    device_handle: int = 0

    def __attrs_post_init__(self) -> None:
        self.device_handle = self.registry.add(DeviceObject())

    # -- devices ---------------------------------------------------------------------------------
    def getDeviceCount(self, dev: VirtualDevice, out: int | None) -> None:
        write_out(ctypes.c_uint32, out, 1, "numDevices")

    def getDevice(self, dev: VirtualDevice, index: int, out: int | None) -> None:
        if index != 0:
            fail(ResultCode.BAD_DATA, f"getDevice: index {index}, but there is one device")
        write_out(ctypes.c_void_p, out, self.device_handle, "device")

    def Device_getName(self, dev: VirtualDevice, device: int | None, out: int | None) -> None:
        self.registry.get(device, DeviceObject)
        write_out(ctypes.c_void_p, out, ctypes.addressof(_NAME), "name")

    def Device_getVersion(self, dev: VirtualDevice, device: int | None, out: int | None) -> None:
        self.registry.get(device, DeviceObject)
        write_out(ctypes.c_void_p, out, ctypes.addressof(_VERSION), "version")

    def Device_getFeatureLevel(self, dev: VirtualDevice, device: int | None, out: int | None) -> None:
        self.registry.get(device, DeviceObject)
        write_out(ctypes.c_int64, out, dev.api_level, "featureLevel")

    def _check_devices(self, devices: int | None, count: int) -> None:
        for h in read_ptr_array(devices, count, "devices"):
            self.registry.get(h, DeviceObject)

    def Model_getSupportedOperationsForDevices(
        self,
        dev: VirtualDevice,
        model: int | None,
        devices: int | None,
        count: int,
        out: int | None,
    ) -> None:
        m = self.registry.get(model, ModelObject)
        if not m.finished:
            fail(ResultCode.BAD_STATE, "model is not finished")
        self._check_devices(devices, count)
        ops = m.model.operations
        if not out:
            fail(ResultCode.UNEXPECTED_NULL, "supportedOps is NULL")
        flags = (ctypes.c_bool * len(ops)).from_address(out)
        for j, op in enumerate(ops):
            flags[j] = op.code not in dev.refuse_ops and not level_problem(
                m.model, op.code, op.inputs, op.outputs, dev.feature_level)

    # -- models ------------------------------------------------------------------------------------
    def Model_create(self, dev: VirtualDevice, out: int | None) -> None:
        if not out:
            fail(ResultCode.UNEXPECTED_NULL, "model pointer is NULL")
        write_out(ctypes.c_void_p, out, self.registry.add(ModelObject()), "model")

    def Model_free(self, dev: VirtualDevice | None, model: int | None) -> None:
        self.registry.free(model, ModelObject)

    def _editable(self, handle: int | None) -> ModelObject:
        m = self.registry.get(handle, ModelObject)
        if m.finished:
            fail(ResultCode.BAD_STATE, "model is already finished")
        return m

    def _record(self, m: ModelObject, what: str, fn: object, *args: object) -> None:
        """Run one model-building step; a failure poisons the model as in the NDK runtime."""
        try:
            fn(m, *args)  # type: ignore[operator]
        except DriverError as e:
            m.poisoned = m.poisoned or f"{what}: {e}"
            raise

    def Model_addOperand(self, dev: VirtualDevice, model: int | None, type_ptr: int | None) -> None:
        m = self._editable(model)
        what = f"operand {len(m.model.operands)}"

        def add(m: ModelObject) -> None:
            desc = read_operand_type(type_ptr, what)
            check_operand(desc, dev.feature_level, what)
            m.model.operands.append(desc)

        self._record(m, what, add)

    def Model_setOperandValue(
        self, dev: VirtualDevice, model: int | None, index: int, buffer: int | None, length: int
    ) -> None:
        m = self._editable(model)
        what = f"value of operand {index}"

        def set_value(m: ModelObject) -> None:
            if not 0 <= index < len(m.model.operands):
                fail(ResultCode.BAD_DATA, f"{what}: the model has {len(m.model.operands)} operands")
            taken = (m.model.values, m.writers, m.model.inputs, m.model.outputs)
            if any(index in t for t in taken):
                fail(ResultCode.BAD_DATA, f"{what}: operand already has a value or a producer")
            if length == 0:  # omitted optional operand (torch's loader passes a non-NULL pointer)
                m.model.values[index] = b""
                return
            if not buffer:
                fail(ResultCode.UNEXPECTED_NULL, f"{what}: buffer is NULL, length {length}")
            check_value_length(m.model.operands[index], length, what)
            check_value_total(m.model, length)  # before the copy
            m.model.values[index] = ctypes.string_at(buffer, length)

        self._record(m, what, set_value)

    def Model_setOperandValueFromMemory(self, dev: VirtualDevice, model: int | None, *rest: object) -> None:
        m = self._editable(model)
        self._record(
            m,
            "Model_setOperandValueFromMemory",
            lambda m: fail(ResultCode.BAD_DATA, "memory objects are not supported by the virtual device"),
        )

    def Model_addOperation(
        self,
        dev: VirtualDevice,
        model: int | None,
        code: int,
        n_in: int,
        ins: int | None,
        n_out: int,
        outs: int | None,
    ) -> None:
        m = self._editable(model)
        what = f"operation {len(m.model.operations)}"

        def add(m: ModelObject) -> None:
            inputs = read_u32_array(ins, n_in, f"{what} inputs")
            outputs = read_u32_array(outs, n_out, f"{what} outputs")
            check_operation(m.model, code, inputs, outputs, dev.feature_level, m.writers)
            for o in outputs:
                m.writers[o] = len(m.model.operations)
            m.model.operations.append(OperationDesc(code=code, inputs=inputs, outputs=outputs))

        self._record(m, what, add)

    def Model_identifyInputsAndOutputs(
        self,
        dev: VirtualDevice,
        model: int | None,
        n_in: int,
        ins: int | None,
        n_out: int,
        outs: int | None,
    ) -> None:
        m = self._editable(model)

        def identify(m: ModelObject) -> None:
            inputs = read_u32_array(ins, n_in, "model inputs")
            outputs = read_u32_array(outs, n_out, "model outputs")
            check_io_list(m.model, inputs, "inputs")
            check_io_list(m.model, outputs, "outputs")
            m.model.inputs, m.model.outputs = list(inputs), list(outputs)

        self._record(m, "Model_identifyInputsAndOutputs", identify)

    def Model_relaxComputationFloat32toFloat16(
        self, dev: VirtualDevice, model: int | None, allow: bool
    ) -> None:
        m = self._editable(model)
        if dev.feature_level < 2:
            fail(ResultCode.BAD_DATA, "relaxComputationFloat32toFloat16 needs feature level 2")
        m.model.relaxed = bool(allow)

    def Model_finish(self, dev: VirtualDevice, model: int | None) -> None:
        m = self._editable(model)
        if m.poisoned:
            fail(ResultCode.BAD_DATA, f"an earlier call failed ({m.poisoned})")

        def finish(m: ModelObject) -> None:
            order = check_graph(m.model, dev.feature_level, m.writers)
            check_work(m.model)
            m.model.operations = order
            try:
                interpreter.validate_model(m.model, dev.feature_level)
            except interpreter.InterpreterError as e:
                fail(
                    getattr(e, "result_code", ResultCode.BAD_DATA),
                    f"interpreter rejects the model: {e}",
                )
            m.finished = True
            dev.finished_models.append(m.model)

        self._record(m, "Model_finish", finish)

    # -- compilations -----------------------------------------------------------------------------
    def _compile(self, model: int | None, out: int | None) -> None:
        m = self.registry.get(model, ModelObject)
        if not m.finished:
            fail(ResultCode.BAD_STATE, "model is not finished")
        if not out:
            fail(ResultCode.UNEXPECTED_NULL, "compilation pointer is NULL")
        write_out(ctypes.c_void_p, out, self.registry.add(CompilationObject(m.model)), "compilation")

    def Compilation_create(self, dev: VirtualDevice, model: int | None, out: int | None) -> None:
        self._compile(model, out)

    def Compilation_createForDevices(
        self,
        dev: VirtualDevice,
        model: int | None,
        devices: int | None,
        count: int,
        out: int | None,
    ) -> None:
        self._check_devices(devices, count)
        self._compile(model, out)

    def Compilation_free(self, dev: VirtualDevice | None, compilation: int | None) -> None:
        self.registry.free(compilation, CompilationObject)

    def Compilation_setPreference(self, dev: VirtualDevice, compilation: int | None, pref: int) -> None:
        c = self.registry.get(compilation, CompilationObject)
        if c.finished or c.failed:
            fail(ResultCode.BAD_STATE, "compilation already finished")
        if pref not in {int(p) for p in PreferenceCode}:
            fail(ResultCode.BAD_DATA, f"unknown preference {pref}")
        c.preference = pref

    def Compilation_finish(self, dev: VirtualDevice, compilation: int | None) -> None:
        c = self.registry.get(compilation, CompilationObject)
        if c.finished or c.failed:
            fail(ResultCode.BAD_STATE, "compilation already finished")
        c.failed = True
        check_device_can_run(c.model, dev.feature_level, dev.refuse_ops)
        c.failed, c.finished = False, True
        dev.compilations.append(CompilationRecord(c.preference, c.model.relaxed, c.model))
