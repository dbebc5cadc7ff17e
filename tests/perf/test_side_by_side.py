"""Jobs side by side (daar.perf.side_by_side): results in job order, each thread's own torch thread count,
errors handed to the caller, one worker = the caller's own thread."""

from __future__ import annotations

import threading
import time

import pytest

from daar.perf.side_by_side import run_side_by_side


def test_results_come_back_in_job_order_and_jobs_overlap():
    started, both = [], threading.Barrier(2, timeout=10)

    def job(i):
        def run():
            started.append(threading.current_thread().name)
            if i < 2:
                both.wait()  # fails (BrokenBarrierError) unless the first two jobs run at the same time
            time.sleep(0.01 * (3 - i))
            return i * 10
        return run

    assert run_side_by_side([job(i) for i in range(4)], workers=2, name="t") == [0, 10, 20, 30]
    assert len(started) == 4 and all(n.startswith("t-") for n in started)


def test_each_thread_gets_the_torch_threads_it_is_given():
    import torch

    seen = run_side_by_side([torch.get_num_threads] * 3, workers=3, threads=2)
    assert seen == [2, 2, 2]
    before = torch.get_num_threads()
    run_side_by_side([torch.get_num_threads] * 2, workers=2, threads=3)
    assert torch.get_num_threads() == before  # the caller's own count is left alone


def test_one_worker_runs_in_the_callers_thread():
    me = threading.current_thread()
    assert run_side_by_side([lambda: threading.current_thread() is me] * 2, workers=1) == [True, True]


def test_the_first_error_reaches_the_caller_and_no_new_job_starts_after_it():
    ran = []

    def bad():
        raise ValueError("chain 1 broke")

    def slow(i):
        def run():
            time.sleep(0.2)
            ran.append(i)
        return run

    with pytest.raises(ValueError, match="chain 1 broke"):
        run_side_by_side([bad, *[slow(i) for i in range(5)]], workers=1)
    assert ran == []  # one after another: nothing after the error
    with pytest.raises(ValueError, match="chain 1 broke"):
        run_side_by_side([bad, *[slow(i) for i in range(5)]], workers=2)
    assert ran in ([], [0])  # the other thread finishes the job it holds, then takes no more
