"""Plain-PyTorch twins of the DCN, DLRM and Wide&Deep that the end-to-end tests train with hugectr.

    python tests/reference/torch_models.py --data ./data/ref [--record tests/reference/recorded_auc.json]

Each twin reads the same generated files (RawAsync: int32 label, float32 dense, uint32 keys that carry
slot offsets; Parquet: per-slot keys plus slot_size_array offsets), trains the same graph with the same
hyper-parameters and batch order (Adam; torch's dense Adam equals HugeCTR's Update_t.Global) and reports
AUC on the whole eval set, averaged over seeds. CI compares our AUC with the recorded numbers.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", ".."), os.path.join(HERE, "..", "..", "examples")]
import dcn_config as DCN_C  # noqa: E402
from tests import e2e_models as E  # noqa: E402
from hugectr_core.metrics import auc  # noqa: E402


def load_raw(path, n_slots):
    rec = np.dtype([("label", "<i4"), ("dense", "<f4", (E.DENSE,)), ("keys", "<u4", (n_slots,))])
    data = np.fromfile(path, dtype=rec)
    return (torch.from_numpy(data["label"].astype(np.float32)), torch.from_numpy(data["dense"].copy()),
            torch.from_numpy(data["keys"].astype(np.int64)))


def load_parquet(file_list, slot_sizes):
    import pyarrow.parquet as pq

    with open(file_list) as f:
        paths = [ln.strip() for ln in f.read().split("\n")[1:] if ln.strip()]
    tables = [pq.read_table(p) for p in paths]
    with open(os.path.join(os.path.dirname(paths[0]), "_metadata.json")) as f:
        meta = json.load(f)
    get = lambda name: np.concatenate([t.column(name).to_numpy() for t in tables])  # noqa: E731
    label = get(meta["labels"][0]["col_name"]).astype(np.float32)
    dense = np.stack([get(c["col_name"]) for c in meta["conts"]], 1).astype(np.float32)
    cat = [c["col_name"] for c in meta["cats"]]
    offsets = np.concatenate([[0], np.cumsum(slot_sizes)[:-1]])
    keys = np.stack([get(c).astype(np.int64) for c in cat], 1) + offsets
    return torch.from_numpy(label), torch.from_numpy(dense), torch.from_numpy(keys)


def embedding(rows, dim):
    emb = nn.Embedding(rows, dim)
    nn.init.uniform_(emb.weight, -0.05, 0.05)
    return emb


def mlp(sizes, last_relu=True):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*(layers if last_relu else layers[:-1]))


class DCN(nn.Module):
    def __init__(self):
        super().__init__()
        C = DCN_C
        width = len(C.SLOT_SIZES) * C.VEC + C.DENSE_DIM
        self.emb = embedding(sum(C.SLOT_SIZES), C.VEC)
        self.cross_w = nn.ParameterList([nn.Parameter(torch.randn(width) * (1 / width) ** 0.5)
                                         for _ in range(C.CROSS_LAYERS)])
        self.cross_b = nn.ParameterList([nn.Parameter(torch.zeros(width)) for _ in range(C.CROSS_LAYERS)])
        self.deep = nn.Sequential(nn.Linear(width, C.HIDDEN), nn.ReLU(), nn.Dropout(C.DROPOUT),
                                  nn.Linear(C.HIDDEN, C.HIDDEN), nn.ReLU(), nn.Dropout(C.DROPOUT))
        self.out = nn.Linear(C.HIDDEN + width, 1)

    def forward(self, dense, keys):
        x0 = torch.cat([self.emb(keys).flatten(1), dense], 1)
        x = x0
        for w, b in zip(self.cross_w, self.cross_b):
            x = x0 * (x @ w).unsqueeze(1) + b + x
        return self.out(torch.cat([self.deep(x0), x], 1)).squeeze(1)


class DLRM(nn.Module):
    def __init__(self):
        super().__init__()
        c = E.DLRM
        self.emb = embedding(sum(c["slots"]), c["vec"])
        self.bottom = mlp([E.DENSE] + c["bottom"])
        n = len(c["slots"]) + 1
        self.li, self.lj = torch.tril_indices(n, n, offset=-1)
        self.top = mlp([c["vec"] + n * (n - 1) // 2 + 1] + c["top"], last_relu=False)

    def forward(self, dense, keys):
        x = self.bottom(dense)
        t = torch.cat([x.unsqueeze(1), self.emb(keys)], 1)
        z = torch.bmm(t, t.transpose(1, 2))[:, self.li, self.lj]
        pad = torch.zeros(x.shape[0], 1)
        return self.top(torch.cat([x, z, pad], 1)).squeeze(1)


class WDL(nn.Module):
    def __init__(self):
        super().__init__()
        c = E.WDL
        self.n_wide = len(c["wide_slots"])
        self.wide = embedding(sum(c["wide_slots"] + c["deep_slots"]), 1)
        self.deep_emb = embedding(sum(c["wide_slots"] + c["deep_slots"]), c["deep_vec"])
        width = len(c["deep_slots"]) * c["deep_vec"] + E.DENSE
        h = c["hidden"]
        self.deep = nn.Sequential(nn.Linear(width, h), nn.ReLU(), nn.Dropout(c["dropout"]),
                                  nn.Linear(h, h), nn.ReLU(), nn.Dropout(c["dropout"]), nn.Linear(h, 1))

    def forward(self, dense, keys):
        wide = self.wide(keys[:, :self.n_wide]).sum((1, 2))
        deep = torch.cat([self.deep_emb(keys[:, self.n_wide:]).flatten(1), dense], 1)
        return self.deep(deep).squeeze(1) + wide


def train_once(model_cls, data, batch, iters, lr, seed):
    torch.manual_seed(seed)
    (y, dense, keys), (ey, edense, ekeys) = data
    model = model_cls()
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-7)
    lossf = nn.BCEWithLogitsLoss()
    n_batches = y.shape[0] // batch
    for it in range(iters):
        s = slice((it % n_batches) * batch, (it % n_batches + 1) * batch)
        opt.zero_grad()
        lossf(model(dense[s], keys[s]), y[s]).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = torch.sigmoid(model(edense, ekeys)).numpy()
    return auc(pred.astype(np.float64), ey.numpy().astype(np.float64))


def main():
    import examples.dcn_learnable as dcn_script

    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="./data/ref")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--record")
    args = parser.parse_args()
    d = args.data
    dcn_info = dcn_script.generate(f"{d}/dcn")
    dlrm_info = E.generate_dlrm(f"{d}/dlrm")
    wdl_info = E.generate_wdl(f"{d}/wdl")
    n_dcn = len(DCN_C.SLOT_SIZES)
    wdl_slots = E.WDL["wide_slots"] + E.WDL["deep_slots"]
    jobs = {
        "dcn": (DCN, (load_raw(f"{d}/dcn/train.bin", n_dcn), load_raw(f"{d}/dcn/val.bin", n_dcn)),
                DCN_C.BATCH, DCN_C.ITERS, DCN_C.LR, dcn_info),
        "dlrm": (DLRM, (load_raw(f"{d}/dlrm/train.bin", 26), load_raw(f"{d}/dlrm/val.bin", 26)),
                 E.DLRM["batch"], E.DLRM["iters"], E.DLRM["lr"], dlrm_info),
        "wdl": (WDL, (load_parquet(f"{d}/wdl/file_list.txt", wdl_slots),
                      load_parquet(f"{d}/wdl/file_list_test.txt", wdl_slots)),
                E.WDL["batch"], E.WDL["iters"], E.WDL["lr"], wdl_info),
    }
    result = {"torch": torch.__version__, "seeds": args.seeds}
    for name, (cls, data, batch, iters, lr, info) in jobs.items():
        aucs = [train_once(cls, data, batch, iters, lr, s) for s in range(args.seeds)]
        result[name] = {"auc_mean": float(np.mean(aucs)), "aucs": aucs, "ceiling_auc": info.get("ceiling_auc")}
        print(name, result[name], flush=True)
    if args.record:
        with open(args.record, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
