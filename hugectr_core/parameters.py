"""Dense parameters: fp32 master weights in one flat buffer, gradients in another, optimizer states,
non-trainable layer state, and (under mixed precision) the fp16 working copy layers compute with.

Layout follows HugeCTR's files: trainable parameters in add() order (the dense model file), each
optimizer state spanning all of them (the opt_dense file), non-trainable state apart (.ntp.json).
"""
from __future__ import annotations

import numpy as np

MASTER = np.dtype(np.float32)


class DenseParameters:
    """Plans and owns every dense parameter buffer; ``update`` is the one optimizer step per iteration."""

    def __init__(self, layout: list, optimizer, compute_dtype):
        self.layout = layout                  # [(layer_name, ParamSpec)] in add() order
        self.optimizer = optimizer
        self.compute_dtype = np.dtype(compute_dtype)
        self.mixed = self.compute_dtype != MASTER
        self.trainable = [(n, s) for n, s in layout if s.trainable]
        self.state = [(n, s) for n, s in layout if not s.trainable]

    def plan(self, memory) -> None:
        for name, spec in self.trainable:
            memory.request("params", f"p/{name}/{spec.name}", spec.shape, MASTER)
        for name, spec in self.trainable:
            memory.request("param_grads", f"pg/{name}/{spec.name}", spec.shape, self.compute_dtype)
        for state in self.optimizer.state_names:
            for name, spec in self.trainable:
                memory.request("opt_states", f"os/{state}/{name}/{spec.name}", spec.shape, MASTER)
        for name, spec in self.state:
            memory.request("layer_state", f"ls/{name}/{spec.name}", spec.shape, MASTER)
        if self.mixed:
            for name, spec in self.trainable:
                memory.request("params_fp16", f"ph/{name}/{spec.name}", spec.shape, self.compute_dtype)
            for name, spec in self.trainable:
                memory.request("param_grads_fp32", f"pg32/{name}/{spec.name}", spec.shape, MASTER)

    def bind(self, memory, views: dict, xp, rng) -> None:
        """Take the planned views and draw every initial value (host RNG, add() order)."""
        self.xp = xp
        self.by_layer: dict = {}
        self.grads_by_layer: dict = {}
        working_prefix = "ph" if self.mixed else "p"
        for name, spec in self.layout:
            value = xp.asarray(np.asarray(spec.init(rng, spec.shape), dtype=MASTER).reshape(spec.shape))
            key = f"{name}/{spec.name}"
            if spec.trainable:
                views[f"p/{key}"][...] = value
        for name, spec in self.trainable:
            key = f"{name}/{spec.name}"
            self.by_layer.setdefault(name, []).append(views[f"{working_prefix}/{key}"])
            self.grads_by_layer.setdefault(name, []).append(views[f"pg/{key}"])
        for name, spec in self.state:  # after the trainable ones, as the contract says
            view = views[f"ls/{name}/{spec.name}"]
            view[...] = xp.asarray(np.asarray(spec.init(rng, spec.shape), dtype=MASTER).reshape(spec.shape))
            self.by_layer.setdefault(name, []).append(view)
        self.master = memory.flat("params", MASTER)
        self.grads = memory.flat("param_grads", self.compute_dtype)
        self.grads32 = memory.flat("param_grads_fp32", MASTER) if self.mixed else self.grads
        self.working = memory.flat("params_fp16", self.compute_dtype) if self.mixed else self.master
        n = 0 if self.master is None else self.master.size
        states = memory.flat("opt_states", MASTER)
        self.opt_states = [states[k * n:(k + 1) * n] for k in range(len(self.optimizer.state_names))]
        for state_name, state in zip(self.optimizer.state_names, self.opt_states):
            state[...] = self.optimizer.initial_state(state_name)
        self.sync_working()

    @property
    def size(self) -> int:
        return 0 if self.master is None else int(self.master.size)

    def sync_working(self) -> None:
        """Refresh the fp16 working copy from the fp32 master weights (mixed precision only)."""
        if self.mixed and self.master is not None:
            self.working[...] = self.master

    def gradients_fp32(self):
        """The flat gradient in fp32 (cast from the fp16 gradients under mixed precision)."""
        if self.mixed and self.master is not None:
            self.grads32[...] = self.grads
        return self.grads32

    def update(self, lr: float, step: int, scaler: float) -> None:
        if self.master is None:
            return
        self.optimizer.update(self.xp, self.master, self.grads32, self.opt_states, lr, step, scaler)
        self.sync_working()

    def state_of(self, layer_name: str) -> list:
        """Host copies of a layer's non-trainable state, in spec order."""
        n_trainable = sum(1 for n, _ in self.trainable if n == layer_name)
        return self.by_layer.get(layer_name, [])[n_trainable:]
