"""skops imported without torch: the same estimator list, torch still importable after."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")  # without the torch extra there is nothing to keep out

PROBE = """
import json, sys
{prelude}
names = sorted(skops.io._trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES)
print(json.dumps({{"torch": "torch" in sys.modules, "names": names}}))
"""


def probe(prelude: str) -> dict[str, object]:
    code = PROBE.format(prelude=prelude)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    answer: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return answer


@pytest.fixture(scope="module")
def guarded() -> dict[str, object]:
    prelude = "from conveyor.registry.serialization import import_skops\nskops = import_skops()"
    return probe(prelude + "\nimport skops.io")


@pytest.fixture(scope="module")
def plain() -> dict[str, object]:
    return probe("import skops.io")


def test_skops_import_leaves_torch_out(guarded: dict[str, object]) -> None:
    assert guarded["torch"] is False


def test_a_plain_skops_import_pulls_torch_in(plain: dict[str, object]) -> None:
    assert plain["torch"] is True  # what the guard is for; fails once skops stops doing it


def test_skops_knows_the_same_estimators_either_way(
    guarded: dict[str, object], plain: dict[str, object]
) -> None:
    assert guarded["names"] == plain["names"]


def test_torch_imports_after_the_guard() -> None:
    code = (
        "from conveyor.registry.serialization import import_skops\n"
        "import_skops()\nimport torch\nprint(torch.tensor([1]).sum().item())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "1"), done.stderr[-2000:]
