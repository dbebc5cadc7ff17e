"""The only copies of two pieces of plumbing every module needs: atomic writes and content hashes.

`atomic_write` writes to a unique temporary name in the same folder, flushes and fsyncs it, then
renames it over the target: a reader sees the old file or the new one, never half of one, and a
process killed at any moment (SIGKILL included) leaves at most a stray `.tmp` file behind.

`fingerprint` hashes any JSON-able structure (dicts by sorted key; dataclasses as dicts; objects
that carry a `.fingerprint` by that value), so two equal inputs always give the same short key.
`text_hash` is the content key of one text (the feature store and judge cache key rows by it).
`json_hash` and `chunks_hash` reproduce, byte for byte, the keys of data stored before this module
existed (feature-store folders, record ids, evaluation summaries, model identities), so those stay valid.

`read_yaml` reads a settings file and turns a YAML syntax error into a ConfigError naming the file,
line and column; `folder_lock` is the one lock on a folder that one run writes (a second run into it
fails at once with who holds it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from daar.errors import ConfigError, DaarError

__all__ = ["atomic_write", "publish_dir", "json_default", "fingerprint", "json_hash", "text_hash", "texts_hash",
           "chunks_hash", "file_hash", "read_yaml", "folder_lock", "LOCK_NAME", "TMP_GLOB"]

LOCK_NAME = ".daar.lock"  # the lock file inside a folder a run writes (removed again on release)
TMP_GLOB = ".*.*.tmp"  # what atomic_write's temporary names look like (a killed writer may leave one)


def atomic_write(path: str | Path, data: str | bytes | Callable[[IO[Any]], Any], *, binary: bool | None = None,
                 encoding: str = "utf-8") -> Path:
    """Replace `path` atomically with `data`: a str, bytes, or a function that writes to an open file.

    With a function, `binary` picks the file mode (default binary). Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if binary is None:
        binary = not isinstance(data, str)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "wb" if binary else "w", **({} if binary else {"encoding": encoding, "newline": ""})) as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def json_default(o: Any) -> Any:
    """`json.dumps(..., default=json_default)`: numpy scalars and arrays as plain values, the rest as text."""
    if hasattr(o, "tolist") and hasattr(o, "dtype"):
        return o.tolist()
    return str(o)


def publish_dir(tmp: str | Path, target: str | Path) -> Path:
    """Move a fully written folder `tmp` into place as `target` (a folder cannot be replaced atomically
    over an existing one, so an old `target` is removed first; readers check a file inside it)."""
    import shutil

    tmp, target = Path(tmp), Path(target)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def _canonical(value: Any) -> Any:
    """A JSON-able form of `value` that is the same for equal inputs.

    Anything that is neither a JSON value, a container, a dataclass, a path, an array nor an object
    with a string `fingerprint` is refused: hashing its repr() would put a memory address in the key.
    """
    fp = getattr(value, "fingerprint", None)
    if isinstance(fp, str) and not isinstance(value, type):
        return {"__fingerprint__": fp}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy arrays and scalars
        return value.tolist()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot fingerprint a {type(value).__name__}: give it a `fingerprint` property or pass "
                    "the settings that define it")


def fingerprint(*parts: Any, length: int = 16) -> str:
    """Short hex key of `parts` (any mix of JSON-able values, dataclasses and fingerprinted objects)."""
    blob = json.dumps(_canonical(list(parts)), sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha1(blob).hexdigest()[:length]


def json_hash(value: Any, *, length: int = 16, ensure_ascii: bool = True) -> str:
    """sha1 of exactly `json.dumps(value, sort_keys=True, default=str)`: one value, not canonicalised.

    `fingerprint` wraps its parts in a list and canonicalises them, so its keys differ from the ones
    written before this module existed. Keys that name stored data (feature-store folders, record
    content ids, evaluation summaries) must keep their old bytes, or every cache would go stale.
    """
    blob = json.dumps(value, sort_keys=True, default=str, ensure_ascii=ensure_ascii).encode("utf-8")
    return hashlib.sha1(blob).hexdigest()[:length]


def text_hash(text: str) -> str:
    """Full-length content key of one text."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def texts_hash(texts: Iterable[str], length: int = 16) -> str:
    """Content key of an ordered sequence of texts (order matters; a changed text changes the key)."""
    h = hashlib.sha1()
    for t in texts:
        h.update(text_hash(t).encode("ascii"))
    return h.hexdigest()[:length]


def chunks_hash(chunks: Iterable[str | bytes], length: int = 16) -> str:
    """sha1 of the concatenated `chunks` (str as UTF-8), fed one at a time so no big join is built.

    For keys made of many pieces (a folder's file names, sizes and bytes); callers choose pieces
    whose order and boundaries are fixed, since the concatenation alone does not mark them.
    """
    h = hashlib.sha1()
    for c in chunks:
        h.update(c.encode("utf-8") if isinstance(c, str) else c)
    return h.hexdigest()[:length]


def file_hash(path: str | Path, length: int = 16, chunk: int = 1 << 20) -> str:
    """Content key of a file's bytes."""
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()[:length]


def read_yaml(path: str | Path, what: str = "YAML file") -> Any:
    """The YAML document in `path`; a missing file or a syntax error is a ConfigError naming file and line.

    PyYAML's own message names "<unicode string>" when given text, so the position is taken from the
    error's mark and the file named here. A UTF-8 BOM (Windows editors write one) is accepted.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found" + (" (it is a folder)" if path.is_dir() else "")
                          + "; check the path")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: {what} is not valid UTF-8 (byte {exc.start}); save it as UTF-8") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
        problem = " ".join(p for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p)
        raise ConfigError(f"{where}: not valid YAML ({problem or exc}). Fix the {what} there (indentation, "
                          "a missing ':' or an unclosed bracket or quote)") from None


@contextmanager
def folder_lock(folder: str | Path, flag: str = "--out") -> Iterator[Path]:
    """Hold the lock of `folder` (created if needed) while one run writes into it.

    A second run into the same folder fails at once, naming the process that holds it, instead of
    waiting: it would only overwrite the first run's results the moment that one finished, so a
    second run into one folder is almost always a mistake, and failing keeps both runs' work intact.
    The lock is an OS lock (flock), so a killed run releases it. A folder this run created and left
    empty (an early error) is removed again, so a failed run leaves nothing behind.
    """
    from filelock import FileLock, Timeout

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{flag} {folder} is an existing file; give a folder (new or from an earlier run)")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK_NAME, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DaarError(f"{flag} {folder} is in use by another daar run ({_holder(folder / LOCK_NAME)}); wait for "
                        f"it to finish, or give another {flag}") from None
    # who holds it, for the message a second run prints (the flock is on the open file, not its bytes)
    with open(folder / LOCK_NAME, "w", encoding="utf-8") as fh:
        json.dump({"pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                   "command": " ".join(sys.argv[:6])}, fh)
    try:
        yield folder
    finally:
        # An OS lock file is not removed on release (removing it races with a run that just opened it);
        # only a folder this run created and left holding nothing else goes again.
        empty = created and {p.name for p in folder.iterdir()} == {LOCK_NAME}
        if empty:
            (folder / LOCK_NAME).unlink(missing_ok=True)
        lock.release()
        if empty:
            folder.rmdir()


def _holder(lock_file: Path) -> str:
    try:
        info = json.loads(lock_file.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "holder unknown"
    return f"pid {info.get('pid')}, since {info.get('since')}: {info.get('command')}"
