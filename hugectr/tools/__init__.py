"""``hugectr.tools``: the synthetic data generator (HugeCTR's Data Generator API).

Example:
    >>> from hugectr.tools import DataGeneratorParams
    >>> DataGeneratorParams("RawAsync", 1, 13, 2, False, "t.bin", "v.bin", [10, 10]).hotness
    (1, 1)
"""
from hugectr_core.datagen import DataGenerator, DataGeneratorParams, sample_keys
from hugectr_core.learnable import HiddenModel
from hugectr_core.metrics import auc as roc_auc

__all__ = ["DataGenerator", "DataGeneratorParams", "HiddenModel", "roc_auc", "sample_keys"]
