"""llmscratch.fileio: a write either happens completely or not at all."""

import pytest

from llmscratch.fileio import atomic_path, atomic_write_text


def test_failed_write_leaves_the_old_file_and_no_debris(tmp_path):
    dest = tmp_path / "result.json"
    dest.write_text("old")
    with pytest.raises(RuntimeError, match="crash mid-write"):
        with atomic_path(dest) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("crash mid-write")
    assert dest.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_successful_write_replaces_and_creates_folders(tmp_path):
    dest = tmp_path / "a" / "b" / "out.txt"
    atomic_write_text(dest, "naïve ✓")
    atomic_write_text(dest, "second")
    assert dest.read_text(encoding="utf-8") == "second"
    assert [p.name for p in dest.parent.iterdir()] == ["out.txt"]


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(umask)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
