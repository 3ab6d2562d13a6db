"""Builds, loads and feeds ``shim.c``, the host ``libneuralnetworks.so`` that torch dlopens."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import logging
import os
import platform
import shlex
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path

from ..errors import VirtualDeviceError

log = logging.getLogger(__name__)

SONAME = "libneuralnetworks.so"
_OP_FAILED = 5  # returned by a callback whose Python body escaped every other handler

_P = ctypes.c_void_p
_I = ctypes.c_int
_I32 = ctypes.c_int32
_U32 = ctypes.c_uint32
_SZ = ctypes.c_size_t

#: Callback table layout: (field, return type or None for void, argument types), in the order of
#: ``NNC_FUNCTIONS`` in shim.c. Pointers travel as ``void*`` (Python int or None).
SIGNATURES: tuple[tuple[str, type | None, tuple[type, ...]], ...] = (
    ("getDeviceCount", _I, (_P,)),
    ("getDevice", _I, (_U32, _P)),
    ("Device_getName", _I, (_P, _P)),
    ("Device_getVersion", _I, (_P, _P)),
    ("Device_getFeatureLevel", _I, (_P, _P)),
    ("Model_getSupportedOperationsForDevices", _I, (_P, _P, _U32, _P)),
    ("Compilation_createForDevices", _I, (_P, _P, _U32, _P)),
    ("Execution_compute", _I, (_P,)),
    ("Memory_createFromFd", _I, (_SZ, _I, _I, _SZ, _P)),
    ("Memory_free", None, (_P,)),
    ("Model_create", _I, (_P,)),
    ("Model_free", None, (_P,)),
    ("Model_finish", _I, (_P,)),
    ("Model_addOperand", _I, (_P, _P)),
    ("Model_setOperandValue", _I, (_P, _I32, _P, _SZ)),
    ("Model_setOperandValueFromMemory", _I, (_P, _I32, _P, _SZ, _SZ)),
    ("Model_addOperation", _I, (_P, _I32, _U32, _P, _U32, _P)),
    ("Model_identifyInputsAndOutputs", _I, (_P, _U32, _P, _U32, _P)),
    ("Model_relaxComputationFloat32toFloat16", _I, (_P, ctypes.c_bool)),
    ("Compilation_create", _I, (_P, _P)),
    ("Compilation_free", None, (_P,)),
    ("Compilation_setPreference", _I, (_P, _I32)),
    ("Compilation_finish", _I, (_P,)),
    ("Execution_create", _I, (_P, _P)),
    ("Execution_free", None, (_P,)),
    ("Execution_setInput", _I, (_P, _I32, _P, _P, _SZ)),
    ("Execution_setInputFromMemory", _I, (_P, _I32, _P, _P, _SZ, _SZ)),
    ("Execution_setOutput", _I, (_P, _I32, _P, _P, _SZ)),
    ("Execution_setOutputFromMemory", _I, (_P, _I32, _P, _P, _SZ, _SZ)),
    ("Execution_startCompute", _I, (_P, _P)),
    ("Event_wait", _I, (_P,)),
    ("Event_free", None, (_P,)),
    ("Execution_getOutputOperandRank", _I, (_P, _I32, _P)),
    ("Execution_getOutputOperandDimensions", _I, (_P, _I32, _P)),
)
_PROTOTYPES = {name: ctypes.CFUNCTYPE(ret, *args) for name, ret, args in SIGNATURES}


class _CallbackTable(ctypes.Structure):
    _fields_ = [(name, _PROTOTYPES[name]) for name, _, _ in SIGNATURES]


class OperandType(ctypes.Structure):
    """``ANeuralNetworksOperandType`` as the runtime passes it."""

    _fields_ = [
        ("type", ctypes.c_int32),
        ("dimensionCount", ctypes.c_uint32),
        ("dimensions", ctypes.c_void_p),
        ("scale", ctypes.c_float),
        ("zeroPoint", ctypes.c_int32),
    ]


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
# Every table ever installed stays referenced for the life of the process: a thread may still be
# inside one of its callbacks after it is replaced, and ctypes frees a callback with its object.
_keepalive: list[object] = []
_atexit_registered = False


def source_bytes() -> bytes:
    """The C source of the shim, as shipped in the package."""
    return resources.files(__package__).joinpath("shim.c").read_bytes()


def cache_dir() -> Path:
    """Per-user directory holding built shims (``$XDG_CACHE_HOME/nnapi_compiler``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nnapi_compiler"


def _compiler() -> list[str]:
    return shlex.split(os.environ.get("CC") or "cc")


def build(directory: Path | str | None = None) -> Path:
    """Compile ``shim.c`` into ``directory`` (default :func:`cache_dir`) unless already built.

    The file name carries a hash of the source, the compiler and the machine, so an edited source
    rebuilds; the library is written under a temporary name and renamed into place, so concurrent
    builders never see a half-written file.
    """
    src = source_bytes()
    cc = _compiler()
    if not cc:
        raise VirtualDeviceError("CC is set but empty: no C compiler to build the virtual NNAPI device")
    key = hashlib.sha256(src + "\0".join(cc).encode() + platform.machine().encode()).hexdigest()
    directory = Path(directory) if directory else cache_dir()
    target = directory / f"libneuralnetworks-{key[:16]}.so"
    if target.is_file():
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=directory)
        os.close(fd)
    except OSError as e:
        raise VirtualDeviceError(f"cannot write the virtual NNAPI device to {directory}: {e}") from e
    cmd = [
        *cc,
        "-shared",
        "-fPIC",
        "-O2",
        "-fvisibility=hidden",
        f"-Wl,-soname,{SONAME}",
        "-o",
        tmp,
        "-x",
        "c",
        "-",
    ]
    try:
        proc = subprocess.run(cmd, input=src, capture_output=True, check=False)
        if proc.returncode != 0:
            raise VirtualDeviceError(
                f"building the virtual NNAPI device failed ({shlex.join(cmd)}, exit "
                f"{proc.returncode}):\n{proc.stderr.decode(errors='replace')}"
            )
        os.replace(tmp, target)
    except FileNotFoundError as e:
        raise VirtualDeviceError(
            f"no C compiler found to build the virtual NNAPI device (tried {cc[0]!r}; set CC): {e}"
        ) from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _check_abi(lib: ctypes.CDLL, path: Path) -> None:
    lib.nnc_callback_names.restype = ctypes.c_char_p
    lib.nnc_callback_names.argtypes = []
    names = lib.nnc_callback_names().decode().rstrip(",").split(",")
    expected = [name for name, _, _ in SIGNATURES]
    if names != expected:
        raise VirtualDeviceError(f"{path}: callback table {names} does not match shim.py {expected}")
    # torch dlopens by name; the already-loaded object must be what that name resolves to.
    try:
        same = ctypes.CDLL(SONAME, mode=os.RTLD_NOLOAD | os.RTLD_GLOBAL)
    except OSError as e:
        raise VirtualDeviceError(f"{path} is loaded but {SONAME!r} does not resolve to it: {e}") from e
    addr = ctypes.cast(lib.nnc_install, ctypes.c_void_p).value
    other = getattr(same, "nnc_install", None)
    if other is None or ctypes.cast(other, ctypes.c_void_p).value != addr:
        raise VirtualDeviceError(f"another {SONAME} is already loaded in this process")


def load() -> ctypes.CDLL:
    """Build (if needed) and load the shim, once per process; returns the loaded library."""
    global _lib
    with _lock:
        if _lib is not None:
            return _lib
        path = build()
        try:
            lib = ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
        except OSError as e:
            raise VirtualDeviceError(f"cannot load the virtual NNAPI device {path}: {e}") from e
        _check_abi(lib, path)
        lib.nnc_install.restype = None
        lib.nnc_install.argtypes = [ctypes.c_void_p]
        _lib = lib
        return lib


def _guard(name: str, fn: Callable[..., int | None], void: bool) -> Callable[..., int | None]:
    """Last line of defence: an exception must never unwind into C (ctypes would return 0)."""

    def call(*args: object) -> int | None:
        try:
            result = fn(*args)
        except BaseException:  # nothing may escape into the runtime
            with contextlib.suppress(BaseException):  # logging itself may fail at shutdown
                log.exception("virtual NNAPI callback %s raised", name)
            return None if void else _OP_FAILED
        if void:
            return None
        return result if isinstance(result, int) else _OP_FAILED

    return call


def install(impls: Mapping[str, Callable[..., int | None]]) -> None:
    """Route every NNAPI function to ``impls[field]`` (fields as in :data:`SIGNATURES`)."""
    global _atexit_registered
    missing = [name for name, _, _ in SIGNATURES if name not in impls]
    if missing:
        raise VirtualDeviceError(f"virtual NNAPI device callbacks missing: {missing}")
    lib = load()
    funcs = {name: _PROTOTYPES[name](_guard(name, impls[name], ret is None)) for name, ret, _ in SIGNATURES}
    table = _CallbackTable(**funcs)
    with _lock:
        _keepalive.append((table, funcs))
        lib.nnc_install(ctypes.addressof(table))
        if not _atexit_registered:
            atexit.register(uninstall)
            _atexit_registered = True


def uninstall() -> None:
    """Detach Python: from now on every NNAPI call fails with UNAVAILABLE_DEVICE."""
    if _lib is not None:
        _lib.nnc_install(None)
