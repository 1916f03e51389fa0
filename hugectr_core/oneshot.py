"""``AllReduceAlgo.OneShot``: the all-reduce that reads the other workers' buffers where they lie (peer
memory), for the devices of one process. ``World`` picks these classes when the solver asks for it; a job
of several processes is refused there (no peer memory between processes).
"""
from __future__ import annotations

from .comm import Comm, HostGroup, NcclComm, _sum_in_order
from .errors import BackendError


class OneShotComm(Comm):
    """``AllReduceAlgo.OneShot`` between the threads of one process (NumPy): every worker reads the others'
    buffers where they lie and sums them in rank order: no copies are exchanged, and the sum has the same
    bits as ``Comm``'s."""

    def allreduce_sum(self, x) -> None:
        if self.size == 1:
            return
        total = _sum_in_order(self.allgather_object(x))  # the live buffers, not snapshots
        self.barrier()  # every worker has read every buffer before any is overwritten
        x[...] = total


class OneShotNcclComm(NcclComm):
    """``AllReduceAlgo.OneShot`` between the GPUs of one process: each GPU pulls every peer's buffer by
    peer copy (``cudaMemcpyPeerAsync``: NVLink or PCIe, no ring, no NCCL) into a staging block, after the
    peer's event, and sums the rows in rank order; it overwrites its own buffer only once every peer has
    copied it (their events). The other collectives stay on NCCL."""

    def __init__(self, group: HostGroup, rank: int, nccl_comm):
        super().__init__(group, rank, nccl_comm)
        self._staging = {}
        self._peers_enabled = False

    def _enable_peer_access(self, device: int, peers) -> None:
        """Direct peer copies (NVLink/PCIe P2P) instead of copies staged through host memory, where the pair
        of devices can."""
        from cupy.cuda import runtime  # noqa: PLC0415 - GPU only

        for peer in {p for p in peers if p != device}:
            if not runtime.deviceCanAccessPeer(device, peer):
                continue
            try:
                runtime.deviceEnablePeerAccess(peer)
            except runtime.CUDARuntimeError as exc:  # CuPy clears the runtime's last error before raising
                if exc.status != runtime.errorPeerAccessAlreadyEnabled:  # NCCL may have enabled it
                    raise
        self._peers_enabled = True

    def _staging_for(self, x):
        import cupy  # noqa: PLC0415 - GPU only

        key = (x.size, x.dtype.str)
        if key not in self._staging:  # one per gradient buffer: the steady state allocates nothing
            self._staging[key] = cupy.empty((self.size, x.size), x.dtype)
        return self._staging[key]

    def allreduce_sum(self, x) -> None:
        if self.size == 1:
            return
        import cupy  # noqa: PLC0415 - GPU only

        if not x.flags.c_contiguous:
            raise BackendError("OneShot all-reduce needs a contiguous buffer")
        stream, device = cupy.cuda.get_current_stream(), cupy.cuda.Device().id
        ready = cupy.cuda.Event(disable_timing=True)
        ready.record(stream)
        peers = self.allgather_object((x, ready, device))
        if not self._peers_enabled:
            self._enable_peer_access(device, [p[2] for p in peers])
        staging = self._staging_for(x)
        for j, (peer_x, peer_ready, peer_device) in enumerate(peers):
            if j == self.rank:
                staging[j] = x.reshape(-1)
                continue
            stream.wait_event(peer_ready)
            cupy.cuda.runtime.memcpyPeerAsync(staging[j].data.ptr, device, peer_x.data.ptr, peer_device,
                                              x.nbytes, stream.ptr)
        copied = cupy.cuda.Event(disable_timing=True)
        copied.record(stream)
        for peer_copied in self.allgather_object(copied):
            stream.wait_event(peer_copied)  # every peer has copied x: it may be overwritten
        flat = x.reshape(-1)
        flat[...] = staging[0]
        for j in range(1, self.size):  # rank order: the same bits on every GPU
            flat += staging[j]
