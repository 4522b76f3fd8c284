"""Atomic writes: complete under the final name or absent, with ordinary permissions."""

import os

import pytest

from mnn_edge.fileio import atomic_path, write_text_atomic


def test_atomic_writes_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.bin") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_folder_appears_whole_or_not_at_all(tmp_path):
    from mnn_edge.fileio import atomic_folder

    target = tmp_path / "data"
    with pytest.raises(RuntimeError), atomic_folder(target) as tmp:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    target.mkdir()
    (target / "old.bin").write_bytes(b"old")
    stale = tmp_path / ".data.999999999.abc.part"  # a folder a killed run left (no such pid)
    stale.mkdir()
    with atomic_folder(target) as tmp:
        (tmp / "new.bin").write_bytes(b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert [p.name for p in target.iterdir()] == ["new.bin"]
