"""DCN, DLRM and Wide&Deep written as HugeCTR scripts train on learnable data to the AUC of their
plain-PyTorch twins (tests/reference/torch_models.py; recorded in recorded_auc.json)."""
import json
from pathlib import Path

import numpy as np
import pytest

import examples.dcn_config as DCN_C
import examples.dcn_learnable as dcn_script
from hugectr_core.backend import has_cupy_gpu
from tests import e2e_models as E

RECORD = json.loads((Path(__file__).parent / "reference" / "recorded_auc.json").read_text())
CASES = {
    "dcn": (dcn_script.generate, lambda d, dev: dcn_script.build_model(d, dev), DCN_C.ITERS),
    "dlrm": (E.generate_dlrm, E.build_dlrm, E.DLRM["iters"]),
    "wdl": (E.generate_wdl, E.build_wdl, E.WDL["iters"]),
}


def train(name, data_dir, device):
    generate, build, iters = CASES[name]
    info = generate(str(data_dir))
    model = build(str(data_dir), device)
    model.compile()
    metrics = model.fit(max_iter=iters, display=iters // 4, eval_interval=iters, snapshot=0)
    return metrics, info, model


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_pytorch_auc_on_cpu(name, tmp_path):
    metrics, info, model = train(name, tmp_path, "cpu")
    ours, torch_auc = metrics["AUC"], RECORD[name]["auc_mean"]
    assert info["ceiling_auc"] == pytest.approx(RECORD[name]["ceiling_auc"], abs=1e-9)  # same data as recorded
    assert abs(ours - torch_auc) <= 0.01, f"{name}: our AUC {ours:.4f}, PyTorch {torch_auc:.4f}"
    assert np.isfinite(model.get_current_loss())


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(CASES))
def test_gpu_reaches_the_cpu_auc(name, tmp_path):
    assert has_cupy_gpu()
    cpu, _, _ = train(name, tmp_path / "cpu", "cpu")
    gpu, _, model = train(name, tmp_path / "gpu", "gpu")
    assert abs(gpu["AUC"] - cpu["AUC"]) <= 0.005, f"{name}: GPU {gpu['AUC']:.4f} vs CPU {cpu['AUC']:.4f}"
    assert model.runtime.xp.__name__ == "cupy"


SEEDS = (2026, 7, 99)  # one run's AUC moves by a few 1e-3 with the seed; the mean over three does not


def mean_dlrm_auc(data_dir, device, extra) -> float:
    aucs = []
    for seed in SEEDS:
        model = E.build_dlrm(str(data_dir), device, **extra)
        model.solver.seed = seed
        model.compile()
        aucs.append(model.fit(max_iter=E.DLRM["iters"], display=0, eval_interval=E.DLRM["iters"], snapshot=0)["AUC"])
    return float(np.mean(aucs))


@pytest.mark.gpu
@pytest.mark.parametrize("flags", [{"use_mixed_precision": True, "scaler": 1024.0}, {"enable_tf32_compute": True}],
                         ids=["mixed", "tf32"])
def test_fast_precisions_reach_the_numpy_fp32_auc(flags, tmp_path):
    """Issue 7: speed is never bought with wrong numerics. The same steps on the same learnable data
    reach the fp32 NumPy reference's AUC within 0.003 (mean of three seeds each)."""
    E.generate_dlrm(str(tmp_path))
    reference = mean_dlrm_auc(tmp_path, "cpu", {})
    fast = mean_dlrm_auc(tmp_path, "gpu", flags)
    print(f"DLRM AUC, mean of seeds {SEEDS}: NumPy fp32 {reference:.4f}, GPU {flags}: {fast:.4f}")
    assert abs(fast - reference) <= 0.003
