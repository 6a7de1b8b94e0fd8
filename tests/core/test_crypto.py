"""The at-rest key file of the embedded default, made by processes starting at once."""

from __future__ import annotations

import multiprocessing
import os
import stat
import time
from pathlib import Path
from typing import Any

from edge_onboard.core.crypto import SecretBox, load_or_create_key_file


class _SlowFile:
    """A file whose writes wait: the moment another process could read it half-made."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        time.sleep(1.0)
        written: int = self._inner.write(text)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __enter__(self) -> _SlowFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.close()


def _slow_writer(path: str, out: Any) -> None:
    fdopen = os.fdopen
    os.fdopen = lambda fd, *a, **k: _SlowFile(fdopen(fd, *a, **k))  # type: ignore[assignment]
    out.put(load_or_create_key_file(Path(path)))


def _reader(path: str, out: Any) -> None:
    out.put(load_or_create_key_file(Path(path)))


def test_a_process_starting_mid_write_reads_the_whole_key(tmp_path: Path) -> None:
    """One process is still writing the new key file when a second starts (two workers
    of `serve` with no EDGE_SECRET_KEY): both get the same, complete key. Before the key
    was written whole and then linked into place, the second read an empty file and
    failed to start ("SecretBox needs at least one key")."""
    path = tmp_path / "edge_onboard.db.key"
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    writer = context.Process(target=_slow_writer, args=(str(path), out))
    writer.start()
    deadline = time.monotonic() + 10
    while not os.listdir(tmp_path):  # the writer has made its file and is writing it
        assert time.monotonic() < deadline
        time.sleep(0.01)
    reader = context.Process(target=_reader, args=(str(path), out))
    reader.start()
    keys = [out.get(timeout=30), out.get(timeout=30)]
    writer.join(timeout=30)
    reader.join(timeout=30)
    assert keys[0] == keys[1] and len(keys[0]) >= 64, keys
    SecretBox(keys[0])  # a usable key
    assert path.read_text().strip() == keys[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == [path.name]  # no draft left behind
