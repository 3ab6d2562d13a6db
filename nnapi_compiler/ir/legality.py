"""Per-op legality facts parsed from ``operations.tsv``: operand ranks, optional-input and
optional-output levels.

The table states each op's rank rule in words (``rank<=4``, ``rank 4``, ``rank>=1``,
``rank 2..4``, ``rank up to 8``, ``before FL3 only rank 2 or 4``, ...) and marks trailing inputs
added by later levels as ``[10 nchw:BOOL FL3]``. This module turns both into data once, at
import, with a small parser that knows every wording the table uses and raises ``SpecError`` on
any other, so a new or changed row cannot be silently misread. Nothing here is typed by hand
except ``DRIVER_RANK_CAP`` (below).

The verifier (``ir/verifier.py``) and the virtual device (``runtime/driver_checks.py``) both ask
``rank_problem`` and ``inputs_level``, so the compiler and the emulated driver agree.
"""

from __future__ import annotations

import re

import attrs

from .codes import _OPERATION_ROWS, OpCode

#: Ops whose row says only "rank>=N" (no upper bound stated by the NDK header) are still held to
#: rank 4: SEMANTICS.md "Ranks" notes that real drivers cap them at 4, and the reference kernels
#: of the virtual device implement ranks up to 4. An explicit bound in the table (REVERSE: up to
#: 8) wins over this cap.
DRIVER_RANK_CAP = 4


class SpecError(ValueError):
    """A row of operations.tsv uses a wording this parser does not know."""


@attrs.frozen
class RankRule:
    """Ranks an op accepts: ``lo..hi`` for its primary operand at any level (``hi`` None when the
    table states no upper bound), narrowed to ``early`` ranks below feature level ``until``.

    ``which`` names the operand the lower bound / exact rank applies to: ``"input"`` (input 0,
    the default) or ``"output"`` (FILL). The upper bound applies to every tensor operand.
    """

    lo: int = 1
    hi: int | None = None
    stated: bool = True  # False: the row has no rank wording; bounds come from input 0's shape
    until: int = 0
    early: frozenset[int] = frozenset()
    which: str = "input"

    def max_rank(self, level: int) -> int:
        """Largest rank allowed at ``level`` (after the driver cap when the table has no bound)."""
        hi = self.hi if self.hi is not None else DRIVER_RANK_CAP
        if level < self.until and self.early:
            hi = min(hi, max(self.early))
        return hi

    def allows(self, rank: int, level: int) -> bool:
        """Whether the primary operand may have ``rank`` at ``level``."""
        if level < self.until and self.early:
            return rank in self.early
        return self.lo <= rank <= self.max_rank(level)

    def describe(self, level: int) -> str:
        if level < self.until and self.early:
            return "rank " + " or ".join(map(str, sorted(self.early)))
        lo, hi = self.lo, self.max_rank(level)
        return f"rank {lo}" if lo == hi else f"rank {lo}..{hi}"


# -- rank wording ------------------------------------------------------------------------------

_FL = r"fl(\d)"
# One rank clause (a ';'-separated piece of the notes), lower-cased; the groups feed _rule.
_CLAUSES: list[tuple[str, str]] = [
    (r"rank<=(\d)(?: \(rank<\1 since " + _FL + r"\))?", "le"),
    (r"rank (\d)", "eq"),
    (r"rank (\d)\.\.(\d)", "range"),
    (r"rank up to (\d)", "le"),
    (r"(input |output )?rank>=(\d)(?: \(no upper bound stated\))?", "ge"),
    (r"rank<(\d) only since " + _FL + r" \(fl1-2: rank \1, last axis\)", "below"),
    (r"before " + _FL + r" only rank (\d) or (\d) \(last axis\)", "before"),
]
# Clauses that mention "rank" but state no rank rule (axis ranges, shapes, model matching).
_PROSE = re.compile(r"\[0,rank\)|\*rank\]|rank/dims|num_units\*rank")


def _clause_rule(clause: str, rule: RankRule) -> RankRule:
    for pattern, kind in _CLAUSES:
        m = re.fullmatch(pattern, clause)
        if m is None:
            continue
        g = m.groups()
        if kind == "le":  # "rank<=4", "rank<=4 (rank<4 since FL3)", "rank up to 8"
            hi = int(g[0])
            if len(g) > 1 and g[1]:  # rank < hi only from that level: before it, exactly hi
                return attrs.evolve(rule, hi=hi, until=int(g[1]), early=frozenset({hi}))
            return attrs.evolve(rule, hi=hi)
        if kind == "eq":
            return attrs.evolve(rule, lo=int(g[0]), hi=int(g[0]))
        if kind == "range":
            return attrs.evolve(rule, lo=int(g[0]), hi=int(g[1]))
        if kind == "ge":
            which = (g[0] or "input ").strip()
            return attrs.evolve(rule, lo=int(g[1]), hi=None, which=which)
        if kind == "below":  # "rank<4 only since FL3 (FL1-2: rank 4, ...)"
            return attrs.evolve(rule, until=int(g[1]), early=frozenset({int(g[0])}))
        if kind == "before":  # "before FL3 only rank 2 or 4"
            return attrs.evolve(rule, until=int(g[0]), early=frozenset({int(g[1]), int(g[2])}))
    raise SpecError(f"unknown rank wording {clause!r}")


def _shape_rule(inputs: str) -> RankRule:
    """No rank words in the notes: the rank of input 0's shape in the inputs column, if given
    (``0 x[B,in]`` is rank 2; ``values[n,...]`` is rank >= 1 with the driver cap)."""
    m = re.match(r"0 \w+\[([^\]]*)\]", inputs)
    if m is None:
        return RankRule(stated=False)
    dims = [d.strip() for d in m.group(1).split(",")]
    if "..." in dims:
        return RankRule(lo=len(dims) - 1, hi=None, stated=False)
    return RankRule(lo=len(dims), hi=len(dims), stated=False)


def parse_rank_rule(notes: str, inputs: str) -> RankRule:
    """The rank rule of one row (notes first, else input 0's shape); SpecError on unknown words."""
    rule: RankRule | None = None
    for raw in notes.split(";"):
        clause = raw.strip().lower()
        if "rank" not in clause or _PROSE.search(clause):
            continue
        rule = _clause_rule(clause, rule or RankRule())
    return rule if rule is not None else _shape_rule(inputs)


# -- optional trailing inputs --------------------------------------------------------------------


@attrs.frozen
class Signature:
    """One input form of an op: ``base`` required inputs, then optional trailing groups, each
    ``(count, level)``; the form itself needs ``level`` (e.g. RESIZE by scale: FL3)."""

    label: str
    base: int
    level: int
    groups: tuple[tuple[int, int], ...]

    def level_for(self, n: int) -> int | None:
        """Level needed to pass ``n`` inputs in this form (None: not a count this form takes)."""
        count, level = self.base, self.level
        if n == count:
            return level
        for size, lvl in self.groups:
            count, level = count + size, max(level, lvl)
            if n == count:
                return level
        return None


def _split_items(alt: str) -> list[str]:
    """Split an inputs alternative on ';' outside brackets and parentheses."""
    items, depth, cur = [], 0, ""
    for ch in alt:
        depth += ch in "[("
        depth -= ch in "])"
        if ch == ";" and depth == 0:
            items.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        items.append(cur.strip())
    return items


def _parse_signature(alt: str, op_level: int) -> Signature:
    head = re.match(r"([a-z ]+?)\s*(\([^)]*\))?:\s", alt)
    label, level = "", op_level
    if head and not re.match(r"\d", alt):
        label = head.group(1)
        m = re.search(_FL, (head.group(2) or "").lower())
        level = max(op_level, int(m.group(1))) if m else op_level
        alt = alt[head.end():]
    base, groups = 0, []
    for item in _split_items(alt):
        if item.startswith("["):
            body = item.strip("[]")
            idx = [int(x) for x in re.findall(r"(?:^|; )(\d+) ", body)]
            if not idx:
                raise SpecError(f"optional group {item!r} names no input index")
            m = re.search(r"\bFL(\d)\b", body)
            groups.append((len(idx), int(m.group(1)) if m else level))
        else:
            m = re.match(r"(\d+)", item)
            if m is None:
                raise SpecError(f"input item {item!r} has no index")
            if groups:
                raise SpecError(f"required input {item!r} after an optional one")
            base = int(m.group(1)) + 1
    return Signature(label, base, level, tuple(groups))


def parse_signatures(inputs: str, op_level: int) -> tuple[Signature, ...]:
    """Input forms of a row whose inputs column has optional trailing inputs (``[i name ...]``);
    () for rows without (their input count is fixed or variadic, checked elsewhere)."""
    if not re.search(r"\[\d+ ", inputs):
        return ()
    return tuple(_parse_signature(alt.strip(), op_level) for alt in inputs.split(" | "))


# -- the generated tables ------------------------------------------------------------------------

RANK_RULES: dict[int, RankRule] = {
    int(r["code"]): parse_rank_rule(r["notes"], r["inputs"]) for r in _OPERATION_ROWS
}
SIGNATURES: dict[int, tuple[Signature, ...]] = {
    int(r["code"]): parse_signatures(r["inputs"], int(r["feature_level_introduced"]))
    for r in _OPERATION_ROWS
}


def inputs_level(code: int, n: int) -> int | None:
    """Lowest feature level at which ``code`` takes ``n`` inputs, per the table's optional
    inputs (None when the row lists no optional inputs). Where two forms share a count (CONV_2D
    explicit with 10 inputs vs implicit with layout and dilation), the lower level is returned:
    this is a lower bound, and the op's own ``required_level`` knows which form it uses.
    Raises ValueError when ``n`` is no count any form takes."""
    sigs = SIGNATURES.get(code, ())
    if not sigs:
        return None
    levels = [lv for s in sigs if (lv := s.level_for(n)) is not None]
    if not levels:
        counts = sorted({s.base + sum(g for g, _ in s.groups[:k])
                         for s in sigs for k in range(len(s.groups) + 1)})
        raise ValueError(f"{OpCode(code).name} takes {counts} inputs, not {n}")
    return min(levels)


#: Output forms of rows whose outputs column has optional trailing outputs added at a later level
#: (the sequence RNN / LSTM ops' final states, FL4), parsed like the inputs column.
OUTPUT_SIGNATURES: dict[int, tuple[Signature, ...]] = {
    int(r["code"]): parse_signatures(r["outputs"], int(r["feature_level_introduced"]))
    for r in _OPERATION_ROWS
}


def outputs_level(code: int, n: int) -> int | None:
    """Lowest feature level at which ``code`` has ``n`` outputs (None when the row lists no
    optional outputs). Raises ValueError when ``n`` is no count any form has."""
    sigs = OUTPUT_SIGNATURES.get(code, ())
    if not sigs:
        return None
    levels = [lv for s in sigs if (lv := s.level_for(n)) is not None]
    if not levels:
        raise ValueError(f"{OpCode(code).name} has no form with {n} outputs")
    return min(levels)


def rank_problem(code: int, level: int, primary: int | None, ranks: list[int]) -> str:
    """Why these operand ranks are illegal for ``code`` at ``level`` ("" if they are legal).

    ``primary`` is the rank of the operand the rule names (input 0, or output 0 for FILL; None
    if unknown); ``ranks`` are the ranks of every tensor operand (inputs and outputs).
    """
    rule = RANK_RULES[code]
    name = OpCode(code).name
    if primary is not None and not rule.allows(primary, level):
        return (f"{name} {rule.which} has rank {primary}; it takes {rule.describe(level)} "
                f"at feature level {level}")
    # A rank read off input 0's shape (no rank words in the row) says nothing of other operands.
    hi = rule.max_rank(level) if rule.stated else max(rule.max_rank(level), DRIVER_RANK_CAP)
    big = [r for r in ranks if r > hi]
    if big:
        return f"{name} operand has rank {max(big)} > {hi} (the most it takes at level {level})"
    return ""
