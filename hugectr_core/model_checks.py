"""What ``Model`` checks as a script builds it: its constructor's objects, HugeCTR's overloaded keyword names,
and who names which tensor (HugeCTR's fused-path spellings rewritten on the way, ``fused_path``).

Example:
    >>> one_of("add", item=None, dense_layer="fc")
    'fc'
"""
from __future__ import annotations

from .errors import ConfigError, GraphError
from .fused_path import rewrite


def one_of(method: str, **given):
    """The one argument of an overloaded HugeCTR method that was given (pybind names each overload's)."""
    values = [v for v in given.values() if v is not None]
    if len(values) != 1:
        raise TypeError(f"Model.{method} takes exactly one of {', '.join(given)}")
    return values[0]


def check_model_args(solver, reader_params, opt_params) -> None:
    """Model(solver, reader_params, opt_params) with the objects HugeCTR's factories make (a reader may be
    None for a model that is only stepped by hand, as the tests do)."""
    from .params import DataReaderParams, OptParamsPy  # noqa: PLC0415 - params imports the solver module
    from .solver import Solver  # noqa: PLC0415

    for name, value, cls, factory in (("solver", solver, Solver, "CreateSolver"),
                                      ("opt_params", opt_params, OptParamsPy, "CreateOptimizer")):
        if not isinstance(value, cls):
            raise ConfigError(f"Model: {name} must come from hugectr.{factory}(...), got {value!r}")
    if reader_params is not None and not isinstance(reader_params, DataReaderParams):
        raise ConfigError(f"Model: reader_params must be a hugectr.DataReaderParams(...), got {reader_params!r}")


class TensorNames:
    """Who names which tensor while a model is built: the Input's, the embeddings' and the fused-path alias
    names are reserved; a dense top or an alias that reuses one would silently redirect every later read.
    Dense-dense clashes are left to the graph, which names both layers."""

    def __init__(self):
        self.owner: dict = {}       # reserved name -> who names it
        self.dense_tops: dict = {}  # dense top -> layer
        self.aliases: dict = {}     # fp16 buffer names of HugeCTR's fused path -> the tensor they follow

    def reserve(self, names, who: str) -> None:
        for name in names:
            previous = self.owner.get(name) or self.dense_tops.get(name)
            if previous is not None:
                raise GraphError(f"tensor '{name}' is produced twice (by {who} and {previous}); every tensor name "
                                 "must be unique")
            self.owner[name] = who

    def add_dense(self, layer) -> list:
        """The plain layers a dense layer stands for (``fused_path.rewrite``), its tops and new alias names
        checked against the reserved ones."""
        known = set(self.aliases)
        plain = rewrite(layer, self.aliases)
        for out in plain:  # a top that is also the layer's own bottom: the layer's own error says it better
            self._check_dense_tops([t for t in out.top_names if t not in out.bottom_names],
                                   f"layer '{out.top_names[0]}' ({layer.type_name})")
        self.reserve([name for name in self.aliases if name not in known],
                     f"layer '{layer.top_names[0]}' ({layer.type_name}), as an alias")
        return plain

    def _check_dense_tops(self, names, who: str) -> None:
        for name in names:
            if name in self.owner:
                raise GraphError(f"tensor '{name}' is produced twice (by {who} and {self.owner[name]}); every "
                                 "tensor name must be unique")
            self.dense_tops.setdefault(name, who)
