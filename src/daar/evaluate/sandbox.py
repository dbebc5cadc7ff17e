"""Run model-written Python inside an OS sandbox (bubblewrap), and decide pass/fail outside it.

Why an OS sandbox: a guard that monkeypatches `os` / `socket` inside the program's own
interpreter is not a boundary (`posix.fork`, `_socket`, `open` of any file all stay reachable).
Here every program runs under `bwrap` with new PID, network, IPC, UTS and mount namespaces: the
root is an empty read-only tmpfs holding only /usr, the /lib links and the Python interpreter's
own prefix (never the project, $HOME or /work), a private size-limited tmpfs at /tmp, a fresh
/proc that shows only the sandbox, an empty network namespace (no 127.0.0.1 of the host), a
cleared environment, no capabilities, no_new_privs, and `--die-with-parent`: when the parent
kills bwrap (timeout) or bwrap's child exits, the kernel kills every process of the PID namespace.

Inside, a trusted harness H (stdlib-only, `python -I -S`) forks the candidate process C. C gives
up privileges before any generated code runs: as a distinct random uid (when bwrap runs as root)
or, without root, in its own user namespace, so RLIMIT_NPROC (counted per uid and user namespace)
really limits it; with nproc=1 it cannot fork, spawn or start threads. C also gets RLIMIT_AS,
RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_NOFILE and no core dumps, soft = hard. Its stdout/stderr go to
/dev/null: nothing it prints is read.

The verdict travels on a pipe only H holds (C closes it before the program starts; C cannot
ptrace H or open /proc/H/fd: another uid, or H is non-dumpable). A program passes only when
H sees C exit with status 0 *and* the message "DONE <nonce>" that C's harness part writes after
the program returned; the nonce is handed to C on a pipe it reads only at that point. An early
`exit()`, `sys.exit`, `os._exit`, SystemExit, an exception, a signal, a limit or the timeout is a
failure. Residual: C's harness code and the program share one process, so a program written
against this protocol (find the nonce pipe, read it, write the message, exit 0) can still claim a
pass; it cannot leave the sandbox.

When bwrap is missing or cannot create the namespaces, nothing runs unless the caller passes
`allow_unsandboxed=True` (`--allow-unsandboxed-code`); then the same harness runs in a plain
subprocess with the same limits and no isolation. `DAAR_BWRAP` names the bwrap binary to use.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from daar.errors import DaarError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0  # seconds of wall time; some MBPP reference solutions need ~7 s on a busy CPU
DEFAULT_MEMORY_MB = 2048
TMPFS_BYTES = 64 << 20  # the sandbox's /tmp (its only writable place)
FILE_BYTES = 16 << 20  # RLIMIT_FSIZE
BWRAP_ENV = "DAAR_BWRAP"
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`, Fedora: `dnf install "
                "bubblewrap`; `bash scripts/install.sh` does it as root) or point DAAR_BWRAP at the bwrap "
                "binary; to run model-written code without isolation at your own risk, pass "
                "--allow-unsandboxed-code (Python: allow_unsandboxed_code=True)")

# The harness H: runs as the sandbox's main process. argv: verdict_fd mem cpu nproc fsize uid workdir.
_HARNESS = r'''
import json, os, resource, signal, sys

def child(source, nonce_r, done_w, mem, cpu, nproc, fsize, uid, workdir):
    write, read, exit_ = os.write, os.read, os._exit
    try:
        os.chdir(workdir)
        if uid >= 0:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        for lim, val in ((resource.RLIMIT_AS, mem), (resource.RLIMIT_CPU, cpu), (resource.RLIMIT_NPROC, nproc),
                         (resource.RLIMIT_FSIZE, fsize), (resource.RLIMIT_NOFILE, 64), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(lim, (val, val))
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        code = compile(source, "program.py", "exec")
    except BaseException as exc:
        write(done_w, ("FAIL %s: %s" % (type(exc).__name__, exc)).encode("utf-8", "replace")[:400])
        exit_(3)
    del source
    try:
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
    except BaseException as exc:
        try:
            why = " ".join(str(exc).split())[:300]
        except BaseException:
            why = "?"
        write(done_w, ("FAIL %s: %s" % (type(exc).__name__, why)).encode("utf-8", "replace"))
        exit_(1)
    write(done_w, b"DONE " + read(nonce_r, 64))
    exit_(0)

def verdict(msg, status, nonce):
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        why = {"SIGXCPU": "the CPU time limit", "SIGKILL": "SIGKILL (a limit or a kill)"}.get(name, name)
        return {"status": "failed", "detail": "killed by " + why}
    code = os.WEXITSTATUS(status)
    if code == 0 and msg == b"DONE " + nonce:
        return {"status": "passed", "detail": ""}
    if msg.startswith(b"FAIL "):
        return {"status": "failed", "detail": msg[5:400].decode("utf-8", "replace")}
    return {"status": "failed", "detail": "exited with status %d before the tests finished" % code}

def main():
    verdict_fd, mem, cpu, nproc, fsize, uid = (int(a) for a in sys.argv[1:7])
    workdir = sys.argv[7]
    source = sys.stdin.buffer.read().decode("utf-8", "replace")  # fd 0 stays open: pipes must not reuse 0-2
    if uid < 0:  # same uid as the candidate: forbid ptrace and /proc/H/fd access
        try:
            import ctypes
            ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0
        except Exception:
            pass
    os.makedirs(workdir, exist_ok=True)
    os.chmod(workdir, 0o777)
    nonce = os.urandom(16).hex().encode()
    nonce_r, nonce_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(verdict_fd); os.close(nonce_w); os.close(done_r)
        child(source, nonce_r, done_w, mem, cpu, nproc, fsize, uid, workdir)
    os.close(nonce_r); os.close(done_w)
    os.write(nonce_w, nonce); os.close(nonce_w)
    chunks, size = [], 0
    while True:
        chunk = os.read(done_r, 65536)
        if not chunk:
            break
        if size < 4096:
            chunks.append(chunk)
        size += len(chunk)
    _, status = os.waitpid(pid, 0)
    os.write(verdict_fd, json.dumps(verdict(b"".join(chunks), status, nonce)).encode())

main()
'''


class SandboxUnavailable(DaarError):
    """No usable OS sandbox, and running generated code without one was not allowed."""


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one program: status is passed | failed | timeout, detail says why it failed."""

    status: str
    detail: str = ""
    seconds: float = 0.0
    isolation: str = "bwrap"  # bwrap | none

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def bwrap_path() -> str | None:
    """The bwrap binary: $DAAR_BWRAP when set (even if missing: that is how a user disables it), else PATH."""
    return os.environ.get(BWRAP_ENV) or shutil.which("bwrap")


def isolation_problem() -> str | None:
    """None when bubblewrap can run a program here, else why not (checked once per bwrap path)."""
    path = bwrap_path()
    if not path:
        return "bwrap is not installed (not on PATH)"
    if not os.access(path, os.X_OK):
        return f"{path} is not an executable file"
    return _probe(path)


@functools.lru_cache(maxsize=8)
def _probe(path: str) -> str | None:
    result = _execute("assert 1 + 1 == 2\n", 30.0, DEFAULT_MEMORY_MB, path)
    if result.passed:
        return None
    return f"{path} could not run a test program ({result.detail or result.status})"


def require_isolation(allow_unsandboxed: bool = False) -> str | None:
    """The bwrap path to run generated code with, None for unsandboxed (only if allowed); else raise."""
    problem = isolation_problem()
    if problem is None:
        return bwrap_path()
    if not allow_unsandboxed:
        raise SandboxUnavailable(f"refusing to execute model-generated code without an OS sandbox: {problem}. "
                                 f"To fix: {INSTALL_HINT}")
    _warn_unsandboxed(problem)
    return None


@functools.lru_cache(maxsize=1)
def _warn_unsandboxed(problem: str) -> None:
    log.warning("running generated code WITHOUT isolation (--allow-unsandboxed-code): %s", problem)


def run_program(program: str, timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB, *,
                allow_unsandboxed: bool = False) -> ExecResult:
    """Execute `program` in the sandbox; pass = it ran to the end and exited on its own with status 0."""
    return _execute(program, timeout, memory_mb, require_isolation(allow_unsandboxed))


def _interpreter() -> tuple[str, str]:
    """(the base interpreter, its prefix): a venv's site-packages (and the project) stay outside."""
    exe = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    return exe, os.path.realpath(sys.base_prefix)


def _bwrap_args(bwrap: str, as_root: bool) -> list[str]:
    exe, prefix = _interpreter()
    # As root, --unshare-all would add a user namespace in which the harness cannot switch the
    # candidate to another host uid; without root, the user namespace is what makes bwrap work.
    ns = (["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
           "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"] if as_root
          else ["--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL"])
    args = [bwrap, *ns, "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = f"/{name}"
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    if not prefix.startswith("/usr/"):
        parents = [p for p in Path(prefix).parents if str(p) != "/"]
        for parent in reversed(parents):  # bwrap makes missing parents 0700: the candidate's uid must pass
            args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", prefix, prefix]
    if not exe.startswith(("/usr/", prefix + "/")):
        args += ["--ro-bind", exe, exe]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp/work", "TMPDIR": "/tmp/work",
           "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp",
             "--remount-ro", "/", "--chdir", "/tmp", "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return [*args, "--", exe]


def _command(bwrap: str | None, verdict_fd: int, timeout: float, memory_mb: int, workdir: str) -> list[str]:
    as_root = os.geteuid() == 0
    uid = 1_000_000 + secrets.randbelow(1 << 30) if as_root else -1  # a uid no other process has
    limits = [str(memory_mb << 20), str(max(1, math.ceil(timeout)) + 1), "1", str(FILE_BYTES), str(uid)]
    if bwrap is None:
        return [_interpreter()[0], "-I", "-S", "-c", _HARNESS, str(verdict_fd), *limits, workdir]
    return [*_bwrap_args(bwrap, as_root), "-I", "-S", "-c", _HARNESS, str(verdict_fd), *limits, "/tmp/work"]


def _execute(program: str, timeout: float, memory_mb: int, bwrap: str | None) -> ExecResult:
    """One run: start the harness (in bwrap, or plain when bwrap is None), read its verdict."""
    isolation = "bwrap" if bwrap else "none"
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="daar-exec-") as tmp:
        os.chmod(tmp, 0o711)  # unsandboxed, the candidate's own uid must reach tmp/work
        workdir = os.path.join(tmp, "work")
        read_fd, write_fd = os.pipe()
        with open(os.path.join(tmp, "stderr"), "w+b") as err:
            try:
                proc = subprocess.Popen(_command(bwrap, write_fd, timeout, memory_mb, workdir), cwd=tmp,
                                        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err,
                                        pass_fds=(write_fd,), start_new_session=True)
            finally:
                os.close(write_fd)
            try:
                _feed(proc, program)
                raw, finished = _read_verdict(read_fd, start + timeout)
            finally:
                os.close(read_fd)
                _kill(proc)
            err.seek(0)
            stderr = err.read(2000).decode("utf-8", "replace").strip()
    seconds = time.perf_counter() - start
    if not finished:
        return ExecResult("timeout", f"killed after {timeout:g} s", seconds, isolation)
    try:
        verdict = json.loads(raw)
        return ExecResult(str(verdict["status"]), str(verdict["detail"]), seconds, isolation)
    except (ValueError, KeyError, TypeError):
        why = stderr.splitlines()[-1] if stderr else f"harness exit status {proc.returncode}"
        return ExecResult("failed", f"no verdict from the sandbox ({why})", seconds, isolation)


def _feed(proc: subprocess.Popen, program: str) -> None:
    """The program goes in on stdin: the harness reads it all before anything else, so this cannot block."""
    assert proc.stdin is not None
    try:
        proc.stdin.write(program.encode("utf-8", "surrogatepass"))
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass


def _read_verdict(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Everything written on `fd` until EOF, and whether EOF came before the deadline."""
    chunks: list[bytes] = []
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return b"".join(chunks), False
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk[: max(0, 8192 - sum(map(len, chunks)))])


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL bwrap's session: --die-with-parent then takes the whole PID namespace with it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not fail on Linux
        pass
