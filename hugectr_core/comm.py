"""Collectives between the workers of one training job (one worker = one device).

The world is every device of ``vvgpu`` on every host: ``vvgpu[h]`` lists the devices of host ``h``,
and with several hosts the job runs under ``mpirun``/``mpiexec`` with one process per host. Worker
``r`` (0-based, host-major) holds rows ``[r*B/W, (r+1)*B/W)`` of the global batch (formats.md 3.1).

* ``Comm`` (NumPy arrays): every collective is an all-gather of host objects through the
  ``HostGroup`` (threads of this process, then MPI between processes), reduced in rank order, so
  every worker gets bit-identical results whatever the transport.
* ``NcclComm`` (CuPy arrays): NCCL through CuPy for the array collectives; host objects still go
  through the ``HostGroup``. MPI only bootstraps NCCL (the unique id).

A collective that one worker never reaches (it raised, or its process died) fails on the others
after ``HUGECTR_COLLECTIVE_TIMEOUT`` seconds (default 600) instead of hanging forever; under MPI an
uncaught error on one rank aborts the whole job at once (``install_mpi_abort``).

Example (two workers as threads of this process):
    >>> import threading, numpy as np
    >>> group = HostGroup(local_size=2)
    >>> out = [None, None]
    >>> def work(r):
    ...     x = np.full(3, float(r + 1)); Comm(group, r).allreduce_sum(x); out[r] = x
    >>> threads = [threading.Thread(target=work, args=(r,)) for r in range(2)]
    >>> _ = [t.start() for t in threads]; _ = [t.join() for t in threads]
    >>> out[0].tolist(), out[1].tolist()
    ([3.0, 3.0, 3.0], [3.0, 3.0, 3.0])
"""
from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np

from . import backend
from .errors import BackendError, ConfigError, TrainingError

_ABORT_GRACE_S = 1.0
# set by Open MPI, MPICH (Hydra) and PMIx launchers; a plain `srun` without MPI sets none of them
_MPI_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


def collective_timeout() -> float:
    return float(os.environ.get("HUGECTR_COLLECTIVE_TIMEOUT", "600"))


def launched_by_mpi() -> bool:
    """True when this process is one of several started by mpirun/mpiexec (read from the launcher's
    environment, so mpi4py is only imported for real multi-process jobs)."""
    for name in _MPI_SIZE_VARS:
        value = os.environ.get(name)
        if value and value.isdigit() and int(value) > 1:
            return True
    return False


def mpi_world():
    """mpi4py's COMM_WORLD, with a clear error when mpi4py is missing."""
    try:
        from mpi4py import MPI  # noqa: PLC0415 - only multi-process jobs need it
    except ImportError as exc:
        raise BackendError("this process was started by mpirun/mpiexec but mpi4py is not installed: "
                           "pip install 'hugectr-core[mpi]' (mpi4py plus an MPI library)") from exc
    return MPI.COMM_WORLD


def install_mpi_abort(world) -> None:
    """An uncaught exception on one rank aborts every rank (instead of leaving them waiting in a collective)."""
    previous = sys.excepthook

    def abort(kind, value, tb):
        previous(kind, value, tb)
        sys.stderr.write(f"hugectr: rank {world.Get_rank()} failed; aborting all {world.Get_size()} ranks\n")
        sys.stderr.flush()
        time.sleep(_ABORT_GRACE_S)  # let the launcher forward this rank's output before the job is torn down
        world.Abort(1)

    sys.excepthook = abort


class HostGroup:
    """The workers (threads) of this process, plus the other processes through MPI.

    ``allgather_object`` is the one primitive: every worker of the world gets the list of every
    worker's object, in global rank order.

    Args:
        local_size: workers (devices) driven by this process.
        mpi: an mpi4py communicator of the processes (one per host), or None for one process.
        first_rank: global rank of this process's first worker.
    """

    def __init__(self, local_size: int, mpi=None, first_rank: int = 0, world_size: int | None = None):
        self.local_size = local_size
        self.mpi = mpi
        self.first_rank = first_rank
        self.world_size = world_size or local_size
        self._slots: list = [None] * local_size
        self._result = None
        self._barrier = threading.Barrier(local_size)
        self.failed: str | None = None

    def _wait(self, rank: int) -> None:
        try:
            self._barrier.wait(timeout=collective_timeout())
        except threading.BrokenBarrierError:
            why = self.failed or (f"a worker did not reach the collective within {collective_timeout():.0f} s "
                                  f"(HUGECTR_COLLECTIVE_TIMEOUT)")
            raise TrainingError(f"worker {rank}: collective abandoned: {why}") from None

    def abort(self, why: str) -> None:
        """Release every worker waiting in a collective with an error (a worker failed)."""
        self.failed = why
        self._barrier.abort()

    def reset(self) -> None:
        """Make the group usable again once no worker is inside a collective (the caller knows: every
        worker's call has returned), e.g. after an error the user caught."""
        self.failed = None
        self._barrier.reset()

    def allgather_object(self, rank: int, obj) -> list:
        local = rank - self.first_rank
        self._slots[local] = obj
        self._wait(rank)
        if local == 0:
            gathered = list(self._slots)
            if self.mpi is not None:
                gathered = [o for part in self.mpi.allgather(gathered) for o in part]
            self._result = gathered
        self._wait(rank)
        result = self._result
        self._wait(rank)  # nobody refills the slots before everyone has read the result
        return result


class Comm:
    """One worker's view of the world (NumPy arrays; host collectives, reduced in rank order).

    Args:
        group: this process's HostGroup.
        rank: this worker's global rank.
    """

    def __init__(self, group: HostGroup, rank: int):
        self.group = group
        self.rank = rank
        self.size = group.world_size

    def allgather_object(self, obj) -> list:
        if self.size == 1:
            return [obj]
        return self.group.allgather_object(self.rank, obj)

    def barrier(self) -> None:
        self.allgather_object(None)

    # -- array collectives (host arrays) ---------------------------------------------------------
    def allreduce_sum(self, x) -> None:
        """x <- sum over workers of x, in place (same bits on every worker)."""
        if self.size == 1:
            return
        x[...] = _sum_in_order(self.allgather_object(_snapshot(x)))

    def allreduce_sum_many(self, buffers) -> None:
        """Several buffers of one dtype summed in ONE all-reduce (``grouped_all_reduce``): packed into one
        flat array, reduced, unpacked. Each element's sum is the same as reducing its buffer alone."""
        if len(buffers) == 1 or self.size == 1:
            for x in buffers:
                self.allreduce_sum(x)
            return
        dtypes = {str(x.dtype) for x in buffers}
        if len(dtypes) != 1:
            raise TrainingError(f"grouped all-reduce: buffers of several dtypes {sorted(dtypes)}")
        xp = backend.array_module(buffers[0])
        flat = xp.concatenate([x.reshape(-1) for x in buffers])
        self.allreduce_sum(flat)
        start = 0
        for x in buffers:
            x[...] = flat[start:start + x.size].reshape(x.shape)
            start += x.size

    def allgather(self, x):
        """Concatenation over workers of equally shaped x along axis 0."""
        if self.size == 1:
            return x
        return np.concatenate(self.allgather_object(_snapshot(x)), axis=0)

    def reduce_scatter_sum(self, x, out) -> None:
        """out <- part ``rank`` (of ``size`` equal parts along axis 0) of the sum over workers of x."""
        if self.size == 1:
            out[...] = x
            return
        n = x.shape[0] // self.size
        parts = [a[self.rank * n:(self.rank + 1) * n] for a in self.allgather_object(_snapshot(x))]
        out[...] = _sum_in_order(parts)

    def alltoall(self, parts: list, recv_shapes=None) -> list:
        """``parts[d]`` goes to worker d; returns what each worker sent to this one, by source rank.

        ``recv_shapes`` (one per source), when the caller can work them out, spares NCCL a host exchange
        of the shapes; here they are checked against what arrives, so a wrong one fails on the CPU."""
        if self.size == 1:
            received = list(parts)
        else:
            received = [sent[self.rank] for sent in self.allgather_object([_snapshot(p) for p in parts])]
        if recv_shapes is not None:
            got = [tuple(r.shape) for r in received]
            if got != [tuple(s) for s in recv_shapes]:
                raise BackendError(f"worker {self.rank}: all-to-all expected shapes {list(recv_shapes)}, got {got}")
        return received


def _snapshot(x) -> np.ndarray:
    """A private copy to share: workers in threads see each other's objects, and the sender may
    overwrite its buffer (the in-place result, next step's data) while others still read it."""
    return np.array(x, copy=True)


def _sum_in_order(arrays):
    total = np.array(arrays[0], copy=True)
    for a in arrays[1:]:
        total += a
    return total


class NcclComm(Comm):
    """A worker on a GPU: NCCL (through CuPy) for the array collectives, on the current stream.

    Args:
        group, rank: as Comm (host objects still go through the group).
        nccl_comm: this device's ``cupy.cuda.nccl.NcclCommunicator``.
    """

    def __init__(self, group: HostGroup, rank: int, nccl_comm):
        super().__init__(group, rank)
        self.nccl = nccl_comm
        self.aborted = False

    def abort_device_collectives(self) -> None:
        """ncclCommAbort: pending collectives of this communicator end (with an error) instead of waiting
        for a worker that failed; the communicator is unusable afterwards."""
        if self.aborted:
            return
        self.aborted = True
        try:
            self.nccl.abort()
        except Exception:  # noqa: BLE001 - best effort inside another error: that error is the one to report
            pass

    @staticmethod
    def _types(x):
        from cupy.cuda import nccl  # noqa: PLC0415 - GPU only

        kinds = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float16): nccl.NCCL_FLOAT16,
                 np.dtype(np.float64): nccl.NCCL_FLOAT64, np.dtype(np.int64): nccl.NCCL_INT64,
                 np.dtype(np.int32): nccl.NCCL_INT32, np.dtype(np.uint8): nccl.NCCL_UINT8}
        if np.dtype(x.dtype) not in kinds:
            raise BackendError(f"NCCL collective on dtype {x.dtype} is not supported")
        return nccl, kinds[np.dtype(x.dtype)]

    @staticmethod
    def _stream():
        import cupy  # noqa: PLC0415 - GPU only

        return cupy.cuda.get_current_stream().ptr

    def allreduce_sum(self, x) -> None:
        if self.size == 1:
            return
        nccl, kind = self._types(x)
        self.nccl.allReduce(x.data.ptr, x.data.ptr, x.size, kind, nccl.NCCL_SUM, self._stream())

    def allgather(self, x):
        if self.size == 1:
            return x
        import cupy  # noqa: PLC0415 - GPU only

        x = cupy.ascontiguousarray(x)
        out = cupy.empty((x.shape[0] * self.size,) + x.shape[1:], x.dtype)
        _, kind = self._types(x)
        self.nccl.allGather(x.data.ptr, out.data.ptr, x.size, kind, self._stream())
        return out

    def reduce_scatter_sum(self, x, out) -> None:
        if self.size == 1:
            out[...] = x
            return
        nccl, kind = self._types(x)
        self.nccl.reduceScatter(x.data.ptr, out.data.ptr, out.size, kind, nccl.NCCL_SUM, self._stream())

    def alltoall(self, parts: list, recv_shapes=None) -> list:
        if self.size == 1:
            return list(parts)
        import cupy  # noqa: PLC0415 - GPU only

        nccl, kind = self._types(parts[0])
        if recv_shapes is None:  # a host exchange of the shapes (a sync point of every worker)
            shapes = self.allgather_object([tuple(p.shape) for p in parts])
            recv_shapes = [shapes[src][self.rank] for src in range(self.size)]
        received = [cupy.empty(tuple(shape), parts[0].dtype) for shape in recv_shapes]
        stream = self._stream()
        parts = [cupy.ascontiguousarray(p) for p in parts]
        nccl.groupStart()
        for peer in range(self.size):  # both sides know every size: an empty pair is skipped on both
            if parts[peer].size:
                self.nccl.send(parts[peer].data.ptr, parts[peer].size, kind, peer, stream)
            if received[peer].size:
                self.nccl.recv(received[peer].data.ptr, received[peer].size, kind, peer, stream)
        nccl.groupEnd()
        return received


class World:
    """Who this process is in the job: its devices, their global ranks, and a Comm for each.

    Args:
        vvgpu: the solver's device lists, one per host.
        numpy_backend: True for the NumPy backend (host collectives), False for CuPy (NCCL).
    """

    def __init__(self, vvgpu, numpy_backend: bool, all_reduce_algo: str = "NCCL"):
        self.vvgpu = [list(ids) for ids in vvgpu]
        self.all_reduce_algo = all_reduce_algo
        mpi = mpi_world() if launched_by_mpi() else None
        processes = mpi.Get_size() if mpi is not None else 1
        self.host = mpi.Get_rank() if mpi is not None else 0
        if len(self.vvgpu) != processes:
            how = (f"launch it with `mpirun -np {len(self.vvgpu)}` (one process per host)" if processes == 1
                   else f"give vvgpu one device list per process ({processes} lists)")
            raise ConfigError(f"vvgpu={vvgpu} lists {len(self.vvgpu)} host(s) but {processes} process(es) are "
                              f"running; {how}")
        self.devices = self.vvgpu[self.host]
        self.size = sum(len(ids) for ids in self.vvgpu)
        self.first_rank = sum(len(ids) for ids in self.vvgpu[:self.host])
        self.mpi = mpi
        if mpi is not None:
            install_mpi_abort(mpi)
        self.group = HostGroup(len(self.devices), mpi, self.first_rank, self.size)
        self.numpy_backend = numpy_backend
        self._check_all_reduce_algo(processes)
        self.comms = self._make_comms()

    @property
    def ranks(self) -> list:
        return [self.first_rank + i for i in range(len(self.devices))]

    def _check_all_reduce_algo(self, processes: int) -> None:
        if self.all_reduce_algo not in ("NCCL", "OneShot"):
            raise ConfigError(f"all_reduce_algo={self.all_reduce_algo}: use AllReduceAlgo.NCCL or OneShot")
        if self.all_reduce_algo == "OneShot" and processes > 1:
            raise ConfigError(f"all_reduce_algo=OneShot reads the other devices' buffers directly (peer memory), "
                              f"so one process must drive every device of the job (vvgpu=[[0, 1, ...]] on one "
                              f"host); this job runs {processes} processes: use AllReduceAlgo.NCCL")

    def _make_comms(self) -> list:
        if not self.numpy_backend:
            self._check_devices()
        if self.all_reduce_algo == "OneShot":
            from .oneshot import OneShotComm as host_cls, OneShotNcclComm as device_cls  # noqa: PLC0415
        else:
            host_cls, device_cls = Comm, NcclComm
        if self.numpy_backend or self.size == 1:
            return [host_cls(self.group, r) for r in self.ranks]
        return self._nccl_comms(device_cls)

    def _check_devices(self) -> None:
        import cupy  # noqa: PLC0415 - GPU only

        count = cupy.cuda.runtime.getDeviceCount()
        missing = [d for d in self.devices if not 0 <= d < count]
        if missing:
            raise ConfigError(f"vvgpu={self.vvgpu}: GPU id(s) {missing} do not exist on host {self.host} "
                              f"({count} GPU(s): ids 0..{count - 1})")
        if len(set(self.devices)) != len(self.devices):
            raise ConfigError(f"vvgpu={self.vvgpu}: host {self.host} lists a GPU twice")

    def _nccl_comms(self, cls) -> list:
        import cupy  # noqa: PLC0415 - GPU only
        from cupy.cuda import nccl  # noqa: PLC0415

        uid = nccl.get_unique_id() if self.host == 0 else None
        if self.mpi is not None:
            uid = self.mpi.bcast(uid, root=0)
        comms = []
        nccl.groupStart()
        for device, rank in zip(self.devices, self.ranks):
            with cupy.cuda.Device(device):
                comms.append(nccl.NcclCommunicator(self.size, uid, rank))
        nccl.groupEnd()
        return [cls(self.group, rank, c) for rank, c in zip(self.ranks, comms)]
