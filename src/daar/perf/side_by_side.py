"""Independent jobs side by side on the CPU, each in its own Python thread with its own intra-op threads.

Why: on 2 CPU cores a decode step's matrix products are small (tens of rows), and torch splitting one of
them over two OpenMP threads reached 51 GFLOP/s where two such products on one thread each reached 79
(README, Generation: "The synthesis chains side by side"). Jobs that do not depend on each other (the
synthesis chains; the head ensemble's stacks, daar.method.mlp) therefore run one per CPU instead of one
after another on all of them; torch's kernels release the GIL, so Python threads are enough and the
model's weights are shared.

Threads are daemons and the caller waits in short joins, so Ctrl-C stops the run at once instead of
waiting for every job to finish (the synthesis' attempt logs make an interrupted chain resumable).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def run_side_by_side(jobs: Sequence[Callable[[], T]], workers: int, threads: int | None = None,
                     name: str = "daar-job") -> list[T]:
    """Each job's result, in order. `workers` jobs run at once (1: one after another in this thread),
    each thread with `threads` torch intra-op threads (default: this thread's count split evenly).
    The first job error is raised here once every running job has stopped."""
    import torch

    workers = max(1, min(workers, len(jobs)))
    if workers == 1:
        return [job() for job in jobs]
    if threads is None:
        threads = max(1, torch.get_num_threads() // workers)
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []
    lock = threading.Lock()
    queue = list(range(len(jobs)))

    def worker() -> None:
        # torch's thread count is per thread and a new thread starts at the process default: set it here
        torch.set_num_threads(threads)
        while True:
            with lock:
                if errors or not queue:
                    return
                i = queue.pop(0)
            try:
                results[i] = jobs[i]()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                with lock:
                    errors.append(exc)
                return

    pool = [threading.Thread(target=worker, name=f"{name}-{w}", daemon=True) for w in range(workers)]
    for t in pool:
        t.start()
    for t in pool:
        while t.is_alive():
            t.join(timeout=0.5)
    if errors:
        raise errors[0]
    return results
