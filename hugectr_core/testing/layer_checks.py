"""Run a single layer outside a model, and check its gradients numerically."""
from __future__ import annotations

import numpy as np

from ..contracts.layer import LayerConfig, StepContext
from ..layers_api import DENSE_LAYER_DEFAULTS
from ..plugins import registry


def make_layer(type_name: str, bottoms, tops, **args):
    """Instantiate a registered layer the way ``Model.compile`` does."""
    cls = registry("layers").load(type_name)
    cfg = LayerConfig(type_name, tuple(bottoms), tuple(tops), {**DENSE_LAYER_DEFAULTS, **args})
    return cls(cfg)


def ordered_specs(layer, bottom_shapes) -> list:
    """Trainable specs first, then non-trainable ones: the order layers receive ``params`` in."""
    specs = layer.param_specs(bottom_shapes)
    return [s for s in specs if s.trainable] + [s for s in specs if not s.trainable]


def init_params(layer, bottom_shapes, xp=np, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [xp.asarray(np.asarray(s.init(rng, s.shape), dtype=dtype).reshape(s.shape))
            for s in ordered_specs(layer, bottom_shapes)]


def _context(xp, training, batch, seed=0, device_count=1, scaler=1.0):
    rng = xp.random.default_rng(seed)
    return StepContext(xp=xp, training=training, rng=rng, batch_size=batch, current_batchsize=batch,
                       device_count=device_count, scaler=scaler, step=1)


def run_layer(layer, bottoms, params, top_grads=None, training=True, seed=0):
    """Forward (and backward when ``top_grads`` is given or the layer is a loss) on fresh buffers."""
    from ..backend import array_module

    xp = array_module(*bottoms)
    dtype = bottoms[0].dtype if bottoms else np.float64
    shapes = [tuple(b.shape) for b in bottoms]
    top_shapes = layer.infer_shapes(shapes)
    ws = {w.name: xp.zeros(w.shape, dtype=w.dtype or dtype) for w in layer.workspace_specs(shapes)}
    if layer.aliases_bottom:
        tops = [bottoms[0].reshape(top_shapes[0])]
    else:
        tops = [xp.full(s, np.nan, dtype=dtype) for s in top_shapes]
    ctx = _context(xp, training, shapes[0][0] if shapes and shapes[0] else 1, seed)
    layer.forward(ctx, list(bottoms), tops, list(params), ws)
    out = {"tops": tops, "ws": ws}
    is_loss = getattr(layer, "is_loss", False)
    if top_grads is None and not is_loss:
        return out
    bottom_grads = [xp.full(b.shape, np.nan, dtype=dtype) if layer.bottom_needs_grad(i) else None
                    for i, b in enumerate(bottoms)]
    n_trainable = sum(s.trainable for s in layer.param_specs(shapes))
    param_grads = [xp.full(p.shape, np.nan, dtype=dtype) for p in params[:n_trainable]]
    if layer.aliases_bottom:
        bottom_grads = [g.reshape(bottoms[0].shape) for g in top_grads]
    else:
        layer.backward(ctx, list(bottoms), tops, list(top_grads or []), bottom_grads, list(params), param_grads, ws)
    out.update(bottom_grads=bottom_grads, param_grads=param_grads)
    return out


def _objective(layer, bottoms, params, weights, seed):
    """Scalar sum_i <w_i, top_i> (or the loss itself): its gradient is what backward computes."""
    res = run_layer(layer, bottoms, params, training=True, seed=seed)
    if getattr(layer, "is_loss", False):
        return float(res["tops"][0].sum())
    return float(sum((t * w).sum() for t, w in zip(res["tops"], weights)))


def check_layer_gradients(layer, bottoms, params=None, *, seed=0, eps=1e-6, rtol=1e-5, atol=1e-7,
                          skip_bottoms=()):
    """Compare backward with central differences (float64 NumPy). Raises AssertionError on mismatch.

    For a loss, the reference is d(loss)/dx times the global-batch normalisation the loss applies,
    i.e. backward's gradient must equal d(mean loss)/dx with scaler 1 and one device.
    """
    bottoms = [np.asarray(b, dtype=np.float64) for b in bottoms]
    shapes = [b.shape for b in bottoms]
    params = init_params(layer, shapes, seed=seed) if params is None else [np.asarray(p, np.float64) for p in params]
    rng = np.random.default_rng(seed + 1)
    top_shapes = layer.infer_shapes(shapes)
    is_loss = getattr(layer, "is_loss", False)
    weights = [rng.standard_normal(s) for s in top_shapes]
    res = run_layer(layer, bottoms, params, top_grads=None if is_loss else weights, seed=seed)

    def numeric(arr_list, idx):
        arr = arr_list[idx]
        grad = np.zeros_like(arr)
        flat, gflat = arr.reshape(-1), grad.reshape(-1)
        for i in range(flat.size):
            orig = flat[i]
            flat[i] = orig + eps
            plus = _objective(layer, bottoms, params, weights, seed)
            flat[i] = orig - eps
            minus = _objective(layer, bottoms, params, weights, seed)
            flat[i] = orig
            gflat[i] = (plus - minus) / (2 * eps)
        return grad

    for i in range(len(bottoms)):
        if i in skip_bottoms or res["bottom_grads"][i] is None:
            continue
        np.testing.assert_allclose(res["bottom_grads"][i], numeric(bottoms, i), rtol=rtol, atol=atol,
                                   err_msg=f"{layer.type_name}: gradient of bottom {i}")
    for j in range(len(res["param_grads"])):
        np.testing.assert_allclose(res["param_grads"][j], numeric(params, j), rtol=rtol, atol=atol,
                                   err_msg=f"{layer.type_name}: gradient of parameter {j}")
    return res
