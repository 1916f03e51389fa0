"""Crash safety: SIGKILL a process at random points while it writes snapshots, many times.

A forked child trains a small model and writes snapshots (``save_params_to_files`` directly, or ``fit``
with ``snapshot=1``) under fresh iteration numbers into one shared folder. Before each save it tells the
parent, through a pipe, the SHA-256 of the state it is about to write; after the save it says "done".
The parent kills it after a random delay, then checks:

* the last snapshot reported done loads intact (dense, opt_dense + .step, sparse folder, opt_sparse) and
  hashes to what the child wrote;
* the snapshot in progress at the kill either fails to load with a CheckpointError or, when every file
  made it, is exactly the announced state: a half-written snapshot is never taken for a good one;
* leftover ``*.tmp-<pid>`` names are never used by the loaders.
"""
import glob
import hashlib
import os
import random
import signal
import time

import numpy as np
import pytest

import pluggy

import hugectr
from hugectr_core.errors import CheckpointError
from hugectr_core.plugins import plugin_manager
from tests.helpers import random_batch
from tests.test_fuzz import build_small, small_model

hookimpl = pluggy.HookimplMarker("hugectr")
KILLS = int(os.environ.get("HUGECTR_CRASH_KILLS", "40"))


def state_hash(model) -> str:
    rt = model.runtime
    h = hashlib.sha256(np.asarray(rt.dense.master, np.float32).tobytes())
    for s in rt.dense.opt_states:
        h.update(np.asarray(s, np.float32).tobytes())
    h.update(str(rt.step).encode())
    for emb in rt.embeddings:
        dump = emb.dump()
        order = np.argsort(dump["key"])
        h.update(dump["key"][order].tobytes() + dump["emb_vector"][order].tobytes())
        for st in emb.dump_optimizer_states():
            h.update(np.asarray(st, np.float32)[order].tobytes())
    return h.hexdigest()


def files_of(prefix, it):
    return (f"{prefix}_dense_{it}.model", f"{prefix}_opt_dense_{it}.model", f"{prefix}0_sparse_{it}.model",
            f"{prefix}0_opt_sparse_{it}.model")


def load(model, prefix, it) -> str:
    """Load one snapshot into a fresh model (loading sparse weights adds keys to a table, never drops them)."""
    model = build_small(small_model(os.path.dirname(prefix)))
    dense, opt, sparse, opt_sparse = files_of(prefix, it)
    model.load_dense_weights(dense)
    model.load_dense_optimizer_states(opt)
    model.load_sparse_weights([sparse])
    model.load_sparse_optimizer_states([opt_sparse])
    return state_hash(model)


def send(fd, text):
    os.write(fd, (text + "\n").encode())


class _Announce:
    """fit mode: announce the state right before fit writes the snapshot (train_step_end comes first)."""

    def __init__(self, fd, base):
        self.fd, self.base = fd, base

    @hookimpl
    def hugectr_train_step_end(self, model, iteration, samples, loss):
        send(self.fd, f"begin {self.base + iteration} {state_hash(model)}")

    @hookimpl
    def hugectr_log(self, model, message):
        if message.startswith("Saved snapshot at iteration"):
            send(self.fd, "done")


def child(fd, model, prefix, base, use_fit, data_folder):
    """Runs in the forked process until killed."""
    if use_fit:  # fit numbers iterations from 1: a per-round prefix folder keeps the names fresh
        plugin_manager().register(_Announce(fd, base))
        model.runtime.step = base
        model.fit(max_iter=10**9, display=0, eval_interval=0, snapshot=1, snapshot_prefix=f"{prefix}_r{base}")
    batch = random_batch(8, dense_dim=4, sparse={"data1": (3, 500)}, seed=base)
    it = base
    while True:
        it += 1
        model.runtime.train_step(batch, 0.01)
        send(fd, f"begin {it} {state_hash(model)}")
        model.save_params_to_files(prefix, it)
        send(fd, "done")


def write_data(folder, n=64):
    rng = np.random.default_rng(0)
    dtype = np.dtype([("label", "<i4", (1,)), ("dense", "<f4", (4,)), ("keys", "<u4", (3,))])
    rec = np.zeros(n, dtype)
    rec["label"] = rng.integers(0, 2, (n, 1))
    rec["dense"] = rng.random((n, 4))
    rec["keys"] = rng.integers(0, 100, (n, 3))
    for name in ("train.bin", "val.bin"):
        rec.tofile(os.path.join(folder, name))


def read_messages(fd) -> list:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks).decode().splitlines()
        chunks.append(chunk)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_sigkill_during_snapshots_never_loses_the_last_good_one(tmp_path, capsys):
    write_data(tmp_path)
    model = build_small(small_model(str(tmp_path)))
    model.solver.repeat_dataset = True
    prefix = str(tmp_path / "snap")
    rng = random.Random(1234)
    good = []          # (prefix, iteration, hash) reported done
    survived = half_written = 0
    base = 0
    for round_ in range(KILLS):
        use_fit = round_ % 3 == 2
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child never returns into pytest
            os.close(read_fd)
            try:
                child(write_fd, model, prefix, base, use_fit, str(tmp_path))
            finally:
                os._exit(1)
        os.close(write_fd)
        time.sleep(rng.uniform(0.02, 0.25))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        lines = read_messages(read_fd)
        os.close(read_fd)
        round_prefix = f"{prefix}_r{base}" if use_fit else prefix
        announced, pending = {}, None
        for line in lines:
            if line.startswith("begin"):
                _, it, digest = line.split()
                pending = (int(it) - (base if use_fit else 0), digest)
                announced[pending[0]] = digest
            elif line == "done" and pending:
                good.append((round_prefix, *pending))
                pending = None
        # the snapshot being written at the kill: a clear CheckpointError, or complete and exact
        if pending is not None:
            try:
                got = load(model, round_prefix, pending[0])
            except CheckpointError:
                half_written += 1
            else:
                assert got == pending[1], f"round {round_}: an incomplete snapshot loaded as a good one"
        # the previous complete snapshot always loads intact
        assert good, "no snapshot completed yet: raise the delay"
        last_prefix, last_it, last_hash = good[-1]
        assert load(model, last_prefix, last_it) == last_hash, f"round {round_}: the last good snapshot is damaged"
        survived += 1
        base += 10_000
    for snap_prefix, it, digest in rng.sample(good, min(10, len(good))):  # older ones stay intact too
        assert load(model, snap_prefix, it) == digest
    leftovers = glob.glob(str(tmp_path / "*.tmp-*"))
    with capsys.disabled():
        print(f"\ncrash safety: {survived} SIGKILLs survived, {len(good)} complete snapshots written (the last after every kill and 10 older ones verified), "
              f"{half_written} half-written snapshots refused, {len(leftovers)} temp files left (never loaded)")
    assert survived == KILLS
