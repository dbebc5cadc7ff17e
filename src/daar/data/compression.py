"""Transparent decompression of pool files (gzip, bzip2, zstandard) and the text encodings people have.

The compression is recognised by the file's first bytes, not its name, so `pool.jsonl.gz`,
`pool.jsonl.zst` and a gzip file that lost its suffix all read alike; the format is then taken from
the name without the compression suffix (`pool.csv.bz2` is CSV). Files are decompressed as a
stream, so a compressed JSONL pool is never held in memory whole.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from daar.errors import InputError

SUFFIXES = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bzip2", ".zst": "zstd", ".zstd": "zstd"}
_BOMS = {b"\xff\xfe": "UTF-16 (little-endian)", b"\xfe\xff": "UTF-16 (big-endian)"}
UTF8_BOM = b"\xef\xbb\xbf"


def compression_of(path: Path) -> str | None:
    """gzip, bzip2, zstd or None, from the magic bytes at the start of the file."""
    if not path.is_file():
        return None
    with open(path, "rb") as fh:
        head = fh.read(10)
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    # "BZh" + block size digit + the block or end-of-stream magic: "BZh" alone could start a text file
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] in (b"\x31\x41\x59\x26\x53\x59",
                                                                    b"\x17\x72\x45\x38\x50\x90"):
        return "bzip2"
    return None


def strip_suffix(path: Path) -> Path:
    """`pool.jsonl.gz` -> `pool.jsonl` (the name that tells the format)."""
    return path.with_suffix("") if path.suffix.lower() in SUFFIXES else path


def _errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError, EOFError]  # gzip.BadGzipFile is an OSError; truncation: EOFError
    try:
        import zstandard

        errors.append(zstandard.ZstdError)
    except ImportError:
        pass
    return tuple(errors)


def _zstd_reader(raw: IO[bytes], path: Path) -> IO[bytes]:
    try:
        import zstandard
    except ImportError:
        raise InputError(path, "is zstandard-compressed, but the zstandard package is not installed",
                         "pip install zstandard, or decompress it first (zstd -d)") from None
    return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True))


@contextmanager
def open_binary(path: Path) -> Iterator[IO[bytes]]:
    """The file's bytes, decompressed when it is compressed; errors of a damaged file name it."""
    kind = compression_of(path)
    raw = open(path, "rb")
    try:
        if kind == "gzip":
            import gzip

            stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb")
        elif kind == "bzip2":
            import bz2

            stream = bz2.BZ2File(raw, mode="rb")
        elif kind == "zstd":
            stream = _zstd_reader(raw, path)
        else:
            stream = raw
        try:
            yield stream
        except _errors() as exc:
            if kind is None or isinstance(exc, InputError):
                raise
            raise InputError(path, f"cannot be decompressed as {kind} ({exc})",
                             "The file is damaged or truncated; check it (e.g. gzip -t / zstd -t) or "
                             "decompress it first") from None
    finally:
        raw.close()


def read_bytes(path: Path) -> bytes:
    """All of the file's bytes, decompressed."""
    with open_binary(path) as fh:
        return fh.read()


def check_not_utf16(head: bytes, path: Path) -> None:
    """A UTF-16 file (Excel's "Unicode text") is named as such instead of failing on every line."""
    for bom, name in _BOMS.items():
        if head.startswith(bom):
            raise InputError(path, f"is encoded as {name}", "Re-encode the file as UTF-8 (e.g. iconv -f UTF-16 -t "
                             "UTF-8, or 'Save as UTF-8' in the editor)", 1)


def decode(data: bytes, path: Path) -> str:
    """UTF-8 text (a leading UTF-8 BOM dropped); other encodings are an InputError naming the line."""
    check_not_utf16(data[:2], path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(path, f"not valid UTF-8 (byte {exc.start})", "Re-encode the file as UTF-8", line) from None
