"""hugectr_core.hybrid: the rules that pick the frequent categories of a hybrid embedding."""
import numpy as np
import pytest

import hugectr
from hugectr_core.hybrid import frequent_by_bandwidth, frequent_by_duplicates


def test_duplicate_rule_keeps_categories_likely_to_repeat_in_a_device_batch():
    keys = np.array([1, 2, 3])
    counts = np.array([1000, 10, 1])            # per-sample probabilities 0.1, 0.001, 0.0001
    # a device batch of 64 rows: P(>= 2 occurrences) is ~0.99, ~0.0019, ~0.00002
    assert frequent_by_duplicates(keys, counts, samples=10000, rows=64, p_dup_max=0.001).tolist() == [1, 2]
    assert frequent_by_duplicates(keys, counts, samples=10000, rows=64, p_dup_max=0.01).tolist() == [1]
    assert frequent_by_duplicates(keys, counts, samples=10000, rows=1, p_dup_max=0.0).tolist() == []  # one row: never twice


def test_bandwidth_rule_weighs_all_to_all_traffic_against_the_all_reduce():
    param = hugectr.HybridEmbeddingParam(2, -1, 0.01, max_all_reduce_bandwidth=1.0, max_all_to_all_bandwidth=1.0,
                                         efficiency_bandwidth_ratio=2.0)
    keys, counts = np.array([7, 8, 9]), np.array([50, 30, 10])  # lookups per batch over 10 batches: 5, 3, 1
    # cost to send: lookups * (W-1)/W; to all-reduce: 2.0. W=2: 2.5, 1.5, 0.5 -> only key 7
    assert frequent_by_bandwidth(keys, counts, batches=10, workers=2, param=param).tolist() == [7]
    # W=4: 3.75, 2.25, 0.75 -> keys 7 and 8; one worker sends nothing: no key is worth replicating
    assert frequent_by_bandwidth(keys, counts, batches=10, workers=4, param=param).tolist() == [7, 8]
    assert frequent_by_bandwidth(keys, counts, batches=10, workers=1, param=param).tolist() == []


@pytest.mark.parametrize("bad", [dict(p_dup_max=1.5), dict(max_all_to_all_bandwidth=0.0)])
def test_parameters_are_checked(bad):
    args = dict(max_num_frequent_categories=2, max_num_infrequent_samples=-1, p_dup_max=0.01,
                max_all_reduce_bandwidth=1.3e11, max_all_to_all_bandwidth=1.9e11, efficiency_bandwidth_ratio=1.0)
    args.update(bad)
    with pytest.raises(hugectr.Error):
        hugectr.HybridEmbeddingParam(**args)
