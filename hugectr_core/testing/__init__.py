"""Test helpers shipped to plugin authors (also a pytest plugin: fixtures ``xp`` and ``gpu_xp``).

* ``check_layer_gradients(layer, bottom_shapes)``: forward/backward of a layer against central
  finite differences in float64 on NumPy (every bottom and every parameter).
* ``run_layer(layer, bottoms, params, training=True)``: allocate tops/grads and run forward (and
  backward when ``top_grads`` are given), returning everything as a dict.
* ``assert_twins(fn_ref, fn_gpu, *host_args, rtol, atol)``: run a NumPy twin and a CuPy kernel on
  the same inputs and compare.
"""
from .layer_checks import check_layer_gradients, init_params, make_layer, ordered_specs, run_layer
from .twins import assert_twins, column_sum_tolerance, to_xp

__all__ = ["assert_twins", "check_layer_gradients", "column_sum_tolerance", "init_params", "make_layer", "ordered_specs", "run_layer", "to_xp"]
