"""The DCN of examples/dcn_learnable.py written in plain PyTorch: the reference our AUC is held to.

    python tests/reference/torch_dcn.py --data ./data/dcn [--record tests/reference/dcn_torch_auc.json]

Reads the same RawAsync files (int32 label, float32 dense, uint32 keys that already carry slot
offsets), trains the same graph with the same hyper-parameters and batch order (Adam, global
update of the embedding as torch's dense Adam does), and evaluates AUC on the whole eval file.
Run it where PyTorch is installed; CI compares against the recorded AUC instead.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples"))
import dcn_config as C  # noqa: E402


def load(path):
    n_slots = len(C.SLOT_SIZES)
    rec = np.dtype([("label", "<i4"), ("dense", "<f4", (C.DENSE_DIM,)), ("keys", "<u4", (n_slots,))])
    data = np.fromfile(path, dtype=rec)
    return (torch.from_numpy(data["label"].astype(np.float32)), torch.from_numpy(data["dense"].copy()),
            torch.from_numpy(data["keys"].astype(np.int64)))


class DCN(nn.Module):
    def __init__(self):
        super().__init__()
        n_slots, width = len(C.SLOT_SIZES), len(C.SLOT_SIZES) * C.VEC + C.DENSE_DIM
        self.emb = nn.Embedding(sum(C.SLOT_SIZES), C.VEC)
        nn.init.uniform_(self.emb.weight, -0.05, 0.05)
        self.cross_w = nn.ParameterList([nn.Parameter(torch.randn(width) * (1 / width) ** 0.5)
                                         for _ in range(C.CROSS_LAYERS)])
        self.cross_b = nn.ParameterList([nn.Parameter(torch.zeros(width)) for _ in range(C.CROSS_LAYERS)])
        self.deep = nn.Sequential(nn.Linear(width, C.HIDDEN), nn.ReLU(), nn.Dropout(C.DROPOUT),
                                  nn.Linear(C.HIDDEN, C.HIDDEN), nn.ReLU(), nn.Dropout(C.DROPOUT))
        self.out = nn.Linear(C.HIDDEN + width, 1)
        self.n_slots = n_slots

    def forward(self, dense, keys):
        x0 = torch.cat([self.emb(keys).reshape(keys.shape[0], -1), dense], 1)
        x = x0
        for w, b in zip(self.cross_w, self.cross_b):
            x = x0 * (x @ w).unsqueeze(1) + b + x
        return self.out(torch.cat([self.deep(x0), x], 1)).squeeze(1)


def auc(pred, label):
    order = np.argsort(-pred, kind="mergesort")
    pred, label = pred[order], label[order]
    tp, fp = np.cumsum(label), np.cumsum(1 - label)
    last = np.r_[pred[1:] != pred[:-1], True]
    tp, fp = np.r_[0, tp[last]], np.r_[0, fp[last]]
    return float(np.trapezoid(tp / tp[-1], fp / fp[-1]))


def train_once(data_dir, seed):
    torch.manual_seed(seed)
    y, dense, keys = load(f"{data_dir}/train.bin")
    model = DCN()
    opt = torch.optim.Adam(model.parameters(), lr=C.LR, betas=(0.9, 0.999), eps=1e-7)
    lossf = nn.BCEWithLogitsLoss()
    n_batches = y.shape[0] // C.BATCH
    for it in range(C.ITERS):
        b = it % n_batches
        s = slice(b * C.BATCH, (b + 1) * C.BATCH)
        opt.zero_grad()
        loss = lossf(model(dense[s], keys[s]), y[s])
        loss.backward()
        opt.step()
    model.eval()
    ey, edense, ekeys = load(f"{data_dir}/val.bin")
    with torch.no_grad():
        pred = torch.sigmoid(model(edense, ekeys)).numpy()
    return auc(pred.astype(np.float64), ey.numpy().astype(np.float64))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="./data/dcn")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--record")
    args = parser.parse_args()
    aucs = [train_once(args.data, s) for s in range(args.seeds)]
    result = {"auc_mean": float(np.mean(aucs)), "aucs": aucs, "torch": torch.__version__,
              "config": {k: getattr(C, k) for k in dir(C) if k.isupper()}}
    print(json.dumps(result, indent=2))
    if args.record:
        with open(args.record, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
