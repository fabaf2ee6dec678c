"""deploy/rollout/rollout.py: its arguments, its state file and its errors without HAProxy."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from tests.source_files import load_module

ROLLOUT_PY = Path(__file__).resolve().parents[2] / "deploy" / "rollout" / "rollout.py"


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return load_module(ROLLOUT_PY, "rollout_tool")


def test_arguments_after_the_separator_go_to_every_replica(tool: ModuleType) -> None:
    args = tool.parse(["up", "--dir", "d", "--model-uri", "models:/m/1", "--", "--runtime", "onnx"])
    assert args.serve_args == ["--runtime", "onnx"]


def test_up_refuses_zero_replicas(tool: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        tool.parse(["up", "--dir", "d", "--model-uri", "models:/m/1", "--replicas", "0"])
    assert "--replicas: must be at least 1" in capsys.readouterr().err


def test_rollout_without_a_deployment_names_the_folder_and_the_fix(
    tool: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = tool.main(["rollout", "--dir", str(tmp_path), "--model-uri", "models:/m/2"])
    assert (code, capsys.readouterr().err.strip()) == (
        1,
        f"rollout: no deployment in {tmp_path} (run `up` first)",
    )


def test_undo_without_an_earlier_revision_is_refused(
    tool: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tool.Deployment(port=8080, serve_args=[], replicas_wanted=3, revision="models:/m/1").save(
        tmp_path
    )
    assert tool.main(["undo", "--dir", str(tmp_path)]) == 1
    assert "no earlier revision to roll back to" in capsys.readouterr().err


def test_state_survives_a_save_and_a_load(tool: ModuleType, tmp_path: Path) -> None:
    deployment = tool.Deployment(
        port=8080,
        serve_args=["--tracking-uri", "sqlite:///x.db"],
        replicas_wanted=3,
        revision="models:/m/2",
        history=["models:/m/1"],
        replicas=[tool.Replica("serve-4", 4001, 123, "models:/m/2", "serve-4.log")],
        next_index=5,
        proxy_pid=99,
        status="stopped",
    )
    deployment.save(tmp_path)
    assert tool.Deployment.load(tmp_path) == deployment


def test_a_missing_process_is_not_alive(tool: ModuleType) -> None:
    assert tool.alive(2**22 + 12345) is False  # above pid_max's default: never a process


class FakeProxy:
    """HAProxy's admin socket, answering from ``show stat`` rows; records every command."""

    def __init__(self, cookie: str) -> None:
        self.cookie = cookie
        self.sent: list[str] = []

    def __call__(self, line: str) -> str:
        self.sent.append(line)
        if line.startswith("add server"):
            return "New server registered."
        if line == "show stat":
            return "# pxname,svname,scur,cookie\nserve,BACKEND,0,conveyor_replica\n" + (
                f"serve,serve-1,0,{self.cookie}\n"
            )
        return ""


def test_a_replica_gets_its_persistence_cookie_before_it_takes_traffic(
    tool: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, fake = tool.Proxy(tmp_path), FakeProxy("eb63e2c55c639018")
    monkeypatch.setattr(proxy, "command", fake)
    proxy.add(tool.Replica("serve-1", 4001, 123, "models:/m/1", "serve-1.log"))
    assert fake.sent == [
        f"add server serve/serve-1 127.0.0.1:4001 {tool.SERVER_CHECK}",
        "enable dynamic-cookie backend serve",
        "show stat",
        "enable health serve/serve-1",
        "enable server serve/serve-1",
    ]
    assert proxy.cookies() == {"serve-1": "eb63e2c55c639018"}


def test_a_replica_without_a_cookie_is_never_enabled(
    tool: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, fake = tool.Proxy(tmp_path), FakeProxy("")
    monkeypatch.setattr(proxy, "command", fake)
    with pytest.raises(tool.RolloutError, match="no persistence cookie for serve-1"):
        proxy.add(tool.Replica("serve-1", 4001, 123, "models:/m/1", "serve-1.log"))
    assert not [line for line in fake.sent if line.startswith("enable server")]
