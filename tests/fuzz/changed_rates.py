"""How often each pass changes the programs the IR fuzz draws: a pass that never fires is tested
vacuously. ``python -m tests.fuzz.changed_rates [n]`` prints the table docs/fuzzing.md quotes."""

from __future__ import annotations

import sys
from collections import Counter

from hypothesis import HealthCheck, given, settings

from nnapi_compiler.passes.base import PASSES

from .ir_recipes import Recipe
from .ir_strategies import recipes
from .test_pass_properties import PASS_NAMES, prepared


def measure(n: int) -> dict[str, tuple[int, int]]:
    """{pass: (changed, calls)} over ``n`` derandomized recipes (each pass sees every recipe)."""
    calls: Counter[str] = Counter()
    changed: Counter[str] = Counter()

    @settings(max_examples=n, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(recipe=recipes())
    def run(recipe: Recipe) -> None:
        raw = recipe.build()
        for name in PASS_NAMES:
            program, _ = prepared(name, raw)
            calls[name] += 1
            changed[name] += PASSES[name]().run(program).changed

    run()
    return {name: (changed[name], calls[name]) for name in PASS_NAMES}


if __name__ == "__main__":
    for name, (c, n) in measure(int(sys.argv[1]) if len(sys.argv) > 1 else 300).items():
        print(f"| `{name}` | {c} / {n} | {100 * c / max(n, 1):.0f}% |")
