"""Symbolic sizes of every captured node, computed by torch itself.

The captured graph runs once on fake tensors whose dynamic dims are symbols of a ``ShapeEnv``
(no duck sizing, no 0/1 specialization: two dims with the same example size stay independent).
Every node's output shape is then an exact expression in the input dims, e.g.
``((s1 - 1)//2) + 1`` after a stride-2 convolution. They serve two purposes:

- a node whose *value* is a size (``x.size(0)``, ``x.shape[-2:]``) depends on a dynamic dim and
  must be computed at run time instead of being folded to its example value;
- the wrapper allocates each NNAPI segment output from its expression before calling the
  runtime (``Compilation.run`` then resizes it to what the device reports).

Quantized tensors run as float twins of the same shape (``symbolic_quant.py``: fake tensors
cannot be quantized); ``check_sample`` compares every symbolic shape with the real one at each
compiled sample.

A model that fixes a declared-dynamic dim (e.g. a ``view`` with literal sizes) is an error here,
naming the dim, rather than an artifact that fails (or is wrong) at another size.
"""

from __future__ import annotations

from typing import Any

import attrs
import sympy
import torch
import torch.fx
from torch.utils import _pytree as pytree

from ..errors import ConversionError
from .capture import EXAMPLE
from .dynamic_spec import Dynamic
from .symbolic_quant import float_input, float_twin

SYM = "nnc_sym"  # node.meta key: the output with torch.SymInt sizes replaced by sympy expressions


@attrs.frozen
class Symbols:
    """Which input dim each symbol stands for, and which nodes' values are sizes."""

    inputs: dict[sympy.Symbol, tuple[int, int]]  # symbol -> (input index, dim)
    size_nodes: frozenset[str]  # nodes whose (non-tensor) value depends on a dynamic dim
    env: Any = attrs.field(eq=False, repr=False)  # the ShapeEnv (simplifies expressions)

    def expr(self, e: Any) -> sympy.Expr | int:
        """``e`` (int, SymInt or sympy) simplified by the shape environment."""
        if isinstance(e, torch.SymInt):
            e = e.node.expr
        if isinstance(e, int):
            return e
        e = self.env.replace(e)
        return int(e) if getattr(e, "is_number", False) else e

    def value(self, e: Any, sizes: dict[tuple[int, int], int]) -> int:
        """The value of expression ``e`` when the input dims have ``sizes``."""
        e = self.expr(e)
        if isinstance(e, int):
            return e
        sub = {s: sizes[pos] for s, pos in self.inputs.items()}
        return int(e.xreplace(sub))


def _free(v: Any) -> bool:
    return isinstance(v, torch.SymInt | torch.SymFloat | torch.SymBool) and not v.node.expr.is_number


def symbolic_run(gm: torch.fx.GraphModule, dyn: Dynamic) -> Symbols:
    """Run ``gm`` on fake inputs with symbolic dynamic dims; record ``node.meta[SYM]``."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv, StatelessSymbolicContext

    env = ShapeEnv(duck_shape=False, specialize_zero_one=False)
    mode = FakeTensorMode(shape_env=env, allow_non_fake_inputs=True)
    sample = max(dyn.samples, key=lambda s: sum(x.numel() for x in s if isinstance(x, torch.Tensor)))
    fakes, symbols = [], {}
    for i, (x, dims) in enumerate(zip(sample, dyn.dims, strict=True)):
        if not isinstance(x, torch.Tensor):
            fakes.append(x)
            continue
        x = float_input(x)  # fake tensors cannot be quantized: a float twin of the same shape
        ctx = StatelessSymbolicContext(dynamic_sizes=[DimDynamic.DYNAMIC if s else DimDynamic.STATIC
                                                      for s in dims])
        f = mode.from_tensor(x, symbolic_context=ctx)
        for d, s in enumerate(dims):
            if s is not None:
                symbols[f.shape[d].node.expr] = (i, d)
        fakes.append(f)
    size_nodes: set[str] = set()

    class Run(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> Any:
            try:
                out = super().run_node(n)
            except Exception:
                if not _quantized(n):
                    raise
                args, kwargs = self.fetch_args_kwargs_from_env(n)
                out = float_twin(self.module, n, args, kwargs)  # type: ignore[arg-type]
                if out is None:
                    raise ConversionError(
                        f"dynamic dims: no symbolic shape rule for the quantized node {n.name} "
                        f"({n.format_node()}); declare static shapes for this model") from None
            if not isinstance(out, torch.Tensor) and any(_free(v) for v in pytree.tree_leaves(out)):
                size_nodes.add(n.name)
            n.meta[SYM] = pytree.tree_map(_strip, out)
            return out

    from torch._dispatch.python import enable_python_dispatcher

    try:  # the Python dispatcher lets composite ops (F.interpolate) take symbolic sizes
        with mode, enable_python_dispatcher(), torch.no_grad():
            Run(gm).run(*fakes)
    except ConversionError:
        raise
    except Exception as e:
        hint = ("; the graph was specialized to the example's sizes (for PT2E: export with the "
                "same dynamic_shapes before prepare_pt2e)") if "Guard failed" in str(e) else ""
        raise ConversionError(f"the model cannot run with symbolic sizes for its dynamic dims: "
                              f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                              f"{hint}") from e
    syms = Symbols(symbols, frozenset(size_nodes), env)
    for s, (i, d) in symbols.items():
        r = syms.expr(s)
        if isinstance(r, int):
            spec = dyn.dims[i][d]
            raise ConversionError(f"dim {d} of input {i} is declared dynamic ({spec}), but the model "
                                  f"only works when it is {r}")
    return syms


def check_sample(gm: torch.fx.GraphModule, syms: Symbols, sizes: dict[tuple[int, int], int]
                 ) -> dict[str, Any]:
    """Check the recorded sample (input dims ``sizes``) against the symbolic shapes; return the
    non-tensor leaves of every node's value there.

    A tensor whose symbolic shape gives another shape than the sample has means a shape rule is
    wrong (e.g. a float-twin rule of ``symbolic_quant``): an error, never a wrong allocation.
    """
    values: dict[str, Any] = {}
    for n in gm.graph.nodes:
        ex, sym = n.meta.get(EXAMPLE), n.meta.get(SYM)
        if isinstance(ex, torch.Tensor):
            if isinstance(sym, tuple) and len(sym) == ex.dim() and all(_known(syms, e) for e in sym):
                got = [syms.value(e, sizes) for e in sym]
                if got != list(ex.shape):
                    raise ConversionError(f"dynamic dims: node {n.name} has shape {list(ex.shape)} "
                                          f"at input sizes {sorted(sizes.items())}, but its "
                                          f"symbolic shape gives {got}")
            continue
        leaves = [v for v in pytree.tree_leaves(ex) if not isinstance(v, torch.Tensor)]
        if leaves:
            values[n.name] = leaves
    return values


def _known(syms: Symbols, e: Any) -> bool:
    """Whether ``e`` is an int or an expression in the input dims only (no unbacked symbol)."""
    e = syms.expr(e)
    return isinstance(e, int) or (isinstance(e, sympy.Expr) and e.free_symbols <= set(syms.inputs))


def _quantized(n: torch.fx.Node) -> bool:
    """Whether ``n`` reads or produces a quantized tensor on the concrete example (see
    ``symbolic_quant``)."""
    return any(isinstance(t, torch.Tensor) and t.is_quantized
               for m in (n, *n.all_input_nodes) for t in pytree.tree_leaves(m.meta.get(EXAMPLE)))


def _strip(v: Any) -> Any:
    """A fake tensor becomes its shape (ints and SymInts); SymInts stay as they are."""
    if isinstance(v, torch.Tensor):
        return tuple(v.shape)
    return v


def expr_src(syms: Symbols, e: Any, names: dict[tuple[int, int], str]) -> str:
    """TorchScript source computing expression ``e`` from the input dims (``names[(i, d)]``)."""
    from torch.utils._sympy.printers import PythonPrinter

    e = syms.expr(e)
    if isinstance(e, int):
        return str(e)
    sub = {s: sympy.Symbol(names[pos], integer=True, positive=True) for s, pos in syms.inputs.items()}
    return "(" + PythonPrinter().doprint(e.xreplace(sub)) + ")"
