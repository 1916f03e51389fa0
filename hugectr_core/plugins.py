"""Entry-point registries (names -> classes, loaded lazily) and the pluggy hook manager.

One entry-point group per kind. An entry's name is the HugeCTR type string
(``InnerProduct``, ``DistributedSlotSparseEmbeddingHash``, ``Parquet``, ``Adam``, ``S3``) and its
value ``module:Class``. Reading the index imports nothing; a class is imported on first use.

Environment switches (read when a registry is first indexed):

* ``HUGECTR_DISABLE_PLUGIN_AUTOLOAD=1``: read no entry points; only names registered in code.
* ``HUGECTR_PLUGINS_ALLOW=a,b``: only these (distribution names or ``kind:Name``).
* ``HUGECTR_PLUGINS_BLOCK=a,b``: never these.

Example:
    >>> from hugectr_core.plugins import registry
    >>> "InnerProduct" in registry("layers")  # doctest: +SKIP
    True
"""
from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pluggy

from .errors import PluginError

log = logging.getLogger("hugectr")

KINDS = ("layers", "embeddings", "readers", "optimizers", "filesystems", "hooks")

# Which distribution provides each HugeCTR type we know of, so a missing one says what to install.
KNOWN_DISTRIBUTIONS = {
    "layers": {
        **dict.fromkeys(["InnerProduct", "MLP", "FusedInnerProduct"], "hugectr-layers-dense"),
        **dict.fromkeys(["ReLU", "Sigmoid", "ELU", "PReLU_Dice", "Dropout"], "hugectr-layers-activations"),
        **dict.fromkeys(["Concat", "Reshape", "Slice", "Select", "Gather", "ReduceSum", "ReduceMean",
                         "Add", "Sub", "ElementwiseMultiply", "Scale", "FusedReshapeConcat",
                         "FusedReshapeConcatGeneral", "Cast"], "hugectr-layers-shape"),
        **dict.fromkeys(["Interaction", "MultiCross", "FmOrder2", "WeightMultiply", "MatrixMultiply"],
                        "hugectr-layers-interactions"),
        **dict.fromkeys(["BinaryCrossEntropyLoss", "CrossEntropyLoss", "MultiCrossEntropyLoss"],
                        "hugectr-layers-losses"),
        **dict.fromkeys(["BatchNorm", "LayerNorm"], "hugectr-layers-normalization"),
        **dict.fromkeys(["Softmax", "MultiHeadAttention", "SequenceMask", "GRU"], "hugectr-layers-sequence"),
    },
    "embeddings": dict.fromkeys(["DistributedSlotSparseEmbeddingHash", "LocalizedSlotSparseEmbeddingHash"],
                                "hugectr-embeddings-sparse"),
    "readers": {"RawAsync": "hugectr-reader-raw", "Raw": "hugectr-reader-raw",
                "Parquet": "hugectr-reader-parquet", "Norm": "hugectr-reader-norm"},
    "optimizers": {"SGD": "hugectr-optimizers-sgd", "MomentumSGD": "hugectr-optimizers-sgd",
                   "Nesterov": "hugectr-optimizers-sgd", "Adam": "hugectr-optimizers-adaptive",
                   "AdaGrad": "hugectr-optimizers-adaptive", "Ftrl": "hugectr-optimizers-adaptive"},
    "filesystems": dict.fromkeys(["HDFS", "S3", "GCS", "Other"], "hugectr-filesystems-fsspec"),
}


@dataclass(frozen=True)
class PluginEntry:
    """One registered name: where it comes from and what it points to."""

    kind: str
    name: str
    distribution: str
    version: str
    value: str  # "module:attr", or "<object>" for names registered in code

    @property
    def ships_kernels(self) -> bool:
        """True when the entry's top-level package contains a ``kernels.cu`` (found without importing it)."""
        if ":" not in self.value:
            return False
        top = self.value.split(":")[0].split(".")[0]
        spec = importlib.util.find_spec(top)
        roots = list(spec.submodule_search_locations or []) if spec else []
        return any(any(Path(r).rglob("kernels.cu")) for r in roots)


def _csv_env(name: str) -> set[str]:
    return {s.strip() for s in os.environ.get(name, "").split(",") if s.strip()}


def _allowed(kind: str, name: str, dist: str) -> bool:
    allow, block = _csv_env("HUGECTR_PLUGINS_ALLOW"), _csv_env("HUGECTR_PLUGINS_BLOCK")
    keys = {dist, f"{kind}:{name}"}
    if keys & block:
        return False
    return not allow or bool(keys & allow)


class Registry:
    """Name -> class table of one kind, filled from the ``hugectr.<kind>`` entry-point group."""

    def __init__(self, kind: str):
        self.kind = kind
        self.group = f"hugectr.{kind}"
        self._index: dict[str, PluginEntry] | None = None
        self._conflicts: dict[str, list[PluginEntry]] = {}
        self._loaded: dict[str, object] = {}
        self._in_code: dict[str, tuple[PluginEntry, object]] = {}

    # -- index -------------------------------------------------------------------------------
    def _build_index(self) -> dict[str, PluginEntry]:
        index: dict[str, PluginEntry] = {}
        self._conflicts = {}
        if os.environ.get("HUGECTR_DISABLE_PLUGIN_AUTOLOAD") != "1":
            for ep in md.entry_points(group=self.group):
                dist = ep.dist.metadata["Name"] if ep.dist else "<unknown>"
                version = ep.dist.version if ep.dist else ""
                if not _allowed(self.kind, ep.name, dist):
                    continue
                entry = PluginEntry(self.kind, ep.name, dist, version, ep.value)
                if ep.name in index and index[ep.name].distribution != dist:
                    self._conflicts.setdefault(ep.name, [index[ep.name]]).append(entry)
                index[ep.name] = entry
        for name, (entry, _) in self._in_code.items():
            index[name] = entry
        return index

    def _entries(self) -> dict[str, PluginEntry]:
        if self._index is None:
            self._index = self._build_index()
        return self._index

    def refresh(self) -> None:
        """Forget the index (after installing or removing a distribution in this process)."""
        self._index = None
        self._loaded = {k: v for k, v in self._loaded.items() if k in self._in_code}

    # -- queries -----------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._entries())

    def entries(self) -> list[PluginEntry]:
        return [self._entries()[n] for n in self.names()]

    def __contains__(self, name: str) -> bool:
        return name in self._entries()

    def missing_message(self, name: str) -> str:
        dist = KNOWN_DISTRIBUTIONS.get(self.kind, {}).get(name)
        if dist:
            return (f"{self.kind[:-1]} type '{name}' is not installed: "
                    f"install it with `pip install {dist}`")
        known = ", ".join(self.names()) or "none"
        return (f"unknown {self.kind[:-1]} type '{name}'. Installed {self.kind}: {known}. "
                f"A third-party package can add it under the entry-point group '{self.group}'.")

    def load(self, name: str):
        """Return the class registered under ``name``, importing it on first use."""
        if name in self._loaded:
            return self._loaded[name]
        if name in self._in_code:
            return self._in_code[name][1]
        entries = self._entries()
        if name in self._conflicts:
            dists = ", ".join(sorted({e.distribution for e in self._conflicts[name]}))
            raise PluginError(f"{self.kind[:-1]} type '{name}' is provided by several distributions "
                              f"({dists}); uninstall all but one, or block one with HUGECTR_PLUGINS_BLOCK")
        if name not in entries:
            raise PluginError(self.missing_message(name))
        entry = entries[name]
        module_name, _, attr = entry.value.partition(":")
        try:
            obj = importlib.import_module(module_name)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
        except ImportError as exc:
            raise PluginError(f"{self.kind[:-1]} type '{name}' from {entry.distribution} failed to import "
                              f"({exc}); reinstall {entry.distribution} and its dependencies") from exc
        self._loaded[name] = obj
        return obj

    def register(self, name: str, obj, *, distribution: str = "<in code>", override: bool = False) -> None:
        """Register a class in code (tests, notebooks). Re-registering needs ``override=True``."""
        if not override and (name in self._in_code or name in self._entries()):
            raise PluginError(f"{self.kind[:-1]} type '{name}' is already registered; pass override=True")
        self._in_code[name] = (PluginEntry(self.kind, name, distribution, "", "<object>"), obj)
        self._loaded.pop(name, None)
        self._index = None

    def unregister(self, name: str) -> None:
        self._in_code.pop(name, None)
        self._loaded.pop(name, None)
        self._index = None


_REGISTRIES = {kind: Registry(kind) for kind in KINDS}


def registry(kind: str) -> Registry:
    """The registry of one kind: layers, embeddings, readers, optimizers, filesystems or hooks."""
    try:
        return _REGISTRIES[kind]
    except KeyError:
        raise PluginError(f"unknown plugin kind '{kind}'; kinds are {', '.join(KINDS)}") from None


def refresh_all() -> None:
    for reg in _REGISTRIES.values():
        reg.refresh()
    global _PM
    _PM = None


def list_plugins() -> list[PluginEntry]:
    """Every registered name of every kind (what ``hugectr plugins`` prints).

    Example:
        >>> import hugectr
        >>> "progress" in [e.name for e in hugectr.list_plugins() if e.kind == "hooks"]
        True
    """
    return [e for kind in KINDS for e in registry(kind).entries()]


# -- pluggy: cross-cutting events ----------------------------------------------------------------
_PM: pluggy.PluginManager | None = None


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide hook manager, with every installed ``hugectr.hooks`` plugin registered."""
    global _PM
    if _PM is None:
        from . import hookspecs

        pm = pluggy.PluginManager("hugectr")
        pm.add_hookspecs(hookspecs)
        hooks = registry("hooks")
        for name in hooks.names():
            try:
                obj = hooks.load(name)
            except PluginError as exc:  # a broken optional hook plugin must not stop training
                log.warning("skipping hook plugin %s: %s", name, exc)
                continue
            pm.register(obj() if isinstance(obj, type) else obj, name=f"hooks:{name}")
        pm.check_pending()
        _PM = pm
    return _PM
