"""Executions and events of the virtual NNAPI driver: argument binding, compute, output shapes."""

from __future__ import annotations

import ctypes

from ..ir.codes import ResultCode
from . import driver_io, interpreter
from .device_state import VirtualDevice
from .driver_checks import (
    DriverError,
    fail,
    known_size,
    read_operand_type,
    resolve_io_type,
    write_out,
)
from .driver_objects import Binding, CompilationObject, EventObject, ExecutionObject, Registry


def _check_ready(ex: ExecutionObject) -> None:
    """The checks an NDK runtime makes before launching an execution."""
    if ex.started:
        fail(ResultCode.BAD_STATE, "execution was already started")
    model = ex.compilation.model
    for kind, bound, count in (
        ("input", ex.inputs, len(model.inputs)),
        ("output", ex.outputs, len(model.outputs)),
    ):
        missing = [i for i in range(count) if i not in bound]
        if missing:
            fail(ResultCode.BAD_DATA, f"{kind}s {missing} were never set")


def _compute(ex: ExecutionObject, level: int) -> None:
    """Run a ready execution synchronously; outputs are written only if all of them fit."""
    model = ex.compilation.model
    ex.started = True
    ex.result = ResultCode.OP_FAILED
    args = [
        driver_io.read_tensor(b.desc, b.address, b.length, f"input {i}") for i, b in sorted(ex.inputs.items())
    ]
    try:
        outs = interpreter.execute(model, args, level)
    except interpreter.InterpreterError as e:
        fail(getattr(e, "result_code", ResultCode.OP_FAILED), f"interpreter: {e}")
    except Exception as e:  # a kernel bug must surface as OP_FAILED, not escape into C
        fail(ResultCode.OP_FAILED, f"interpreter crashed: {type(e).__name__}: {e}")
    if len(outs) != len(model.outputs):
        fail(
            ResultCode.OP_FAILED,
            f"interpreter returned {len(outs)} outputs, the model has {len(model.outputs)}",
        )
    data = []
    for i, t in enumerate(outs):
        b = ex.outputs[i]
        driver_io.check_shape(tuple(t.shape), b.desc, f"output {i}")
        data.append(driver_io.to_storage(t, b.desc, f"output {i}"))
    ex.output_shapes = [tuple(t.shape) for t in data]
    short = [i for i, t in enumerate(data) if t.nbytes > ex.outputs[i].length]
    if short:
        ex.result = ResultCode.OUTPUT_INSUFFICIENT_SIZE
        fail(ex.result, f"output buffers {short} are too small for shapes {ex.output_shapes}")
    for i, t in enumerate(data):
        if t.nbytes:
            ctypes.memmove(ex.outputs[i].address, t.data_ptr(), t.nbytes)
    ex.result = ResultCode.NO_ERROR


class ExecutionCalls:
    """The ``ANeuralNetworksExecution``/``Event``/``Memory`` half of the C API."""

    registry: Registry

    # -- executions -------------------------------------------------------------------------------
    def Execution_create(self, dev: VirtualDevice, compilation: int | None, out: int | None) -> None:
        c = self.registry.get(compilation, CompilationObject)
        if not c.finished:
            fail(ResultCode.BAD_STATE, "compilation is not finished")
        if not out:
            fail(ResultCode.UNEXPECTED_NULL, "execution pointer is NULL")
        write_out(ctypes.c_void_p, out, self.registry.add(ExecutionObject(c)), "execution")

    def Execution_free(self, dev: VirtualDevice | None, execution: int | None) -> None:
        self.registry.free(execution, ExecutionObject)

    def _bind(
        self,
        dev: VirtualDevice,
        execution: int | None,
        index: int,
        type_ptr: int | None,
        buffer: int | None,
        length: int,
        is_input: bool,
    ) -> None:
        kind = "input" if is_input else "output"
        what = f"{kind} {index}"
        ex = self.registry.get(execution, ExecutionObject)
        if ex.started:
            fail(ResultCode.BAD_STATE, f"{what}: execution already started")
        model = ex.compilation.model
        indices = model.inputs if is_input else model.outputs
        if not 0 <= index < len(indices):
            fail(ResultCode.BAD_DATA, f"{what}: the model has {len(indices)} {kind}s")
        given = read_operand_type(type_ptr, what) if type_ptr else None
        desc = resolve_io_type(model.operands[indices[index]], given, what)
        size = known_size(desc)
        if length and not buffer:
            fail(ResultCode.UNEXPECTED_NULL, f"{what}: buffer is NULL, length {length}")
        if is_input:
            if size is None:
                fail(ResultCode.BAD_DATA, f"{what}: {desc.describe()} is not fully specified")
            if length != size:
                extra = " (omitted inputs are not supported)" if not buffer else ""
                fail(
                    ResultCode.BAD_DATA,
                    f"{what}: buffer has {length} bytes, {desc.describe()} needs {size}{extra}",
                )
        elif size is not None and length < size:
            fail(
                ResultCode.BAD_DATA,
                f"{what}: buffer has {length} bytes, {desc.describe()} needs {size}",
            )
        (ex.inputs if is_input else ex.outputs)[index] = Binding(desc, buffer or 0, length)

    def Execution_setInput(
        self, dev: VirtualDevice, e: int | None, i: int, t: int | None, buf: int | None, n: int
    ) -> None:
        self._bind(dev, e, i, t, buf, n, is_input=True)

    def Execution_setOutput(
        self, dev: VirtualDevice, e: int | None, i: int, t: int | None, buf: int | None, n: int
    ) -> None:
        self._bind(dev, e, i, t, buf, n, is_input=False)

    def Execution_setInputFromMemory(self, dev: VirtualDevice, *args: object) -> None:
        fail(ResultCode.BAD_DATA, "memory objects are not supported by the virtual device")

    Execution_setOutputFromMemory = Execution_setInputFromMemory

    def Execution_compute(self, dev: VirtualDevice, execution: int | None) -> None:
        ex = self.registry.get(execution, ExecutionObject)
        _check_ready(ex)
        _compute(ex, dev.feature_level)

    def Execution_startCompute(self, dev: VirtualDevice, execution: int | None, out: int | None) -> None:
        ex = self.registry.get(execution, ExecutionObject)
        if not out:
            fail(ResultCode.UNEXPECTED_NULL, "event pointer is NULL")
        _check_ready(ex)
        event = EventObject(ResultCode.NO_ERROR)
        try:
            _compute(ex, dev.feature_level)
        except DriverError as e:  # launched: the failure is reported by Event_wait
            event = EventObject(e.result_code, str(e))
        write_out(ctypes.c_void_p, out, self.registry.add(event), "event")

    def Event_wait(self, dev: VirtualDevice, event: int | None) -> None:
        ev = self.registry.get(event, EventObject)
        if ev.result != ResultCode.NO_ERROR:
            fail(ev.result, ev.message)

    def Event_free(self, dev: VirtualDevice | None, event: int | None) -> None:
        self.registry.free(event, EventObject)

    def _computed(self, execution: int | None, index: int) -> tuple[int, ...]:
        ex = self.registry.get(execution, ExecutionObject)
        ok = (ResultCode.NO_ERROR, ResultCode.OUTPUT_INSUFFICIENT_SIZE)
        if ex.output_shapes is None or ex.result not in ok:
            fail(ResultCode.BAD_STATE, "execution has not computed successfully")
        if not 0 <= index < len(ex.output_shapes):
            fail(
                ResultCode.BAD_DATA,
                f"output {index}: the model has {len(ex.output_shapes)} outputs",
            )
        return ex.output_shapes[index]

    def Execution_getOutputOperandRank(
        self, dev: VirtualDevice, e: int | None, i: int, out: int | None
    ) -> None:
        shape = self._computed(e, i)
        write_out(ctypes.c_uint32, out, len(shape), "rank")

    def Execution_getOutputOperandDimensions(
        self, dev: VirtualDevice, e: int | None, i: int, out: int | None
    ) -> None:
        shape = self._computed(e, i)
        if not shape:
            return  # rank 0: nothing to write, and torch passes an empty vector's data()
        if not out:
            fail(ResultCode.UNEXPECTED_NULL, "dimensions pointer is NULL")
        (ctypes.c_uint32 * len(shape)).from_address(out)[:] = list(shape)

    # -- memory (not supported: the runtime never uses it) ---------------------------------------
    def Memory_createFromFd(self, dev: VirtualDevice, *args: object) -> None:
        fail(ResultCode.BAD_DATA, "memory objects are not supported by the virtual device")

    def Memory_free(self, dev: VirtualDevice | None, memory: int | None) -> None:
        return None
