"""The sandbox's own guarantees: what the program sees, its limits, the verdict rule, and the refusal
when no OS sandbox is usable (simulated with DAAR_BWRAP pointing at a missing binary)."""

from __future__ import annotations

import pytest

from daar.evaluate import code, sandbox
from daar.evaluate.sandbox import SandboxUnavailable, run_program

needs_bwrap = pytest.mark.skipif(sandbox.isolation_problem() is not None,
                                 reason=f"no usable bubblewrap here: {sandbox.isolation_problem()}")
PROBLEM = {"task_id": "Toy/0", "entry_point": "add", "prompt": 'def add(a, b):\n    """Add."""\n',
           "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n"}


@needs_bwrap
def test_the_program_sees_an_empty_read_only_world(tmp_path, monkeypatch):
    monkeypatch.setenv("DAAR_PARENT_SECRET", "s3cret")
    probe = ("import os\n"
             "assert sorted(os.environ) == ['HOME', 'LANG', 'OMP_NUM_THREADS', 'PATH', 'PWD', 'PYTHONDONTWRITEBYTECODE', "
             "'PYTHONHASHSEED', 'TMPDIR'], sorted(os.environ)\n"
             "assert not os.path.exists('/work') and not os.path.exists('/etc'), os.listdir('/')\n"
             f"assert not os.path.exists({str(tmp_path)!r})\n"
             "assert os.getuid() != 0 and os.getcwd() == '/tmp/work'\n"
             "status = open('/proc/self/status').read()\n"
             "assert 'CapEff:\\t0000000000000000' in status and 'NoNewPrivs:\\t1' in status\n"
             "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
             "assert len(pids) <= 4, pids\n"  # bwrap's init, the harness, this program (+ a race)
             "try:\n    open('/usr/x', 'w')\nexcept OSError:\n    pass\nelse:\n    raise AssertionError('rw /usr')\n"
             "open('scratch.txt', 'w').write('the work folder is writable')\n")
    result = run_program(probe, timeout=10)
    assert result.passed, result
    assert result.isolation == "bwrap"


@needs_bwrap
def test_limits_and_the_verdict_rule():
    assert run_program("assert 1 + 1 == 2", timeout=5).passed
    assert "AssertionError" in run_program("assert 1 + 1 == 3", timeout=5).detail
    assert "SyntaxError" in run_program("def f(:\n", timeout=5).detail
    assert "MemoryError" in run_program("x = bytearray(4 << 30)", timeout=5, memory_mb=256).detail
    thread = run_program("import threading\nthreading.Thread(target=print).start()", timeout=5)
    assert "can't start new thread" in thread.detail  # nproc = 1: no threads either
    big = run_program("open('big', 'wb').write(bytes(100 << 20))", timeout=10, memory_mb=1024)
    assert not big.passed and "too large" in big.detail  # RLIMIT_FSIZE (and the 64 MiB tmpfs behind it)
    cpu = run_program("import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n",
                      timeout=1)
    assert cpu.status in {"timeout", "failed"} and cpu.seconds < 5
    assert run_program("import os\nos._exit(0)", timeout=5).detail == "exited with status 0 before the tests finished"
    assert run_program("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)", timeout=5).detail == \
        "killed by SIGTERM"


def test_missing_bwrap_refuses_with_how_to_fix(monkeypatch, tmp_path):
    monkeypatch.setenv(sandbox.BWRAP_ENV, str(tmp_path / "no-such-bwrap"))
    assert "no-such-bwrap" in sandbox.isolation_problem()
    with pytest.raises(SandboxUnavailable) as err:
        run_program("assert True", timeout=5)
    message = str(err.value)
    assert "apt-get install bubblewrap" in message and "--allow-unsandboxed-code" in message
    with pytest.raises(SandboxUnavailable):
        code.score_humaneval(PROBLEM, ["\n    return a + b\n"], timeout=5)


def test_allow_unsandboxed_runs_the_same_harness_without_isolation(monkeypatch, tmp_path):
    monkeypatch.setenv(sandbox.BWRAP_ENV, str(tmp_path / "no-such-bwrap"))
    ok = run_program("assert 1 + 1 == 2", timeout=5, allow_unsandboxed=True)
    assert ok.passed and ok.isolation == "none"
    assert not run_program("import sys\nsys.exit(0)", timeout=5, allow_unsandboxed=True).passed
    assert code.score_humaneval(PROBLEM, ["\n    return a + b\n"], timeout=5, allow_unsandboxed=True) == {"pass@1": 1.0}


def test_a_broken_bwrap_is_detected_not_trusted(monkeypatch, tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: Creating new namespace failed: Operation not permitted' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv(sandbox.BWRAP_ENV, str(fake))
    problem = sandbox.isolation_problem()
    assert problem and "Operation not permitted" in problem
