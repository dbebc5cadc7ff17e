"""A corpus of hostile HumanEval completions: every one must fail, safely, and leave nothing behind.

Each completion targets the toy problem `add(a, b)`. Attacks on the host are written so that the
program *passes* when the attack works (it returns the right answer once the attack succeeded) and
fails when the sandbox stops it; forgeries return a wrong answer and try to claim a pass anyway.
After each run the test looks for what the attack would leave: files in a folder outside the
sandbox, a process still alive (found by the name it gives itself), bytes at a 127.0.0.1
listener. The same corpus measured the sandbox before bubblewrap (see the sandbox README notes).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from daar.evaluate import code, sandbox

PROBLEM = {"task_id": "Toy/0", "entry_point": "add", "daar_row": 0,
           "prompt": 'def add(a, b):\n    """Add two numbers."""\n',
           "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"}
SECRET_ENV = "DAAR_TEST_PARENT_SECRET"


@dataclass(frozen=True)
class Target:
    """What the attacks aim at: all of it lives outside the sandbox."""

    outside: str  # a writable folder of the host
    secret_file: str
    secret_value: str  # in the secret file and in the parent's environment
    project_file: str
    port: int  # a 127.0.0.1 listener of the test
    host_pid: int  # the process that runs the sandbox
    token: str  # survivor processes name themselves sv<token>


OK = "\n    return a + b\n\n"
WRONG = "\n    return a - b\n\n"


def _host_attacks(t: Target) -> dict[str, str]:
    out = t.outside
    survivor = (f"import os, posix\npid = posix.fork()\nif pid == 0:\n    posix.setsid()\n"
                f"    posix.execv('/bin/sh', ['sh', '-c', 'sleep 3; echo x > {out}/survivor', 'sv{t.token}'])\n")
    environ = ("import os\nfound = False\nfor p in os.listdir('/proc'):\n    try:\n"
               f"        found |= {t.secret_value.encode()!r} in open('/proc/' + p + '/environ', 'rb').read()\n"
               "    except OSError:\n        pass\nassert found\n")
    return {
        "write-outside": OK + f"open({out + '/written'!r}, 'w').write('x')\n",
        "read-secret-file": OK + f"assert {t.secret_value!r} in open({t.secret_file!r}).read()\n",
        "read-project-file": OK + f"assert open({t.project_file!r}).read()\n",
        "fork": OK + (f"import posix\npid = posix.fork()\nif pid == 0:\n    open({out + '/forked'!r}, 'w').write('x')\n"
                      "    posix._exit(0)\nposix.waitpid(pid, 0)\n"),
        "posix-spawn": OK + (f"import os\npid = os.posix_spawn('/bin/sh', ['sh', '-c', 'echo x > {out}/spawned'], {{}})\n"
                             "os.waitpid(pid, 0)\n"),
        "fork-many": OK + ("import posix, time\nfor _ in range(32):\n    if posix.fork() == 0:\n"
                           "        time.sleep(0.5)\n        posix._exit(0)\n"),
        "setsid-survivor": OK + survivor,
        "signal-parent": OK + f"import os, posix\nassert os.getppid() == {t.host_pid}\nposix.kill(os.getppid(), 0)\n",
        "socket-127.0.0.1": OK + ("import _socket\ns = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)\n"
                                  f"s.settimeout(3)\ns.connect(('127.0.0.1', {t.port}))\ns.send(b'{t.token}')\n"),
        "parent-environ": OK + environ,
        "memory-bomb": OK + "x = bytearray(16 << 30)\n",
        "memory-creep": OK + "x = []\nwhile True:\n    x.append(bytearray(64 << 20))\n",
        "disk-fill": OK + ("f = open('big', 'wb')\n"
                           "for _ in range(64):\n    f.write(bytes(64 << 20))\nf.close()\n"),
        "infinite-loop": OK + "while True:\n    pass\n",
    }


def _forgeries(t: Target) -> dict[str, str]:
    old_protocol = ("import sys\ng = vars(sys.modules['__main__'])\nprint('DAAR-PASS', g.get('nonce'))\n"
                    "g['report'].write('DAAR-PASS %s\\n' % g['nonce'])\ng['report'].flush()\n")
    fd_scan = ("import os\nfor fd in range(3, 256):\n    for msg in (b'DAAR-PASS\\n', b'PASS\\n', b'DONE\\n', b'passed\\n',"
               " b'{\"status\": \"passed\"}\\n'):\n        try:\n            os.write(fd, msg)\n        except OSError:\n"
               "            pass\n")
    hooks = ("import atexit, os, sys, threading\nsys.excepthook = lambda *a: os._exit(0)\n"
             "threading.excepthook = lambda *a: os._exit(0)\natexit.register(lambda: os._exit(0))\n"
             "os._exit = sys.exit = lambda *a: None\n")
    return {
        "print-marker": WRONG + "print('DAAR-PASS')\nprint('passed')\n",
        "old-nonce-forgery": WRONG + old_protocol,
        "fd-scan-forgery": WRONG + fd_scan,
        "sys-exit-early": WRONG + "import sys\nsys.exit(0)\n",
        "os-exit-early": WRONG + "import os\nos._exit(0)\n",
        "raise-systemexit": WRONG + "raise SystemExit(0)\n",
        "exit-inside-check": "\n    import os\n    os._exit(0)\n",
        "kill-self": WRONG + "import os, posix, signal\nposix.kill(os.getpid(), signal.SIGKILL)\n",
        "patched-exit-hooks": WRONG + hooks,
        "kill-harness": OK + (f"import os, posix, signal\nif os.getppid() != {t.host_pid}:\n"
                              "    posix.kill(os.getppid(), signal.SIGKILL)\n"),
    }


def hostile_corpus(t: Target) -> dict[str, str]:
    """name -> completion of PROBLEM; every one must fail."""
    return {**_host_attacks(t), **_forgeries(t)}


def program(completion: str) -> str:
    return code.humaneval_program(PROBLEM, completion)


def survivors(token: str) -> list[int]:
    """Pids of processes named sv<token> (comm, cut at 15 characters) or with it in their command line."""
    name = f"sv{token}"
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            if comm == name[:15] or name.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.fixture
def target(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    value = "TOPSECRET-" + secrets.token_hex(6)
    secret = tmp_path / "secret.txt"
    secret.write_text(value)
    # /proc/PID/environ shows the environment a process started with: a host process holds the secret
    holder = subprocess.Popen(["sleep", "120"], env={**os.environ, SECRET_ENV: value})
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    project_file = Path(code.__file__).resolve()
    yield Target(str(outside), str(secret), value, str(project_file), listener.getsockname()[1], os.getpid(),
                 secrets.token_hex(6)), listener
    listener.close()
    holder.kill()
    holder.wait()


def _accepted(listener: socket.socket) -> bytes:
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return b""
    with conn:
        conn.settimeout(1)
        try:
            return conn.recv(64) or b"connected"
        except OSError:
            return b"connected"


needs_bwrap = pytest.mark.skipif(sandbox.isolation_problem() is not None,
                                 reason=f"no usable bubblewrap here: {sandbox.isolation_problem()}")


@needs_bwrap
@pytest.mark.parametrize("name", sorted(hostile_corpus(Target("/o", "/s", "v", "/p", 1, 1, "t"))))
def test_hostile_completion_fails_and_leaves_nothing(name, target):
    t, listener = target
    start = time.perf_counter()
    result = sandbox.run_program(program(hostile_corpus(t)[name]), timeout=3, memory_mb=512)
    assert not result.passed, f"{name} passed: {result}"
    assert time.perf_counter() - start < 15
    if name == "setsid-survivor":
        time.sleep(3.5)  # the survivor would write its file 3 s after it started
    assert sorted(os.listdir(t.outside)) == [], f"{name} wrote outside the sandbox"
    assert survivors(t.token) == [], f"{name} left a process running"
    assert _accepted(listener) == b"", f"{name} reached the 127.0.0.1 listener"
    assert os.getpid() == t.host_pid  # and we are still alive


@needs_bwrap
def test_fork_bomb_is_contained(target):
    """A real fork bomb: the process limit stops the first fork; nothing is left running."""
    t, _ = target
    bomb = OK + (f"import os\ntry:\n    open('/proc/self/comm', 'w').write('sv{t.token}')\nexcept OSError:\n    pass\n"
                 "while True:\n    os.fork()\n")
    start = time.perf_counter()
    result = sandbox.run_program(program(bomb), timeout=3)
    assert not result.passed and time.perf_counter() - start < 10
    assert "BlockingIOError" in result.detail or result.status == "timeout", result
    assert survivors(t.token) == []


@needs_bwrap
def test_correct_answer_still_passes_beside_the_corpus():
    """The corpus fails because of the attacks, not because the sandbox fails everything."""
    assert sandbox.run_program(program(OK), timeout=5).passed
    assert not sandbox.run_program(program(WRONG), timeout=5).passed


@needs_bwrap
def test_score_code_on_the_whole_corpus_passes_none_and_leaves_nothing(target, tmp_path, capsys):
    from daar import cli

    t, listener = target
    data = tmp_path / "data"
    data.mkdir()
    (data / "humaneval.jsonl").write_text(json.dumps({**PROBLEM, "canonical_solution": OK}) + "\n")
    corpus = hostile_corpus(t)
    samples = tmp_path / "hostile.jsonl"
    samples.write_text("".join(json.dumps({"task_id": "Toy/0", "completion": c}) + "\n" for c in corpus.values()))
    code = cli.main(["score-code", "-q", "--task", "humaneval", "--samples", str(samples), "--data-dir", str(data),
                     "--out", str(tmp_path / "scored"), "--timeout", "3", "--memory-mb", "512"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "scored" / "summary.json").read_text())
    assert summary["n_samples"] == len(corpus) and summary["pass@1"] == 0.0
    time.sleep(3.5)  # what a survivor would do 3 s later
    assert os.listdir(t.outside) == [] and survivors(t.token) == [] and _accepted(listener) == b""
