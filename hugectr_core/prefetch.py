"""Ordered, bounded, multi-threaded prefetching.

Thread ``w`` of ``T`` computes positions ``w, w+T, w+2T, ...`` of a sequence and puts them in its own
bounded queue; the consumer takes position ``k`` from queue ``k % T``. The output order is therefore
the sequence order whatever ``T`` is, and at most ``T * depth`` items are ever prefetched.

Example:
    >>> p = OrderedPrefetcher(lambda k: k * k if k < 4 else END, num_threads=3, depth=2)
    >>> [p.get() for _ in range(5)][:4], p.get() is END
    ([0, 1, 4, 9], True)
    >>> p.close()
"""
from __future__ import annotations

import queue
import threading

END = object()  # returned by ``produce`` (and then by ``get`` forever) when the sequence is over
_POLL_S = 0.05  # how often blocked threads look at the stop flag, so close() never hangs


class OrderedPrefetcher:
    """Run ``produce(k)`` for k = 0, 1, ... on worker threads; ``get()`` yields results in k order.

    A worker's exception is re-raised by the ``get()`` that reaches its position (and by every
    later call); ``close()`` stops the threads.

    Args:
        produce: ``k -> item``, or ``END`` when the sequence stops at k.
        num_threads: worker threads.
        depth: items each worker may hold ahead of the consumer.
        name: thread-name prefix (shows up in debuggers and thread dumps).
    """

    def __init__(self, produce, num_threads: int, depth: int, name: str = "hugectr-reader"):
        self._produce = produce
        self._stop = threading.Event()
        self._queues = [queue.Queue(maxsize=max(1, depth)) for _ in range(max(1, num_threads))]
        self._threads = [threading.Thread(target=self._run, args=(w,), name=f"{name}-{w}", daemon=True)
                         for w in range(len(self._queues))]
        self._next = 0
        self._ended = False
        self._error: BaseException | None = None
        for t in self._threads:
            t.start()

    def _run(self, w: int) -> None:
        k = w
        try:
            while not self._stop.is_set():
                item = self._produce(k)
                if not self._put(w, item) or item is END:
                    return
                k += len(self._queues)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, never lost
            self._put(w, _Failure(exc))

    def _put(self, w: int, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queues[w].put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def get(self):
        """The next item in sequence order, or ``END``."""
        if self._error is not None:
            raise self._error
        if self._ended:
            return END
        w = self._next % len(self._queues)
        item = self._take(w)
        if isinstance(item, _Failure):
            self._error = item.exc
            raise item.exc
        if item is END:
            self._ended = True
        else:
            self._next += 1
        return item

    def _take(self, w: int):
        while True:
            try:
                return self._queues[w].get(timeout=_POLL_S)
            except queue.Empty:
                if self._threads[w].is_alive():
                    continue
                try:  # the thread finished: everything it put is already in the queue
                    return self._queues[w].get_nowait()
                except queue.Empty:
                    return _Failure(RuntimeError(f"reader thread {self._threads[w].name} stopped without a result"))

    def close(self) -> None:
        """Stop and join the worker threads; safe to call twice."""
        self._stop.set()
        for q in self._queues:
            while True:
                try:
                    q.get_nowait()
                except queue.Empty:
                    break
        for t in self._threads:
            t.join(timeout=5.0)


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc
