"""``hugectr.inference``: HugeCTR 23.x's offline inference API (InferenceParams, InferenceModel).

Example:
    >>> from hugectr.inference import InferenceModel, InferenceParams
    >>> params = InferenceParams(model_name="wdl", max_batchsize=1024, hit_rate_threshold=1.0,
    ...                          dense_model_file="wdl_dense_2000.model",
    ...                          sparse_model_files=["wdl0_sparse_2000.model", "wdl1_sparse_2000.model"],
    ...                          device_id=0, use_gpu_embedding_cache=False, cache_size_percentage=0.2,
    ...                          i64_input_key=True)
    >>> model = InferenceModel("wdl.json", params)       # doctest: +SKIP
"""
from hugectr_core.inference import InferenceModel, InferenceParams

__all__ = ["InferenceModel", "InferenceParams"]
