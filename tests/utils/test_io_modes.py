"""Atomic writes give files and directories the permissions the umask allows (not mkstemp's 0600/0700)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from r1cli.utils.io import atomic_dir, atomic_write_json, atomic_write_text, write_parquet


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775),
                                                               (0o077, 0o600, 0o700)])
def test_atomic_outputs_follow_the_umask(tmp_path: Path, umask: int, file_mode: int, dir_mode: int) -> None:
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        atomic_write_json(tmp_path / "b.json", {"a": 1})
        write_parquet(tmp_path / "c.parquet", [{"id": "1"}])
        with atomic_dir(tmp_path / "model") as d:
            (d / "w.bin").write_bytes(b"w")
    finally:
        os.umask(old)
    for name in ("a.txt", "b.json", "c.parquet"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == file_mode, name
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == dir_mode
