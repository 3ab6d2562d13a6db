"""The NNAPI objects the virtual driver hands out as integer handles, and the handle registry."""

from __future__ import annotations

import threading
from typing import TypeVar

import attrs

from ..ir.codes import PreferenceCode, ResultCode
from ..ir.flat import FlatModel, OperandDesc
from .driver_checks import fail

T = TypeVar("T")


@attrs.define(eq=False)
class ModelObject:
    """An ``ANeuralNetworksModel``: recorded into a FlatModel; one failed call poisons it."""

    model: FlatModel = attrs.field(factory=FlatModel)
    writers: dict[int, int] = attrs.field(factory=dict)  # operand -> operation that writes it
    finished: bool = False
    poisoned: str = ""


@attrs.define(eq=False)
class CompilationObject:
    model: FlatModel
    preference: int = PreferenceCode.PREFER_FAST_SINGLE_ANSWER
    finished: bool = False
    failed: bool = False


@attrs.define(eq=False)
class Binding:
    """One setInput/setOutput: the argument's resolved type and the caller's memory."""

    desc: OperandDesc
    address: int
    length: int


@attrs.define(eq=False)
class ExecutionObject:
    compilation: CompilationObject
    inputs: dict[int, Binding] = attrs.field(factory=dict)
    outputs: dict[int, Binding] = attrs.field(factory=dict)
    started: bool = False
    result: int | None = None
    output_shapes: list[tuple[int, ...]] | None = None


@attrs.define(eq=False)
class EventObject:
    result: int
    message: str = ""


class DeviceObject:
    """The one ``ANeuralNetworksDevice``; it stands for whichever virtual device is active."""


def _kind(cls: type) -> str:
    return cls.__name__.removesuffix("Object").lower()


@attrs.define(eq=False)
class Registry:
    """Handle -> object; handles are nonzero, never reused, and look nothing like small ints."""

    objects: dict[int, object] = attrs.field(factory=dict)
    next_handle: int = 0x10000
    lock: threading.RLock = attrs.field(factory=threading.RLock)

    def add(self, obj: object) -> int:
        with self.lock:
            handle = self.next_handle
            self.next_handle += 16
            self.objects[handle] = obj
            return handle

    def get(self, handle: int | None, kind: type[T]) -> T:
        if not handle:
            fail(ResultCode.UNEXPECTED_NULL, f"{_kind(kind)} handle is NULL")
        obj = self.objects.get(handle)
        if not isinstance(obj, kind):
            got = _kind(type(obj)) if obj is not None else "unknown or freed"
            fail(ResultCode.BAD_DATA, f"handle {handle:#x} is {got}, not a {_kind(kind)}")
        return obj

    def free(self, handle: int | None, kind: type) -> None:
        with self.lock:
            if handle and isinstance(self.objects.get(handle), kind):
                del self.objects[handle]

    def count(self, kind: type) -> int:
        with self.lock:
            return sum(isinstance(o, kind) for o in self.objects.values())
