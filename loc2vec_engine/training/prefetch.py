"""Training batches drawn one step ahead in a background thread, so sampling overlaps the model's step.

The numba tile kernels release the GIL (``tiles/cpu.py``), so while the main thread runs the forward and
backward pass of batch k, this thread cuts batch k+1. The batches are the sampler's own sequence: one
thread draws them in order, so a run gives the same batches with or without prefetching.

Resuming needs the sampler state *before the next batch the loop will use*; the sampler itself is
already a batch (or two) further on. So each batch travels with the state its draw left the sampler in,
and ``state_dict()`` returns the one of the batch last taken: the state the next unconsumed batch was
drawn from.

It pays only with a core to spare (``spare_core``): the training loop prefetches by default then, and
samples in line otherwise.
"""

from __future__ import annotations

import os
import queue
import threading

from ..errors import Loc2VecError

THREAD_NAME = "loc2vec-prefetch"
_POLL_S = 0.1  # how often a blocked put / get looks whether it should give up


class DirectFeed:
    """Batches drawn when asked, in the calling thread: the reference that ``Prefetcher`` must equal."""

    def __init__(self, sampler, batch_size: int):
        self.sampler, self.batch_size = sampler, batch_size

    def next(self):
        return self.sampler.sample(self.batch_size)

    def state_dict(self) -> dict:
        return self.sampler.state_dict()

    def close(self) -> None:
        pass


class Prefetcher:
    """``sampler.sample(batch_size)`` run ``depth`` batches ahead in a daemon thread.

    While it runs, nothing else may use ``sampler``'s random state (the thread owns it); ``close()``
    stops and joins the thread. An exception raised while sampling is raised again by ``next()``.
    """

    def __init__(self, sampler, batch_size: int, depth: int = 1):
        self.sampler, self.batch_size = sampler, batch_size
        self._state = sampler.state_dict()  # before any batch: what a checkpoint saves until one is taken
        self._queue: queue.Queue = queue.Queue(maxsize=max(int(depth), 1))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def next(self):
        """The next batch, in the sampler's order."""
        batch, state, error = self._get()
        if error is not None:
            raise error  # the sampler's own exception (Loc2VecError keeps its problem and fix)
        self._state = state
        return batch

    def state_dict(self) -> dict:
        """The sampler state the next unconsumed batch was drawn from (what a resumed run must start with)."""
        return self._state

    def close(self, timeout_s: float = 60.0) -> None:
        """Stop drawing and wait for the thread (at most one sampler call, then it sees the stop)."""
        self._stop.set()
        self._drain()  # unblocks a put waiting on a full queue
        self._thread.join(timeout_s)
        self._drain()  # drop a batch put between the first drain and the stop taking effect

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- the thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                batch = self.sampler.sample(self.batch_size)
                self._put((batch, self.sampler.state_dict(), None))
        except BaseException as e:  # noqa: BLE001 -- handed to the main thread, which raises it
            self._put((None, None, e))

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _get(self):
        while True:
            try:
                return self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise Loc2VecError("a training batch was asked for after the prefetch thread had stopped",
                                       "this is a bug in loc2vec: please report it with the command line") from None

    def _drain(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass


def spare_core(torch_threads: int, processes: int = 1, cores: int | None = None) -> bool:
    """Whether a core is left over for the prefetch thread once every training process's torch threads
    have theirs. Without one, the thread preempts the step's OpenMP team, which waits at barriers for
    its slowest thread, and holds the GIL for the sampler's numpy geometry. Measured on 2 cores with 2
    torch threads, that cost more than sampling in line; with 1 torch thread the prefetched sampling
    was hidden completely (BENCHMARKS.md, "Training: sampling overhead")."""
    cores = cores if cores is not None else usable_cores()
    return cores > torch_threads * max(processes, 1)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (containers, taskset)
    except AttributeError:  # sched_getaffinity is Linux-only
        return os.cpu_count() or 1
