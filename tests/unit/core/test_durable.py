"""Durable writes: the new content or the old one, never half, never a stray temporary."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from conveyor.durable import durable_write, durable_write_text


def test_a_write_creates_missing_folders_and_leaves_only_the_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "state.json"
    durable_write_text(target, '{"n": 1}')
    assert target.read_text(encoding="utf-8") == '{"n": 1}'
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


def test_a_rewrite_replaces_the_content(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    durable_write_text(target, "old")
    durable_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "new"


def test_a_failed_write_keeps_the_old_content_and_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    durable_write_text(target, "old")

    def half_then_full(tmp: Path) -> None:
        tmp.write_text("half of the new", encoding="utf-8")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left on device") as err:
        durable_write(target, half_then_full)
    assert err.value.filename == str(target)
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_an_interrupted_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    def interrupted(tmp: Path) -> None:
        tmp.write_text("partial", encoding="utf-8")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        durable_write(tmp_path / "out.parquet", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_a_new_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    target = durable_write_text(tmp_path / "suite.json", "{}")
    assert target.stat().st_mode & 0o644 == 0o644
