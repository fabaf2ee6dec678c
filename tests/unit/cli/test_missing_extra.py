"""A command that needs an extra the installation lacks says which one, in one line."""

from __future__ import annotations

import pytest
import typer

from conveyor.cli import _guarded


def needs(module: str) -> None:
    raise ModuleNotFoundError(f"No module named '{module}'", name=module)


def test_missing_pipeline_package_names_the_extra(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as exit_info:
        _guarded(needs, "great_expectations.core")
    assert exit_info.value.exit_code == 2
    assert "pip install 'conveyor-mlops[pipeline]'" in capsys.readouterr().err


def test_missing_torch_names_the_torch_extra(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit):
        _guarded(needs, "torch")
    assert "conveyor-mlops[torch]" in capsys.readouterr().err


def test_other_missing_module_stays_an_unexpected_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONVEYOR_DEBUG", raising=False)
    with pytest.raises(typer.Exit) as exit_info:
        _guarded(needs, "no_such_thing")
    assert exit_info.value.exit_code == 1
    assert "unexpected ModuleNotFoundError" in capsys.readouterr().err
