"""One executable instance of the dense graph at one batch size: train (with gradients) or eval.

Both instances share the parameter views; each has its own activations (and the train one its
gradients and workspaces), all planned in the model's ``MemoryPlan``.
"""
from __future__ import annotations

import numpy as np

from .graph import Graph


class Network:
    """Forward/backward executor over preplanned buffers."""

    def __init__(self, graph: Graph, shapes: dict, mode: str, dtype=np.float32, dtypes: dict | None = None):
        self.graph, self.shapes, self.mode, self.dtype = graph, shapes, mode, np.dtype(dtype)
        self.dtypes = {name: np.dtype((dtypes or {}).get(name, dtype)) for name in shapes}
        self.training = mode == "train"
        self.tensors: dict = {}
        self.grads: dict = {}
        self.ws: dict = {}

    # -- planning --------------------------------------------------------------------------
    def _aliased(self) -> dict:
        return {top: node.bottoms[0] for node in self.graph.nodes if node.layer.aliases_bottom for top in node.tops}

    def plan(self, memory) -> None:
        aliased = self._aliased()
        for name, shape in self.shapes.items():
            if name in aliased:
                continue
            memory.request(f"{self.mode}/activations", f"{self.mode}/t/{name}", shape, self.dtypes[name])
            if self.training and self.graph.needs_grad.get(name):
                memory.request(f"{self.mode}/grads", f"{self.mode}/g/{name}", shape, self.dtypes[name])
        for node in self.graph.nodes:
            for spec in node.layer.workspace_specs([self.shapes[b] for b in node.bottoms]):
                memory.request(f"{self.mode}/workspace", f"{self.mode}/ws/{node.layer.name}/{spec.name}",
                               spec.shape, spec.dtype or self.dtype)

    def bind(self, views: dict) -> None:
        prefix = f"{self.mode}/"
        for key, view in views.items():
            if not key.startswith(prefix):
                continue
            kind, _, name = key[len(prefix):].partition("/")
            if kind == "t":
                self.tensors[name] = view
            elif kind == "g":
                self.grads[name] = view
            elif kind == "ws":
                layer, _, ws_name = name.partition("/")
                self.ws.setdefault(layer, {})[ws_name] = view
        for node in self.graph.nodes:  # schedule order: a view's bottom is bound before it
            if node.layer.aliases_bottom:
                bottom = node.bottoms[0]
                for top in node.tops:
                    self.tensors[top] = self.tensors[bottom].reshape(self.shapes[top])
                    if bottom in self.grads:
                        self.grads[top] = self.grads[bottom].reshape(self.shapes[top])

    # -- execution -------------------------------------------------------------------------
    def forward(self, ctx, params: dict) -> None:
        for node in self.graph.nodes:
            if node.layer.aliases_bottom:
                continue
            node.layer.forward(ctx, [self.tensors[b] for b in node.bottoms], [self.tensors[t] for t in node.tops],
                               params.get(node.layer.name, []), self.ws.get(node.layer.name, {}))

    def backward(self, ctx, params: dict, param_grads: dict) -> None:
        for node in reversed(self.graph.nodes):
            layer = node.layer
            if layer.aliases_bottom:
                continue
            bottom_grads = [self.grads.get(b) if layer.bottom_needs_grad(i) else None
                            for i, b in enumerate(node.bottoms)]
            if not node.has_params and all(g is None for g in bottom_grads):
                continue
            layer.backward(ctx, [self.tensors[b] for b in node.bottoms], [self.tensors[t] for t in node.tops],
                           [self.grads.get(t) for t in node.tops], bottom_grads,
                           params.get(layer.name, []), param_grads.get(layer.name, []),
                           self.ws.get(layer.name, {}))

    def loss_value(self, xp):
        """Sum of the (weighted) loss tops, as a device scalar (reading it syncs the device)."""
        total = None
        for node in self.graph.losses:
            value = self.tensors[node.tops[0]].reshape(())
            total = value if total is None else total + value
        return total

    def predictions(self, xp):
        """(B, n_labels) predictions of every loss, and the matching labels."""
        preds, labels = [], []
        for node in self.graph.losses:
            preds.append(node.layer.predict(xp, self.tensors[node.bottoms[0]]))
            labels.append(self.tensors[node.bottoms[1]])
        return xp.concatenate(preds, axis=1), xp.concatenate(labels, axis=1)
