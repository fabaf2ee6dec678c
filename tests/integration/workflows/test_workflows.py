"""The GitHub Actions workflows: GitHub's schema, zizmor's audits, pinning, permissions,
and every command they run exists here (make targets, scripts and their subcommands,
conveyor commands). The workflows themselves run on GitHub, not here."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
CONVEYOR = str(BIN / "conveyor")
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
REPO_SCRIPT = re.compile(r"^(deploy|benchmarks|tests|src)/[\w./-]+\.(py|sh)$")
# What workflows run that is not in this repository, and where it comes from.
TOOLS = {
    "sudo": "runner image",
    "make": "runner image",
    "python3": "actions/setup-python",
    "bash": "runner image",
    "printf": "shell builtin",
    "echo": "shell builtin",
    "tr": "runner image",
    "export": "shell builtin",
    "exit": "shell builtin",
    "read": "shell builtin",
    "umask": "shell builtin",
    "cosign": "sigstore/cosign-installer",
    ".venv/bin/conveyor": "make setup",
}
SHELL_WORDS = {"for", "in", "do", "done", "if", "then", "fi", "while", "!", "else"}

pytestmark = pytest.mark.integration


def workflows() -> dict[str, dict[Any, Any]]:
    return {
        path.name: yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted(WORKFLOWS.glob("*.yml"))
    }


def steps() -> list[dict[str, Any]]:
    return [
        step
        for workflow in workflows().values()
        for job in workflow["jobs"].values()
        for step in job.get("steps", [])
    ]


def simple_commands(line: str) -> list[list[str]]:
    """The simple commands of one shell line (redirections and their files left out)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    found: list[list[str]] = [[]]
    skip_next = False
    for token in lexer:
        if skip_next:
            skip_next = False
        elif token in (">", ">>", "<", "2>"):
            skip_next = True
        elif set(token) <= set(";&|()"):
            found.append([])
        else:
            found[-1].append(token)
    return [words for words in found if words]


def commands() -> list[list[str]]:
    """Each simple command of every ``run:`` script, as words (shell keywords and
    variable assignments in front dropped)."""
    found = []
    for step in steps():
        script = step.get("run", "").replace("\\\n", " ")
        for raw in script.splitlines():
            line = re.sub(r"\$\{\{[^}]*\}\}", "X", raw)  # expressions
            line = re.sub(r"\b\w+\+?=\([^)]*\)", "", line)  # array assignments
            for words in simple_commands(line):
                if words[0] == "for":  # a loop's header: `for NAME in WORDS`
                    continue
                start = 0
                while start < len(words) and (
                    words[start] in SHELL_WORDS or re.match(r"^\w+\+?=", words[start])
                ):
                    start += 1
                if words[start:]:
                    found.append(words[start:])
    return found


def make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([\w-]+):", makefile, flags=re.MULTILINE))


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_four_workflows_are_there() -> None:
    assert set(workflows()) == {"ci.yml", "images.yml", "deploy.yml", "promote.yml"}


def test_workflows_match_githubs_schema() -> None:
    files = [str(p) for p in sorted(WORKFLOWS.glob("*.yml"))]
    result = run(str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                 *files)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_job_without_a_runner(tmp_path: Path) -> None:
    broken = (WORKFLOWS / "ci.yml").read_text(encoding="utf-8").replace("runs-on:", "run-on:")
    (tmp_path / "ci.yml").write_text(broken, encoding="utf-8")
    result = run(str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                 str(tmp_path / "ci.yml"))  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr


def test_zizmor_finds_nothing() -> None:
    result = run(str(BIN / "zizmor"), "--offline", "--no-progress", str(WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_flags_an_action_pinned_by_tag(tmp_path: Path) -> None:
    text = (WORKFLOWS / "ci.yml").read_text(encoding="utf-8")
    unpinned = re.sub(r"actions/checkout@[0-9a-f]{40}", "actions/checkout@v7", text)
    (tmp_path / "ci.yml").write_text(unpinned, encoding="utf-8")
    result = run(str(BIN / "zizmor"), "--offline", "--no-progress", str(tmp_path / "ci.yml"))
    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout + result.stderr


def test_every_action_is_pinned_by_commit() -> None:
    uses = [s["uses"] for s in steps() if "uses" in s]
    assert uses, "no action used"
    assert [u for u in uses if not SHA_PIN.match(u)] == []


def test_no_workflow_grants_permissions_at_its_top() -> None:
    assert {name: w.get("permissions") for name, w in workflows().items()} == {
        name: {} for name in workflows()
    }


def test_every_job_declares_its_own_permissions() -> None:
    missing = [
        f"{name}:{job_name}"
        for name, workflow in workflows().items()
        for job_name, job in workflow["jobs"].items()
        if "permissions" not in job
    ]
    assert missing == []


def test_only_the_images_job_may_write() -> None:
    writers = {
        f"{name}:{job_name}": sorted(k for k, v in job["permissions"].items() if v == "write")
        for name, workflow in workflows().items()
        for job_name, job in workflow["jobs"].items()
        if any(v == "write" for v in job["permissions"].values())
    }
    assert writers == {"images.yml:images": ["id-token", "packages"]}


def test_production_deploys_behind_its_environment_after_staging() -> None:
    jobs = workflows()["deploy.yml"]["jobs"]
    assert (jobs["production"]["environment"], jobs["production"]["needs"]) == (
        "production",
        "staging",
    )


def test_every_command_is_a_repo_file_or_a_named_tool() -> None:
    unknown = {
        words[0]
        for words in commands()
        if words[0] not in TOOLS and not (ROOT / words[0]).is_file()
    }
    assert unknown == set()


def test_every_make_target_a_workflow_runs_exists() -> None:
    wanted = {
        word
        for words in commands()
        if "make" in words
        for word in words[words.index("make") + 1 :]
        if not word.startswith("-") and "=" not in word
    }
    assert wanted, "no workflow runs make"
    assert wanted - make_targets() == set()


def test_every_script_a_workflow_runs_exists() -> None:
    scripts = {w for words in commands() for w in words if REPO_SCRIPT.match(w)}
    assert scripts, "no workflow runs a script of the repository"
    assert {s for s in scripts if not (ROOT / s).is_file()} == set()


def test_every_script_subcommand_a_workflow_runs_is_accepted() -> None:
    calls = {
        (words[i], words[i + 1])
        for words in commands()
        for i, word in enumerate(words[:-1])
        if REPO_SCRIPT.match(word) and word.endswith(".py") and not words[i + 1].startswith("-")
    }
    assert calls, "no workflow runs a Python script with a subcommand"
    refused = {
        (script, sub): result.stderr[-300:]
        for script, sub in calls
        if (result := run(sys.executable, script, sub, "--help")).returncode != 0
    }
    assert refused == {}


def test_every_conveyor_command_a_workflow_runs_exists() -> None:
    subcommands = {w[1] for w in commands() if w[0].endswith("conveyor") and len(w) > 1}
    assert subcommands, "no workflow runs conveyor"
    refused = {
        sub: result.stderr[-300:]
        for sub in subcommands
        if (result := run(CONVEYOR, sub, "--help")).returncode != 0
    }
    assert refused == {}
