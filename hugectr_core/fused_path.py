"""HugeCTR's fp16 "fused path" spellings, rewritten at ``Model.add`` into the layers they compute.

HugeCTR's DLRM scripts name tensors that exist only for its fp16 kernels (formats.md 1.9.1):

* ``FusedInnerProduct`` (up to 23.x): a Head takes 1 bottom (or an Interaction's 2) and names 4 tops, a Body
  takes the 4 and names 4, a Tail takes the 4 and names 1; Isolated and Non take 1 (or 2) and name 1. The first top is ``act(x·W + b)``; the
  other three are that layer's private buffers (ReLU mask, dReLU, bias gradient).
* ``GroupDenseLayer`` (up to 23.x): a chain of at least two such layers, ReLU except, optionally, the last.
* ``Interaction`` with two tops and ``MLP`` / ``InnerProduct`` with two bottoms (23.x DLRM sample): the second
  name is the interaction's gradient buffer.

Here every layer runs in every precision, so none of these buffers exists: a FusedInnerProduct is a one-stage
MLP (same parameters, same dense-file order W, b), the extra names are aliases of the first top, and a bottom
that names an alias of a tensor the layer already reads is dropped. The rest of the engine (graph, JSON,
summary) sees plain layers; ``graph_to_json`` writes them as MLP.

Example:
    >>> from hugectr_core.layers_api import DenseLayer
    >>> aliases = {}
    >>> head = DenseLayer("FusedInnerProduct", ["dense"], ["fc11", "fc12", "fc13", "fc14"], num_output=8,
    ...                   pos_type="Head")
    >>> [(l.type_name, l.bottom_names, l.top_names) for l in rewrite(head, aliases)]
    [('MLP', ['dense'], ['fc11'])]
    >>> tail = DenseLayer("FusedInnerProduct", ["fc11", "fc12", "fc13", "fc14"], ["fc2"], num_output=1,
    ...                   pos_type="Tail", act_type="Non")
    >>> [(l.type_name, l.bottom_names, l.args["activations"]) for l in rewrite(tail, aliases)]
    [('MLP', ['fc11'], ['None'])]
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .enums import Activation_t, GroupLayer_t, type_string
from .errors import ConfigError
from .layers_api import DenseLayer, tensor_names

# position -> (bottom counts, tops) HugeCTR's FusedInnerProduct takes; a layer that starts a chain may also
# read an Interaction's gradient name as its second bottom
_ARITY = {"Head": ((1, 2), 4), "Body": ((4,), 4), "Tail": ((4,), 1), "Isolated": ((1, 2), 1), "Non": ((1, 2), 1),
          "None": ((1, 2), 1)}
_INIT_ARGS = ("weight_init_type", "bias_init_type", "compute_config")
_ACTIVATIONS = ("Relu", "Non", "None")  # HugeCTR's Activation_t.Relu / Non (its JSON writes "None")


def rewrite(layer: DenseLayer, aliases: dict) -> list[DenseLayer]:
    """The plain layers ``layer`` stands for, its bottoms read through ``aliases`` (updated with the names it
    makes aliases of its first top)."""
    bottoms = _resolve(layer.bottom_names, aliases)
    if layer.type_name == "FusedInnerProduct":
        return [_fused_inner_product(layer, bottoms, aliases)]
    if layer.type_name == "Interaction" and len(layer.top_names) == 2:
        aliases[layer.top_names[1]] = layer.top_names[0]  # its gradient buffer
        return [_copy(layer, bottoms, layer.top_names[:1])]
    if bottoms == layer.bottom_names:
        return [layer]
    return [_copy(layer, bottoms, layer.top_names)]


def _resolve(bottoms: list, aliases: dict) -> list:
    """Bottoms with aliases replaced by their tensor; an alias of a tensor already read is dropped, so
    ``["interaction1", "interaction1_grad"]`` reads ``["interaction1"]`` (a plain repeated name stays)."""
    resolved = []
    for name in bottoms:
        target = aliases.get(name)
        if target is None:
            resolved.append(name)
        elif target not in resolved:
            resolved.append(target)
    return resolved


def _fused_inner_product(layer: DenseLayer, bottoms: list, aliases: dict) -> DenseLayer:
    position = type_string(layer.args["pos_type"]) if layer.args["pos_type"] is not None else "(None)"
    want_bottoms, want_tops = _ARITY.get(position, (None, None))
    if want_bottoms is None:
        raise ConfigError(f"FusedInnerProduct '{layer.top_names[0]}': pos_type must be one of FcPosition_t "
                          f"Non, Head, Body, Tail, Isolated, got {position!r}")
    if len(layer.bottom_names) not in want_bottoms or len(layer.top_names) != want_tops:
        raise ConfigError(f"FusedInnerProduct '{layer.top_names[0]}' at position {position} takes "
                          f"{' or '.join(map(str, want_bottoms))} bottom(s) and names {want_tops} top(s) (HugeCTR's "
                          f"fused chain: Head 1 -> 4, Body 4 -> 4, Tail 4 -> 1), got bottoms {layer.bottom_names} and "
                          f"tops {layer.top_names}")
    if len(bottoms) != 1:
        raise ConfigError(f"FusedInnerProduct '{layer.top_names[0]}': its bottoms {layer.bottom_names} must be the "
                          f"tops of one FusedInnerProduct, or one tensor (and an Interaction's gradient name); "
                          f"they name {bottoms}")
    if type_string(layer.args["act_type"]) not in _ACTIVATIONS:
        raise ConfigError(f"FusedInnerProduct '{layer.top_names[0]}': act_type must be Activation_t.Relu or "
                          f"Activation_t.Non, got {layer.args['act_type']!r}")
    for extra in layer.top_names[1:]:
        aliases[extra] = layer.top_names[0]
    act = "Relu" if type_string(layer.args["act_type"]) == "Relu" else "None"
    return DenseLayer("MLP", bottoms, layer.top_names[:1], num_outputs=[layer.args["num_output"]],
                      activations=[act], **{k: layer.args[k] for k in _INIT_ARGS if k in layer.explicit_args})


def _copy(layer: DenseLayer, bottoms: list, tops: list) -> DenseLayer:
    return DenseLayer(layer.layer_type, bottoms, tops, **{k: layer.args[k] for k in layer.explicit_args})


@dataclass
class GroupDenseLayer:
    """HugeCTR's ``GroupDenseLayer`` (up to 23.x, later replaced by MLP): a chain of FusedInnerProduct layers
    ``top_name_list[i] = act_i(previous · W_i + b_i)``, ReLU except the last (``last_act_type``).

    ``bottom_name`` is accepted for ``bottom_name_list``, as HugeCTR's own samples spell it.

    Example:
        >>> group = GroupDenseLayer(GroupLayer_t.GroupFusedInnerProduct, ["dense"], ["fc1", "fc2"], [16, 8])
        >>> [(l.bottom_names, l.top_names, l.args["activations"]) for l in group.layers()]
        [(['dense'], ['fc1'], ['Relu']), (['fc1'], ['fc2'], ['Relu'])]
    """

    group_layer_type: object = None
    bottom_name_list: list = field(default_factory=list)
    top_name_list: list = field(default_factory=list)
    num_outputs: list = field(default_factory=list)
    last_act_type: object = Activation_t.Relu
    bottom_name: object = None

    def __post_init__(self):
        if self.bottom_name is not None and not self.bottom_name_list:
            self.bottom_name_list = self.bottom_name
        self.top_name_list = tensor_names(self.top_name_list, "top_name_list", "GroupDenseLayer")
        where = f"GroupDenseLayer {self.top_name_list}"
        self.bottom_name_list = tensor_names(self.bottom_name_list, "bottom_name_list", where)
        if not isinstance(self.num_outputs, (list, tuple)) or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in self.num_outputs):
            raise ConfigError(f"{where}: num_outputs must be a list of ints >= 1, one per layer, "
                              f"got {self.num_outputs!r}")
        self.num_outputs = list(self.num_outputs)
        if type_string(self.group_layer_type) != type_string(GroupLayer_t.GroupFusedInnerProduct):
            raise ConfigError(f"{where}: group_layer_type must be GroupLayer_t.GroupFusedInnerProduct, "
                              f"got {self.group_layer_type!r}")
        if not 1 <= len(self.bottom_name_list) <= 2:
            raise ConfigError(f"{where}: bottom_name_list takes 1 or 2 names, got {self.bottom_name_list}")
        if len(self.top_name_list) < 2 or len(self.top_name_list) != len(self.num_outputs):
            raise ConfigError(f"{where}: a group has at least two layers, one top name and one num_outputs "
                              f"entry each; got {len(self.top_name_list)} top names and num_outputs "
                              f"{self.num_outputs}")
        if type_string(self.last_act_type) not in _ACTIVATIONS:
            raise ConfigError(f"{where}: last_act_type must be Activation_t.Relu or Activation_t.Non, "
                              f"got {self.last_act_type!r}")

    def layers(self) -> list[DenseLayer]:
        """One one-stage MLP per layer of the group, each top named as HugeCTR names it."""
        last = "Relu" if type_string(self.last_act_type) == "Relu" else "None"
        bottoms, out = self.bottom_name_list, []
        for i, (top, width) in enumerate(zip(self.top_name_list, self.num_outputs)):
            act = last if i == len(self.num_outputs) - 1 else "Relu"
            out.append(DenseLayer("MLP", bottoms, [top], num_outputs=[width], activations=[act]))
            bottoms = [top]
        return out
