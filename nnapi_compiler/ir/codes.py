"""NNAPI enums and per-op facts, generated at import from the spec tables in ``spec/``.

The TSV files are verbatim copies of ``shared/nnapi/*.tsv`` (``tools/sync_spec.py`` refreshes
them; a test checks they are current), so no code, type or level is typed twice by hand.
"""

from __future__ import annotations

import csv
import enum
from importlib import resources

import attrs

# Feature levels are small integers 1..8; ``FL3`` (Android 10) is the first the runtime can use.
MIN_RUNTIME_LEVEL = 3
MAX_LEVEL = 8


def _read_tsv(name: str) -> list[dict[str, str]]:
    text = resources.files(__package__).joinpath("spec", name).read_text()
    return list(csv.DictReader(text.splitlines(), delimiter="\t"))


_OPERAND_ROWS = _read_tsv("operands.tsv")
_OPERATION_ROWS = _read_tsv("operations.tsv")


def _enum(table: str) -> type[enum.IntEnum]:
    members = {r["name"]: int(r["value"]) for r in _OPERAND_ROWS if r["table"] == table}
    return enum.IntEnum(table, members)  # type: ignore[return-value]


OperandCode = _enum("OperandCode")
FuseCode = _enum("FuseCode")
PaddingCode = _enum("PaddingCode")
PreferenceCode = _enum("PreferenceCode")
ResultCode = _enum("ResultCode")
OpCode = enum.IntEnum("OpCode", {r["name"]: int(r["code"]) for r in _OPERATION_ROWS})  # type: ignore[misc]

#: First feature level that has each operand type.
OPERAND_MIN_LEVEL: dict[int, int] = {
    int(r["value"]): int(r["feature_level"]) for r in _OPERAND_ROWS if r["table"] == "OperandCode"
}
#: Bytes per element of each tensor operand type (and size of each scalar type).
ELEMENT_BYTES: dict[int, int] = {
    int(r["value"]): int(r["element_bytes"])
    for r in _OPERAND_ROWS
    if r["table"] == "OperandCode" and r["element_bytes"]
}

SCALAR_CODES = frozenset(
    OperandCode[n] for n in ("FLOAT32", "INT32", "UINT32", "BOOL", "FLOAT16")
)
QUANT_CODES = frozenset(
    OperandCode[n]
    for n in (
        "TENSOR_QUANT8_ASYMM",
        "TENSOR_QUANT8_ASYMM_SIGNED",
        "TENSOR_QUANT8_SYMM",
        "TENSOR_QUANT16_ASYMM",
        "TENSOR_QUANT16_SYMM",
    )
)
#: Integer range of each quantized type's stored values (also the legal zero-point range).
QUANT_RANGE: dict[int, tuple[int, int]] = {
    OperandCode.TENSOR_QUANT8_ASYMM: (0, 255),
    OperandCode.TENSOR_QUANT8_ASYMM_SIGNED: (-128, 127),
    OperandCode.TENSOR_QUANT8_SYMM: (-127, 127),
    OperandCode.TENSOR_QUANT16_ASYMM: (0, 65535),
    OperandCode.TENSOR_QUANT16_SYMM: (-32768, 32767),
}


def is_tensor_code(code: int) -> bool:
    """True for ``TENSOR_*`` operand types (scalars and MODEL are not tensors)."""
    return OperandCode(code).name.startswith("TENSOR_")


@attrs.frozen
class OpSpec:
    """What ``operations.tsv`` says about one operation."""

    name: str
    code: int
    min_level: int
    # level -> type entries first legal at that level, e.g. {1: ("FLOAT32", "QUANT8_ASYMM")}
    types_by_level: tuple[tuple[int, tuple[str, ...]], ...]

    def types_at(self, level: int) -> frozenset[str]:
        """Every type entry (``FLOAT32``, ``QUANT8_ASYMM@...``) legal at ``level``."""
        return frozenset(
            entry for lvl, entries in self.types_by_level if lvl <= level for entry in entries
        )

    def primary_types_at(self, level: int) -> frozenset[str]:
        """The op's main tensor types legal at ``level`` (``A@B`` and ``A>B`` reduced to ``A``)."""
        return frozenset(e.split("@")[0].split(">")[0] for e in self.types_at(level))


def _parse_types(field: str) -> tuple[tuple[int, tuple[str, ...]], ...]:
    out = []
    for part in field.split(";"):
        level, _, entries = part.partition(":")
        out.append((int(level), tuple(e for e in entries.split(",") if e)))
    return tuple(out)


OP_SPECS: dict[int, OpSpec] = {
    int(r["code"]): OpSpec(
        name=r["name"],
        code=int(r["code"]),
        min_level=int(r["feature_level_introduced"]),
        types_by_level=_parse_types(r["operand_types_by_level"]),
    )
    for r in _OPERATION_ROWS
}


def type_name(code: int) -> str:
    """Operand type name as the TSV's type column spells it (``TENSOR_`` dropped)."""
    return OperandCode(code).name.removeprefix("TENSOR_")


#: Android release -> feature level of the NNAPI runtime it ships. FL1..FL5 are the API levels
#: 27..31 (Android 8.1..12). From Android 11 the runtime is an updatable module whose level is
#: not tied to the Android version; FL6 and FL7 were module updates, and FL8 is the level the
#: Android 13 runtime reports (SEMANTICS.md, marked uncertain there). No level came after FL8
#: (NNAPI is deprecated from Android 15), so 14 and 15 also map to 8. See the user guide table.
ANDROID_LEVELS: dict[str, int] = {
    "android-8.1": 1,
    "android-9": 2,
    "android-10": 3,
    "android-11": 4,
    "android-12": 5,
    "android-13": 8,
    "android-14": 8,
    "android-15": 8,
}
#: Android releases whose entry in ANDROID_LEVELS is an inference rather than a documented fact.
UNCERTAIN_ANDROID = frozenset({"android-13", "android-14", "android-15"})


#: NDK feature-level codes (what ``ANeuralNetworksDevice_getFeatureLevel`` reports) -> level,
#: from operands.tsv's FeatureLevelCode rows (27..31, then 1000006..1000008).
FEATURE_LEVEL_CODES: dict[int, int] = {
    int(r["value"]): int(r["feature_level"])
    for r in _OPERAND_ROWS
    if r["table"] == "FeatureLevelCode" and r["feature_level"]
}


def feature_level_code(level: int) -> int:
    """The NDK's ``ANEURALNETWORKS_FEATURE_LEVEL_<level>`` value."""
    return {lv: code for code, lv in FEATURE_LEVEL_CODES.items()}[level]


def parse_target(target: str | int) -> int:
    """Turn ``"android-13"``, ``"fl3"``/``"FL3"``, ``3`` or an NDK code (``29``, ``1000007``)
    into a feature level 1..8."""
    if isinstance(target, int):
        level = FEATURE_LEVEL_CODES.get(target, target)
    else:
        t = target.strip().lower()
        if t in ANDROID_LEVELS:
            level = ANDROID_LEVELS[t]
        elif t.startswith("fl") and t[2:].isdigit():
            level = int(t[2:])
        else:
            raise ValueError(
                f"unknown target {target!r}: use one of {sorted(ANDROID_LEVELS)} or 'fl1'..'fl8'"
            )
    if not 1 <= level <= MAX_LEVEL:
        raise ValueError(
            f"feature level {level} is outside 1..{MAX_LEVEL} (ints may also be the NDK codes "
            f"{sorted(FEATURE_LEVEL_CODES)})"
        )
    return level
