"""Start-of-job check that every worker (thread or process) built the same model.

``Model.compile()`` runs ``check_same_model`` on every worker; a rank whose script or arguments
differ makes every rank raise the same ConfigError instead of hanging in a later collective.
"""
from __future__ import annotations

import hashlib
import json

from .errors import ConfigError


def model_signature(rt) -> dict:
    """What every worker must agree on: tensor shapes, dense parameter layout, embeddings and batch."""
    graph = sorted((name, list(shape)) for name, shape in rt.shapes["train"].items())
    params = [(layer, spec.name, list(spec.shape)) for layer, spec in rt.param_layout]
    embeddings = [(e.name, e.config.type_name, e.config.embedding_vec_size, e.config.slot_num, e.config.combiner)
                  for e in rt.embeddings]
    return {"graph": graph, "params": params, "embeddings": embeddings,
            "batch": [rt.batch_train, rt.batch_eval], "optimizer": type(rt.optimizer).__name__}


def _digest(doc: dict) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_same_model(rt) -> None:
    """Every worker compares its model with worker 0's; all raise the same ConfigError when one differs."""
    if rt.comm.size == 1:
        return
    mine = model_signature(rt)
    signatures = rt.comm.allgather_object(mine)
    reference = _digest(signatures[0])
    for rank, doc in enumerate(signatures):
        if _digest(doc) != reference:
            differs = sorted(k for k in doc if doc[k] != signatures[0].get(k))
            raise ConfigError(f"worker {rank} built a different model than worker 0 (differs in: "
                              f"{', '.join(differs)}); every process of the job must run the same script "
                              f"with the same arguments")
