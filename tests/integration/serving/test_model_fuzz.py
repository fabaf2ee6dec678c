"""Fuzzing that reaches the model: Hypothesis bodies built from the served model's input
schema, sent to both runtimes (pyfunc, ONNX) in every body form of both protocols (MLflow
``/invocations`` as dataframe_split, dataframe_records, instances, inputs; Open Inference
Protocol ``/v2/models/{name}/infer``).

The strategies are not a fixed corpus: the column names and datatypes come from the running
server (``GET /v2/models/{name}``), which columns may be missing and the levels and ranges
seen in training from the registered MLflow model (its signature and input example). From
them Hypothesis draws valid rows; edge values (NaN, +/-infinity as the literal and as
``1e999``, 1e308, -0.0, 400-digit integers, empty and 10,000-character strings, unseen
levels, lone surrogates, nulls everywhere and whole null columns); mixed types (numbers as
text, text and booleans in number columns, numbers in string columns, nested lists and
objects in a cell, other tensor datatypes); and missing, extra, renamed (padded, other
case) and repeated columns.

Every answer must be a 200 with one prediction per row (a class of the model) or a 4xx
with a JSON error naming the field or the problem; never a 5xx; the server stays ready
after every body; and most valid rows get their predictions (the bodies do reach the
model), counted per runtime and protocol. The ten fuzzing campaigns (runtime x protocol)
run once per test run, in a module-scoped fixture (under xdist: on the first worker that
needs them, the others read its results); each test checks one of these outcomes on one
campaign.

Replay: the seed is chosen once per run (``CONVEYOR_FUZZ_SEED`` if set, else at random;
shared by the xdist workers of one run), printed in every test's captured output, recorded
as the ``fuzz_seed`` property (JUnit XML) and written in every failure message. The same
seed replays the same bodies (same Hypothesis version, same registered model)::

    CONVEYOR_FUZZ_SEED=<seed> .venv/bin/python -m pytest \\
        tests/integration/serving/test_model_fuzz.py -rA -p no:randomly
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import secrets
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from tests.integration.serving.conftest import launch, make_table, register_conveyor_model

from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration

FUZZ_MODEL = "fuzz-serve-test"
RUNTIMES = ["pyfunc", "onnx"]
PROTOCOLS = ["dataframe_split", "dataframe_records", "instances", "inputs", "v2"]
MIN_SENT = 80  # bodies each campaign must send (of 100, see EXAMPLES) ...
MIN_VALID_SENT = 20  # ... valid-row bodies among them ...
MIN_VALID_SHARE = 0.9  # ... and the share of them that must get their predictions
SHOWN = 5  # offenders listed in a failure message
NUMBER_DATATYPES = (
    *("FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64"),
    *("UINT8", "UINT16", "UINT32", "UINT64"),
)
DATATYPES = (*NUMBER_DATATYPES, "BOOL", "BYTES")
FIELDS = (  # the protocols' payload fields an error message may name
    *("dataframe_split", "dataframe_records", "instances", "inputs", "columns", "data"),
    *("name", "shape", "datatype", "outputs", "id"),
)
SUBJECTS = ("column", "row", "input", "batch", "JSON", "field", "datatype", "shape")
"""Words of a message that names the problem without quoting a name (``empty batch``,
``malformed JSON``, ``the model could not score the input: ...``)."""


def _pick_seed() -> int:
    given_seed = os.environ.get("CONVEYOR_FUZZ_SEED", "").strip()
    if given_seed:
        return int(given_seed)
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # one per run, the same on every worker
    if run:
        return int(run[:8], 16)
    return secrets.randbelow(2**32)


SEED = _pick_seed()
REPLAY = f"seed {SEED} (replay: CONVEYOR_FUZZ_SEED={SEED})"


# -- the schema the strategies are built from ---------------------------------------------
@dataclass(frozen=True)
class Column:
    """One input column as the server and the registered model describe it.

    Attributes:
        name: the column name (server metadata).
        datatype: its Open Inference Protocol datatype (server metadata).
        required: whether the MLflow signature requires a value.
        levels: the values of a string column in the registered input example.
        low, high: the range of a number column in the registered input example.
    """

    name: str
    datatype: str
    required: bool
    levels: tuple[str, ...] = ()
    low: float = 0.0
    high: float = 1.0

    @property
    def numeric(self) -> bool:
        return self.datatype in NUMBER_DATATYPES


@dataclass(frozen=True)
class ModelSchema:
    """The served model: its name, input columns and classes."""

    name: str
    columns: tuple[Column, ...]
    classes: tuple[Any, ...]
    signature: tuple[tuple[str, str], ...]  # the MLflow signature's (name, type) pairs

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def fetch_schema(url: str, registry: ModelRegistry, version: str) -> ModelSchema:
    """The served model's inputs (``GET /v2/models/{name}``), completed by the registered
    model's MLflow signature (required columns) and input example (levels, ranges)."""
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model

    meta = httpx.get(f"{url}/v2/models/{FUZZ_MODEL}", timeout=10.0).json()
    source = registry.client.get_model_version_download_uri(FUZZ_MODEL, version)
    with tempfile.TemporaryDirectory() as folder:
        for name in ("MLmodel", "input_example.json"):
            download_artifacts(
                artifact_uri=f"{source}/{name}", dst_path=folder, tracking_uri=registry.tracking_uri
            )
        model = Model.load(folder)
        example = model.load_input_example(folder)
    assert model.signature is not None and isinstance(example, pd.DataFrame)
    signature = {spec["name"]: spec for spec in model.signature.inputs.to_dict()}
    columns = []
    for tensor in meta["inputs"]:
        name, datatype = tensor["name"], tensor["datatype"]
        seen = example[name].dropna()
        if datatype in NUMBER_DATATYPES:
            extra: dict[str, Any] = {"low": float(seen.min()), "high": float(seen.max())}
        else:
            extra = {"levels": tuple(sorted({str(v) for v in seen}))}
        required = bool(signature.get(name, {}).get("required", True))
        columns.append(Column(name, datatype, required, **extra))
    pairs = tuple((s["name"], s["type"]) for s in signature.values())
    return ModelSchema(meta["name"], tuple(columns), tuple(meta["parameters"]["classes"]), pairs)


# -- values and rows ----------------------------------------------------------------------
@dataclass(frozen=True)
class Raw:
    """A JSON number written as is (``json.dumps`` writes no ``1e999``)."""

    text: str


MARK = secrets.token_hex(8)


def encode(payload: Any) -> bytes:
    """``payload`` as JSON (NaN and Infinity as their literals), :class:`Raw` values as is."""
    raws: list[str] = []

    def mark(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(value.text)
            return f"{MARK}{len(raws) - 1}{MARK}"
        if isinstance(value, list):
            return [mark(v) for v in value]
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        return value

    text = json.dumps(mark(payload))
    for index, raw in enumerate(raws):
        text = text.replace(json.dumps(f"{MARK}{index}{MARK}"), raw, 1)
    return text.encode("ascii")


def _times_10k(char: str, n: int) -> str:
    """10,000 or 20,000 repetitions of one character (drawn whole, not char by char)."""
    return char * 10_000 * n


def valid_value(column: Column) -> st.SearchStrategy[Any]:
    """A value the model takes: a number near the training range, a level seen in training;
    null where the signature does not require a value."""
    if column.numeric:
        span = max(column.high - column.low, 1.0)
        low, high = column.low - span, column.high + span
        found: st.SearchStrategy[Any] = st.floats(low, high) | st.integers(
            math.floor(low), math.ceil(high)
        )
    else:
        found = st.sampled_from(column.levels) if column.levels else st.text(min_size=1)
    return found if column.required else found | st.none()


def edge_value(column: Column) -> st.SearchStrategy[Any]:
    """A value at the edge of the column's type."""
    if column.numeric:
        fixed = [math.nan, math.inf, -math.inf, 1e308, -1e308, 1.7976931348623157e308]
        fixed += [5e-324, -0.0, 0, 2**63, -(2**63) - 1, 2**64]
        raws = [Raw("1e999"), Raw("-1e999"), Raw("9" * 400), Raw("-0"), Raw("1E+308")]
        return st.sampled_from(fixed + raws) | st.floats() | st.none()
    levels = list(column.levels) or ["x"]
    return (
        st.sampled_from(["", " ", "?", "NaN", "null", "\x00", "\ud800", "\udfff"])
        | st.builds(_times_10k, st.characters(codec="utf-8"), st.sampled_from([1, 2]))
        | st.text()  # unseen levels
        | st.sampled_from(levels).map(lambda v: f"  {v.upper()}  ")
        | st.none()
    )


NESTED = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)


def mixed_value(column: Column) -> st.SearchStrategy[Any]:
    """A value of another type than the column's."""
    as_text = (
        st.floats(allow_nan=False, allow_infinity=False).map(repr)
        | st.integers().map(str)
        | st.sampled_from(["1,234", " 7 ", "1e3", "0x10", "1_000", "+5", ".5", "5.", "inf"])
    )
    other: st.SearchStrategy[Any]
    if column.numeric:
        other = st.text(max_size=30) | st.builds(_times_10k, st.sampled_from("19 .x"), st.just(1))
    else:
        other = st.one_of(st.floats(), st.integers())
    return (
        as_text
        | other
        | st.booleans()
        | st.lists(NESTED, max_size=3)
        | st.dictionaries(st.text(max_size=5), NESTED, max_size=3)
    )


@dataclass(frozen=True)
class Case:
    """One fuzzing example: what kind of rows, the rows, and the column order to send."""

    kind: str
    rows: list[dict[str, Any]]
    names: list[str]


EXAMPLES = {"valid": 24, "edge": 16, "mixed": 16, "null-column": 6, "all-null": 6}
EXAMPLES |= {"missing": 8, "extra": 8, "renamed": 8, "duplicate": 8}
"""Bodies of each kind per campaign (one Hypothesis run each: left to choose the kind
itself, Hypothesis sends some kinds, valid rows among them, hardly at all)."""


def rows_of(
    schema: ModelSchema, cell: Callable[[Column], st.SearchStrategy[Any]]
) -> st.SearchStrategy[list[dict[str, Any]]]:
    row = st.fixed_dictionaries({c.name: cell(c) for c in schema.columns})
    return st.lists(row, min_size=1, max_size=4)


def either(
    *cells: Callable[[Column], st.SearchStrategy[Any]],
) -> Callable[[Column], st.SearchStrategy[Any]]:
    return lambda column: st.one_of(*(cell(column) for cell in cells))


@st.composite
def cases(draw: st.DrawFn, schema: ModelSchema, kind: str) -> Case:
    names = schema.names
    if kind == "edge":
        rows = draw(rows_of(schema, either(edge_value, valid_value)))
    elif kind == "mixed":
        rows = draw(rows_of(schema, either(mixed_value, valid_value)))
    else:
        rows = draw(rows_of(schema, valid_value))
    if kind == "null-column":
        gone = draw(st.sampled_from(names))
        rows = [{**row, gone: None} for row in rows]
    elif kind == "all-null":
        rows = [dict.fromkeys(row) for row in rows]
    elif kind == "missing":
        dropped = draw(st.sets(st.sampled_from(names), min_size=1))
        names = [n for n in names if n not in dropped]
    elif kind == "extra":
        added = draw(st.lists(st.text(max_size=12), min_size=1, max_size=2, unique=True))
        added = [n for n in added if n not in names] or [f"{names[0]}_extra"]
        for row in rows:
            row.update({n: draw(st.none() | st.floats() | st.text(max_size=8)) for n in added})
        names = names + added
    elif kind == "renamed":  # headers padded (training stripped them) or in another case
        renamed = {n: draw(st.sampled_from([n, f" {n} ", n.upper(), f"{n}\t"])) for n in names}
        rows = [{renamed[n]: v for n, v in row.items()} for row in rows]
        names = [renamed[n] for n in names]
    elif kind == "duplicate":  # a column twice (an object's keys cannot repeat: split, v2)
        names = [*names, draw(st.sampled_from(names))]
    if draw(st.booleans()):
        names = draw(st.permutations(names))
    return Case(kind, [{n: row.get(n) for n in names} for row in rows], list(names))


@st.composite
def requests(
    draw: st.DrawFn, schema: ModelSchema, protocol: str, kind: str
) -> tuple[Case, str, bytes]:
    """A case and the path and body that send it in ``protocol``."""
    case = draw(cases(schema, kind))
    rows, names = case.rows, case.names
    if protocol == "v2":
        nested = draw(st.booleans())
        tensors = []
        for name in names:
            column = next((c for c in schema.columns if c.name == name), None)
            datatype = column.datatype if column is not None else draw(st.sampled_from(DATATYPES))
            if case.kind == "mixed" and draw(st.integers(0, 3)) == 0:
                datatype = draw(st.sampled_from(DATATYPES))
            data = [row[name] for row in rows]
            shape = [len(rows), 1] if nested else [len(rows)]
            tensors.append(
                {
                    "name": name,
                    "shape": shape,
                    "datatype": datatype,
                    "data": [[v] for v in data] if nested else data,
                }
            )
        return case, f"/v2/models/{schema.name}/infer", encode({"inputs": tensors})
    path = "/invocations?probabilities=true" if draw(st.booleans()) else "/invocations"
    if protocol == "dataframe_split":
        split = {"columns": names, "data": [[row[n] for n in names] for row in rows]}
        return case, path, encode({"dataframe_split": split})
    if protocol == "dataframe_records":
        return case, path, encode({"dataframe_records": rows})
    form = draw(st.sampled_from(["records", "rows", "columns"]))
    if form == "records":
        value: Any = rows
    elif form == "rows":  # positional: the model's columns in order, then any others
        order = [n for n in schema.names if n in names]
        order += [n for n in names if n not in schema.names]
        value = [[row[n] for n in order] for row in rows]
    else:
        value = {n: [row[n] for row in rows] for n in names}
    return case, path, encode({protocol: value})


# -- judging the answers ------------------------------------------------------------------
@dataclass
class Campaign:
    """What one fuzzing campaign (one runtime, one protocol) saw; the offender lists hold
    what went wrong and the body that caused it."""

    runtime: str
    protocol: str
    sent: int = 0
    statuses: dict[str, int] = field(default_factory=dict)  # "200", "422", "no answer"
    valid_sent: int = 0
    valid_answered: int = 0
    server_errors: list[str] = field(default_factory=list, repr=False)
    bad_answers: list[str] = field(default_factory=list, repr=False)
    not_ready: list[str] = field(default_factory=list, repr=False)
    valid_refused: list[str] = field(default_factory=list, repr=False)

    def record(
        self, schema: ModelSchema, case: Case, body: bytes, response: httpx.Response | str
    ) -> None:
        """One body and its answer (or, as text, why there was none)."""
        self.sent += 1
        status = "no answer" if isinstance(response, str) else str(response.status_code)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        sent = f"{case.kind}: {show(body)}"
        if isinstance(response, str) or response.status_code >= 500:
            got = response if isinstance(response, str) else f"{status} {response.text[:200]}"
            self.server_errors.append(f"{got} to {sent}")
            problem: str | None = got
        else:
            problem = answer_problem(self.protocol, schema, case, response)
            if problem is not None:
                self.bad_answers.append(f"{problem} to {sent}")
            elif response.status_code != 200:
                problem = f"{status} {response.text[:200]}"
        if case.kind == "valid":
            self.valid_sent += 1
            if problem is None:
                self.valid_answered += 1
            else:
                self.valid_refused.append(f"{problem} to {sent}")

    def failure(self, what: str, offenders: list[str]) -> str:
        shown = "\n".join(f"  - {o}" for o in offenders[:SHOWN])
        return (
            f"{self.runtime}/{self.protocol}, {REPLAY}: {len(offenders)} {what} "
            f"({self.sent} bodies sent, statuses {self.statuses}); the first "
            f"{min(SHOWN, len(offenders))}:\n{shown}"
        )


def show(body: bytes) -> str:
    text = body.decode("ascii")
    return text if len(text) <= 300 else f"{text[:300]}... ({len(text)} chars)"


def predictions_of(protocol: str, answer: Any) -> tuple[list[Any], list[Any] | None]:
    """The predictions (and MLflow probabilities) of a 200 answer."""
    if protocol == "v2":
        (tensor,) = [t for t in answer["outputs"] if t["name"] == "predictions"]
        assert tensor["shape"] == [len(tensor["data"])], tensor["shape"]
        return tensor["data"], None
    return answer["predictions"], answer.get("probabilities")


def answer_problem(
    protocol: str, schema: ModelSchema, case: Case, response: httpx.Response
) -> str | None:
    """Why an answer below 500 is not a prediction per row or a 4xx naming the problem."""
    status = response.status_code
    try:
        answer = response.json()
    except ValueError:
        return f"{status} without a JSON body: {response.text[:200]!r}"
    if status == 200:
        return prediction_problem(protocol, schema, case, answer)
    if not 400 <= status < 500:
        return f"status {status}: {response.text[:200]}"
    problem = error_problem(protocol, schema, case, answer)
    return None if problem is None else f"{status} {problem}: {response.text[:200]}"


def prediction_problem(protocol: str, schema: ModelSchema, case: Case, answer: Any) -> str | None:
    """Why a 200 answer is not one prediction (a class of the model) per row."""
    rows = len(case.rows)
    try:
        predictions, probabilities = predictions_of(protocol, answer)
    except (KeyError, TypeError, ValueError, AssertionError) as exc:
        return f"200 without predictions ({exc!r}): {str(answer)[:200]}"
    if len(predictions) != rows:
        return f"200 with {len(predictions)} predictions for {rows} rows"
    if not all(p in schema.classes for p in predictions):
        return f"200 with predictions outside the classes {schema.classes}: {predictions}"
    if probabilities is not None and len(probabilities) != rows:
        return f"200 with {len(probabilities)} probability rows for {rows} rows"
    return None


def error_problem(protocol: str, schema: ModelSchema, case: Case, answer: Any) -> str | None:
    """Why a 4xx body is not the protocol's JSON error naming a field or the problem."""
    key = "error" if protocol == "v2" else "message"
    message = answer.get(key) if isinstance(answer, dict) else None
    if not isinstance(message, str) or not message.strip():
        return f"without an error message in {key!r}"
    if protocol != "v2" and not isinstance(answer.get("error_code"), str):
        return "without an MLflow error_code"
    named = {repr(n) for n in [*schema.names, *case.names]} | {f"'{f}'" for f in FIELDS}
    if not any(n in message for n in named) and not any(s in message for s in SUBJECTS):
        return "naming no field nor problem"
    return None


def run_campaign(url: str, schema: ModelSchema, protocol: str, campaign: Campaign) -> None:
    """Send ``EXAMPLES`` bodies of each kind, judging each answer and checking readiness
    after each; offenders are collected (nothing raised, so nothing is shrunk). Every kind
    has its own seed, derived from ``SEED`` and the protocol, so both runtimes get the same
    bodies."""
    headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for index, (kind, examples) in enumerate(EXAMPLES.items()):

            @seed(SEED * 1000 + PROTOCOLS.index(protocol) * 100 + index)
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=False,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(request=requests(schema, protocol, kind))
            def fuzz(request: tuple[Case, str, bytes]) -> None:
                case, path, body = request
                try:
                    response: httpx.Response | str = client.post(
                        path, content=body, headers=headers
                    )
                except httpx.HTTPError as exc:
                    response = f"no answer ({exc!r})"
                campaign.record(schema, case, body, response)
                unready = readiness(client)
                if unready is not None:
                    campaign.not_ready.append(f"{unready} after {case.kind}: {show(body)}")

            fuzz()
        unready = readiness(client)
        if unready is not None:
            campaign.not_ready.append(f"{unready} at the end")


def readiness(client: httpx.Client) -> str | None:
    """Why the server is not ready, or None when ``GET /readyz`` answers 200."""
    try:
        response = client.get("/readyz")
    except httpx.HTTPError as exc:
        return f"/readyz: no answer ({exc!r})"
    return None if response.status_code == 200 else f"/readyz {response.status_code}"


# -- fixtures -----------------------------------------------------------------------------
def register_fuzz_model(registry: ModelRegistry) -> str:
    """Conveyor's own pipeline with a verified ONNX export (both runtimes can serve it),
    registered and promoted; its version."""
    table = make_table(n=400, seed=51)
    table.loc[table.index % 9 == 0, "job"] = np.nan  # a level the pipeline imputes
    _, version = register_conveyor_model(registry, table, name=FUZZ_MODEL, key="fuzz-1", onnx=True)
    return version


@dataclass(frozen=True)
class Results:
    """What the fuzzing saw: the schema each runtime served, and every campaign."""

    schemas: dict[str, ModelSchema]
    campaigns: dict[str, Campaign]  # by "runtime-protocol"

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str) -> Results:
        found = json.loads(text)
        schemas = {
            runtime: ModelSchema(
                schema["name"],
                tuple(Column(**{**c, "levels": tuple(c["levels"])}) for c in schema["columns"]),
                tuple(schema["classes"]),
                tuple((name, kind) for name, kind in schema["signature"]),
            )
            for runtime, schema in found["schemas"].items()
        }
        campaigns = {key: Campaign(**c) for key, c in found["campaigns"].items()}
        return cls(schemas, campaigns)


def serve_both_runtimes(registry: ModelRegistry, folder: Path, stack: ExitStack) -> dict[str, str]:
    """``conveyor serve --runtime <runtime>`` for each runtime, started side by side (each
    waits for its model, mostly on imports); stopped when ``stack`` closes. Their URLs."""
    uri = f"models:/{FUZZ_MODEL}@champion"

    def start(runtime: str) -> tuple[AbstractContextManager[Any], str]:
        options = ("--runtime", runtime, "--poll-interval", "0", "--drain-seconds", "0")
        server = launch(registry.tracking_uri, uri, folder, *options)
        _, url, _ = server.__enter__()
        return server, url

    with ThreadPoolExecutor(len(RUNTIMES)) as pool:
        starting = {runtime: pool.submit(start, runtime) for runtime in RUNTIMES}
    urls, failed = {}, []
    for runtime, future in starting.items():
        try:
            server, urls[runtime] = future.result()
        except BaseException as exc:  # pytest.fail is no Exception
            failed.append(exc)
        else:
            stack.push(server.__exit__)
    if failed:
        raise failed[0]
    return urls


def fuzz_both_runtimes(registry: ModelRegistry, folder: Path) -> Results:
    """Serve the fuzz model with each runtime and run every protocol's campaign on each."""
    version = register_fuzz_model(registry)
    schemas: dict[str, ModelSchema] = {}
    campaigns: dict[str, Campaign] = {}
    with ExitStack() as stack:
        for runtime, url in serve_both_runtimes(registry, folder, stack).items():
            schemas[runtime] = schema = fetch_schema(url, registry, version)
            for protocol in PROTOCOLS:
                campaigns[f"{runtime}-{protocol}"] = found = Campaign(runtime, protocol)
                run_campaign(url, schema, protocol, found)
    return Results(schemas, campaigns)


@pytest.fixture(scope="module")
def fuzzed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Results:
    """Every campaign, run once per test run: the first xdist worker to get here fuzzes
    under a file lock and writes the results where the run's workers share files; the
    others read them (so ``-n 2`` does not register, serve and fuzz everything twice)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    done = shared / f"model-fuzz-{SEED}.json"
    with (shared / "model-fuzz.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            registry, _ = request.getfixturevalue("store")
            results = fuzz_both_runtimes(registry, tmp_path_factory.mktemp("fuzz-servers"))
            done.write_text(results.dumps(), encoding="utf-8")
    return Results.loads(done.read_text(encoding="utf-8"))


CAMPAIGNS = [f"{runtime}-{protocol}" for runtime in RUNTIMES for protocol in PROTOCOLS]


@pytest.fixture(params=CAMPAIGNS)
def campaign(request: pytest.FixtureRequest, fuzzed: Results) -> Campaign:
    found = fuzzed.campaigns[request.param]
    print(
        f"fuzz {found.runtime}/{found.protocol}: {found.sent} bodies, statuses {found.statuses}, "
        f"valid {found.valid_answered}/{found.valid_sent} answered; {REPLAY}"
    )
    return found


@pytest.fixture(autouse=True)
def _show_seed(record_property: Callable[[str, object], None]) -> None:
    record_property("fuzz_seed", SEED)
    print(f"fuzz {REPLAY}")


# -- the outcomes -------------------------------------------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_fuzzed_inputs_are_the_registered_signature(fuzzed: Results, runtime: str) -> None:
    schema = fuzzed.schemas[runtime]
    served = [(c.name, "double" if c.numeric else "string") for c in schema.columns]
    assert served == list(schema.signature), f"{runtime}: {served}; {REPLAY}"
    assert schema.classes, f"{runtime}: a classifier without classes; {REPLAY}"


def test_no_body_gets_a_server_error(campaign: Campaign) -> None:
    assert campaign.sent >= MIN_SENT, f"{campaign.sent} bodies sent; {REPLAY}"
    offenders = campaign.server_errors
    assert not offenders, campaign.failure("bodies got a 5xx or no answer", offenders)


def test_every_answer_is_a_prediction_per_row_or_a_4xx_naming_the_problem(
    campaign: Campaign,
) -> None:
    assert campaign.sent >= MIN_SENT, f"{campaign.sent} bodies sent; {REPLAY}"
    offenders = campaign.bad_answers
    what = "answers were neither a prediction per row nor a 4xx naming the problem"
    assert not offenders, campaign.failure(what, offenders)


def test_the_server_stays_ready_after_every_body(campaign: Campaign) -> None:
    assert campaign.sent >= MIN_SENT, f"{campaign.sent} bodies sent; {REPLAY}"
    offenders = campaign.not_ready
    assert not offenders, campaign.failure("readiness checks failed", offenders)


def test_valid_rows_reach_the_model(campaign: Campaign) -> None:
    sent, answered = campaign.valid_sent, campaign.valid_answered
    assert sent >= MIN_VALID_SENT, f"{campaign.runtime}/{campaign.protocol}: {sent=}; {REPLAY}"
    what = f"of {sent} valid-row bodies got no predictions ({MIN_VALID_SHARE:.0%} must get them)"
    assert answered / sent >= MIN_VALID_SHARE, campaign.failure(what, campaign.valid_refused)
