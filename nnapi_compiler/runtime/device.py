"""The host virtual NNAPI device: ``virtual_device()`` routes torch's NNAPI calls to Python."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from ..errors import VirtualDeviceError
from ..ir.codes import MAX_LEVEL, OP_SPECS, ResultCode, parse_target
from . import shim
from .device_state import DEVICE_NAME, VirtualDevice
from .driver import Driver
from .driver_checks import DriverError
from .driver_objects import CompilationObject, EventObject, ExecutionObject, ModelObject

__all__ = [
    "DEVICE_NAME",
    "VirtualDevice",
    "current_device",
    "last_error",
    "live_handles",
    "virtual_device",
]

log = logging.getLogger(__name__)


_lock = threading.RLock()
_stack: list[VirtualDevice] = []
_driver = Driver()
_installed = False
_last_error = ""
#: Calls that arrived while no virtual_device() was active (they all failed, except frees).
detached_calls: Counter[str] = Counter()


def current_device() -> VirtualDevice | None:
    """The innermost active virtual device, or None outside every ``virtual_device()``."""
    with _lock:
        return _stack[-1] if _stack else None


def last_error() -> str:
    """Message of the most recent NNAPI call the virtual device rejected ("" if none)."""
    return _last_error


def live_handles() -> dict[str, int]:
    """How many models, compilations, executions and events are not yet freed."""
    reg = _driver.registry
    return {
        "model": reg.count(ModelObject),
        "compilation": reg.count(CompilationObject),
        "execution": reg.count(ExecutionObject),
        "event": reg.count(EventObject),
    }


def _reject(dev: VirtualDevice | None, name: str, message: str, code: int) -> int:
    global _last_error
    text = f"{name}: {message}"
    _last_error = text
    if dev is not None:
        dev.errors.append(text)
    log.info("virtual NNAPI rejected %s (result %d)", text, code)
    return code


def _entry(name: str, method: Callable[..., int | None], void: bool) -> Callable[..., int | None]:
    """One C entry point: count it, route it to the innermost device, turn errors into codes."""
    # A bug in the driver is reported as the failure class of the object being worked on.
    fallback = ResultCode.OP_FAILED if name.startswith(("Execution", "Event")) else ResultCode.BAD_DATA

    def call(*args: object) -> int | None:
        dev = current_device()
        (dev.calls if dev is not None else detached_calls)[name] += 1
        try:
            if void:  # frees always work: torch may destroy objects after the context closed
                method(dev, *args)
                return None
            if dev is None:
                raise DriverError(ResultCode.UNAVAILABLE_DEVICE, "no virtual_device() is active")
            if not dev.available:
                raise DriverError(ResultCode.UNAVAILABLE_DEVICE, "virtual_device(available=False)")
            method(dev, *args)
            return ResultCode.NO_ERROR
        except DriverError as e:
            return _reject(dev, name, str(e), e.result_code)
        except Exception as e:
            log.exception("virtual NNAPI device: %s failed", name)
            code = None if void else fallback
            _reject(dev, name, f"internal error: {type(e).__name__}: {e}", int(code or 0))
            return code

    return call


def _install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        impls = {name: _entry(name, getattr(_driver, name), ret is None) for name, ret, _ in shim.SIGNATURES}
        shim.install(impls)
        _installed = True


def _make_device(feature_level: int | str, refuse_ops: Iterable[int], available: bool) -> VirtualDevice:
    try:  # the same names compile(target=) takes: 1..8, "fl4", "android-11", NDK codes (30)
        if isinstance(feature_level, bool) or not isinstance(feature_level, int | str):
            raise ValueError(repr(feature_level))
        feature_level = parse_target(feature_level)
    except ValueError:
        raise VirtualDeviceError(
            f"feature_level must be a level 1..{MAX_LEVEL} or a target such as 'android-11', "
            f"got {feature_level!r}") from None
    refused = frozenset(int(op) for op in refuse_ops)
    unknown = sorted(refused - set(OP_SPECS))
    if unknown:
        raise VirtualDeviceError(f"refuse_ops names unknown NNAPI operation codes {unknown}")
    return VirtualDevice(feature_level=feature_level, refuse_ops=refused, available=bool(available))


@contextlib.contextmanager
def virtual_device(
    feature_level: int | str = 8, refuse_ops: Iterable[int] = (), available: bool = True
) -> Iterator[VirtualDevice]:
    """Make NNAPI work on this host for the duration of the ``with`` block.

    ``feature_level`` is the emulated NNAPI feature level: 1..8 or any ``target`` compile()
    takes ("android-11", "fl4", the NDK code 30); ``refuse_ops`` are operation
    codes this device will not compile; ``available=False`` emulates a phone without NNAPI (every
    call, starting with ``Model_create``, fails). Contexts nest; the innermost one answers.
    Outside every context NNAPI calls fail cleanly (torch raises RuntimeError).
    """
    dev = _make_device(feature_level, refuse_ops, available)
    _install()
    with _lock:
        _stack.append(dev)
    try:
        yield dev
    finally:
        with _lock:  # remove this device even if contexts were exited out of order
            for i in range(len(_stack) - 1, -1, -1):
                if _stack[i] is dev:
                    del _stack[i]
                    break
