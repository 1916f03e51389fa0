"""The dense graph: tensors by name, automatic fan-out copies, topological schedule, shapes.

Layers refer to tensors by name (HugeCTR's bottom/top names). A tensor consumed by several layers
gets an automatic copy layer (HugeCTR inserts a Slice since v3.3), so every tensor has exactly one
consumer and gradients are written, never accumulated.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .contracts.layer import Layer, LayerConfig
from .errors import GraphError
from .plugins import registry


class FanOut(Layer):
    """Internal: copy one tensor to several (backward sums the gradients)."""

    num_tops = None
    cuda_graph_safe = True  # device copies and adds only

    def infer_shapes(self, bottom_shapes):
        return [bottom_shapes[0]] * len(self.config.top_names)

    def forward(self, ctx, bottoms, tops, params, ws):
        for top in tops:
            top[...] = bottoms[0]

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is None:
            return
        bottom_grads[0][...] = top_grads[0]
        for g in top_grads[1:]:
            bottom_grads[0] += g


@dataclass
class Node:
    layer: Layer
    bottoms: list
    tops: list
    user_index: int = -1  # position in the user's add() order; -1 for inserted layers
    has_params: bool = False

    @property
    def is_loss(self) -> bool:
        return getattr(self.layer, "is_loss", False)


@dataclass
class Graph:
    """Scheduled nodes plus which tensors come from the data layer and embeddings."""

    nodes: list
    sources: dict                     # tensor name -> "data" | "embedding"
    needs_grad: dict = field(default_factory=dict)

    @property
    def losses(self) -> list:
        return [n for n in self.nodes if n.is_loss]


def make_layer(dense_layer) -> Layer:
    """Instantiate a ``hugectr.DenseLayer`` through the layer registry."""
    cls = registry("layers").load(dense_layer.type_name)
    cfg = LayerConfig(dense_layer.type_name, tuple(dense_layer.bottom_names), tuple(dense_layer.top_names),
                      dict(dense_layer.args))
    return cls(cfg)


def _insert_fanouts(nodes: list[Node], sources: dict) -> list[Node]:
    consumers: dict[str, list[tuple[Node, int]]] = {}
    for node in nodes:
        for i, name in enumerate(node.bottoms):
            consumers.setdefault(name, []).append((node, i))
    fanouts = []
    for name, uses in consumers.items():
        if len(uses) < 2:
            continue
        copies = [f"{name}__copy{k}" for k in range(len(uses))]
        for (node, i), copy in zip(uses, copies):
            node.bottoms[i] = copy
        layer = FanOut(LayerConfig("FanOut", (name,), tuple(copies), {}))
        fanouts.append(Node(layer, [name], copies))
    return fanouts + nodes


def _schedule(nodes: list[Node], sources: dict) -> list[Node]:
    producer: dict[str, Node] = {}
    for node in nodes:
        for top in node.tops:
            if top in producer or top in sources:
                raise GraphError(f"tensor '{top}' is produced twice (by layer '{node.layer.name}' and "
                                 f"'{producer[top].layer.name if top in producer else 'the data layer/embedding'}'); "
                                 "every top name must be unique")
            producer[top] = node
    for node in nodes:
        for name in node.bottoms:
            if name not in producer and name not in sources:
                raise GraphError(f"layer '{node.layer.name}' ({node.layer.type_name}) reads tensor '{name}', which no "
                                 f"layer, embedding or Input produces; available: {sorted(set(producer) | set(sources))}")
    order, done, visiting = [], set(sources), set()

    def visit(node: Node, path: list):
        if id(node) in visiting:
            cycle = " -> ".join(n.layer.name for n in path + [node])
            raise GraphError(f"the graph has a cycle: {cycle}")
        if all(t in done for t in node.tops):
            return
        visiting.add(id(node))
        for name in node.bottoms:
            if name not in done:
                visit(producer[name], path + [node])
        visiting.discard(id(node))
        order.append(node)
        done.update(node.tops)

    for node in sorted(nodes, key=lambda n: n.user_index):
        visit(node, [])
    return order


def _needs_grad(nodes: list[Node], sources: dict) -> dict:
    needs = {name: kind == "embedding" for name, kind in sources.items()}
    for node in nodes:
        grad = any(needs.get(b, False) for b in node.bottoms) or node.has_params
        for top in node.tops:
            needs[top] = grad and not node.is_loss
    return needs


def build_graph(dense_layers: list, sources: dict) -> Graph:
    """Instantiate, connect and schedule the dense layers. Loss layers must come last in add() order."""
    nodes = []
    for i, dl in enumerate(dense_layers):
        node = Node(make_layer(dl), list(dl.bottom_names), list(dl.top_names), i)
        nodes.append(node)
    seen_loss = False
    for node in nodes:
        if node.is_loss:
            seen_loss = True
        elif seen_loss:
            raise GraphError(f"layer '{node.layer.name}' is added after a loss layer; loss layers must be added last")
    if not seen_loss:
        raise GraphError("the model has no loss layer (e.g. BinaryCrossEntropyLoss); add one last")
    nodes = _insert_fanouts(nodes, sources)
    order = _schedule(nodes, sources)
    return Graph(order, dict(sources))


def infer_shapes(graph: Graph, source_shapes: dict) -> dict:
    """Tensor name -> shape for one batch size; each layer validates its bottoms."""
    shapes = dict(source_shapes)
    for node in graph.nodes:
        tops = node.layer.infer_shapes([tuple(shapes[b]) for b in node.bottoms])
        if len(tops) != len(node.tops):
            raise node.layer.error(f"infers {len(tops)} outputs but has {len(node.tops)} top names")
        for name, shape in zip(node.tops, tops):
            shapes[name] = tuple(int(d) for d in shape)
    return shapes


def tensor_dtypes(graph: Graph, compute_dtype) -> dict:
    """dtype of every tensor: the compute dtype unless a layer declares its tops otherwise."""
    dtypes = {name: compute_dtype for name in graph.sources}
    for node in graph.nodes:
        for name, dtype in zip(node.tops, node.layer.top_dtypes(compute_dtype)):
            dtypes[name] = dtype
    return dtypes


def check_mixed_precision(graph: Graph) -> None:
    for node in graph.nodes:
        if not node.layer.supports_fp16:
            raise node.layer.error("is not available with use_mixed_precision=True (HugeCTR does not allow it "
                                   "either); train in fp32 or replace the layer")


def mark_params(graph: Graph, shapes: dict) -> None:
    """Record which layers own parameters, then which tensors need gradients."""
    for node in graph.nodes:
        node.has_params = bool(node.layer.param_specs([shapes[b] for b in node.bottoms]))
    graph.needs_grad = _needs_grad(graph.nodes, graph.sources)
