"""Batch scoring: ``conveyor predict`` against in-process ONNX Runtime on the same rows.

The demo project (messy churn data: padded headers and values, ``?``/``NA`` markers, a
number column stored as text) is trained once; its champion's verified ONNX model scores
a generated file of raw rows:

- **baseline**: a plain script holding the same ONNX model in ONNX Runtime (1 thread, as
  Conveyor's), reading the same rows already cleaned (float64 and text columns in Parquet)
  in batches of the same size and running the session; nothing written;
- **Conveyor**: ``conveyor predict -i raw.parquet -o answers.parquet``: reads the raw rows,
  cleans them by the model's value rules, checks them, scores with ONNX Runtime and
  writes answers with the model name and version.

Both run as their own processes, alternating, for ``--rounds`` rounds. Rows/s compares the
scoring loops (Conveyor's from its ``--report``, excluding process start and model load)
and also the whole command. Peak memory (RSS of the process tree) is taken on files of
``--rows`` and ``--big-rows`` rows: flat means the chunking holds memory constant.

Usage: python -m benchmarks.batch_scoring [--rows 1000000] [--big-rows 10000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.markers import write_between
from benchmarks.process import BIN, ROOT, timed
from benchmarks.provenance import run_meta

RESULTS = ROOT / "benchmarks" / "results-batch.json"
DOC = ROOT / "docs" / "benchmarks.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
START, END = "<!-- batch:start -->", "<!-- batch:end -->"
SECTION = "## Batch scoring"
CHUNK_ROWS = 50_000
GOAL_RATIO = 0.8
GOAL_MEMORY_RATIO = 1.25


def write_rows(path: Path, rows: int, *, seed: int) -> None:
    """Raw demo rows (messy, as exported) to Parquet, 500,000 at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from conveyor.data.synthetic import make_demo_dataset

    writer = None
    for start in range(0, rows, 500_000):
        frame = make_demo_dataset(min(500_000, rows - start), seed=seed + start // 500_000)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table.cast(writer.schema))
    assert writer is not None
    writer.close()


def prepare(folder: Path, rows: int, big_rows: int) -> dict[str, Any]:
    """Train the demo champion; write the raw files and the cleaned copy for the baseline."""
    conveyor = str(BIN / "conveyor")
    subprocess.run([conveyor, "demo", "--dir", str(folder), "--rows", "20000"], check=True)
    subprocess.run([conveyor, "run", "-c", str(folder / "conveyor.yaml")], check=True, cwd=folder)
    files = {"raw": folder / "raw.parquet", "big": folder / "big.parquet"}
    write_rows(files["raw"], rows, seed=100)
    write_rows(files["big"], big_rows, seed=100)
    model, clean = folder / "model.onnx", folder / "clean.parquet"
    _clean_copy(folder, files["raw"], clean, model)
    return {**files, "clean": clean, "model": model, "project": folder}


def _clean_copy(folder: Path, raw: Path, clean: Path, model: Path) -> None:
    """The raw rows cleaned once (not timed), and the champion's ONNX bytes, for the baseline."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from conveyor.config import DataConfig
    from conveyor.data.batches import open_chunks
    from conveyor.pipeline.scoring import clean_chunk
    from conveyor.registry.store import ModelRegistry
    from conveyor.serving.slot import load_version

    registry = ModelRegistry(f"sqlite:///{folder / '.conveyor' / 'mlflow.db'}")
    info = registry.get_alias("churn-demo", "champion")
    assert info is not None
    data = registry.load_onnx(info)
    assert data is not None, "the demo champion has no verified ONNX model"
    model.write_bytes(data)
    schema = load_version(registry, info).schema
    writer = None
    for chunk in open_chunks(DataConfig(source=str(raw), target="-")).chunks:
        frame = chunk.frame.set_axis(schema.canonical(list(chunk.frame.columns)), axis=1)
        columns, _, _ = clean_chunk(schema, frame, text=False)
        table = pa.table(columns)
        writer = writer or pq.ParquetWriter(clean, table.schema)
        writer.write_table(table.cast(writer.schema))
    assert writer is not None
    writer.close()


BASELINE = """
import json, sys, time
import numpy as np, onnxruntime as ort, pyarrow.parquet as pq
model, clean, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
options = ort.SessionOptions()
options.intra_op_num_threads = options.inter_op_num_threads = 1
options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
names = json.loads(session.get_modelmeta().custom_metadata_map["conveyor.input_columns"])
missing = json.loads(session.get_modelmeta().custom_metadata_map["conveyor.missing_strings"])
inputs = session.get_inputs()
output = session.get_outputs()[-1].name
started, rows = time.perf_counter(), 0
for batch in pq.ParquetFile(clean).iter_batches(batch_size=chunk):
    feeds = {}
    for node, name in zip(inputs, names):
        column = batch.column(name)
        if node.type == "tensor(string)":
            values = column.fill_null(missing.get(name, "")).to_numpy(zero_copy_only=False)
            feeds[node.name] = values.astype(object).reshape(-1, 1)
        else:
            dtype = np.float32 if node.type == "tensor(float)" else np.float64
            feeds[node.name] = column.to_numpy(zero_copy_only=False).astype(dtype).reshape(-1, 1)
    session.run([output], feeds)
    rows += batch.num_rows
print(json.dumps({"rows": rows, "loop_s": time.perf_counter() - started}))
"""


def run_baseline(files: dict[str, Any]) -> dict[str, Any]:
    argv = [sys.executable, "-c", BASELINE, str(files["model"]), str(files["clean"])]
    wall, peak, out = timed([*argv, str(CHUNK_ROWS)])
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "wall_s": wall, "peak_rss_mb": peak / 2**20}


def run_conveyor(files: dict[str, Any], source: Path) -> dict[str, Any]:
    folder = files["project"]
    report = folder / "report.json"
    argv = [str(BIN / "conveyor"), "predict", "-c", str(folder / "conveyor.yaml")]
    argv += ["-i", str(source), "-o", str(folder / "answers.parquet"), "--report", str(report)]
    argv += ["--chunk-rows", str(CHUNK_ROWS)]
    wall, peak, _ = timed(argv, cwd=folder)
    done = json.loads(report.read_text(encoding="utf-8"))
    return {
        "rows": done["rows"],
        "rejected": done["rejected"],
        "runtime": done["runtime"],
        "loop_s": done["seconds"],
        "wall_s": wall,
        "peak_rss_mb": peak / 2**20,
    }


def measure(rows: int, big_rows: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="conveyor-batch-bench-") as tmp:
        files = prepare(Path(tmp) / "demo", rows, big_rows)
        points: list[dict[str, Any]] = []
        for index in range(rounds):
            print(f"round {index + 1}/{rounds}", file=sys.stderr)
            points.append(
                {
                    "baseline": run_baseline(files),
                    "conveyor": run_conveyor(files, files["raw"]),
                    "conveyor_big": run_conveyor(files, files["big"]),
                }
            )
    return {"rows": rows, "big_rows": big_rows, "chunk_rows": CHUNK_ROWS, "rounds": points}


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Medians and spreads of the ratios over the rounds."""
    rounds = result["rounds"]

    def stats(values: list[float]) -> dict[str, float]:
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    loop = [r["baseline"]["loop_s"] / r["conveyor"]["loop_s"] for r in rounds]
    whole = [r["baseline"]["loop_s"] / r["conveyor"]["wall_s"] for r in rounds]
    memory = [r["conveyor_big"]["peak_rss_mb"] / r["conveyor"]["peak_rss_mb"] for r in rounds]
    rows = result["rows"]
    return {
        "baseline_rows_per_s": stats([rows / r["baseline"]["loop_s"] for r in rounds]),
        "conveyor_rows_per_s": stats([rows / r["conveyor"]["loop_s"] for r in rounds]),
        "conveyor_command_rows_per_s": stats([rows / r["conveyor"]["wall_s"] for r in rounds]),
        "loop_ratio": stats(loop),
        "command_ratio": stats(whole),
        "peak_rss_mb": stats([r["conveyor"]["peak_rss_mb"] for r in rounds]),
        "peak_rss_big_mb": stats([r["conveyor_big"]["peak_rss_mb"] for r in rounds]),
        "memory_ratio": stats(memory),
        "baseline_peak_rss_mb": stats([r["baseline"]["peak_rss_mb"] for r in rounds]),
    }


def _spread(s: dict[str, float], fmt: str = "{:,.0f}") -> str:
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"


def render(result: dict[str, Any]) -> str:
    """The Markdown between the markers."""
    s = result["summary"]
    meta = result["meta"]
    loop_met = s["loop_ratio"]["min"] >= GOAL_RATIO
    memory_met = s["memory_ratio"]["max"] <= GOAL_MEMORY_RATIO
    ratio = "{:.0%}"
    lines = [
        f"Measured {meta['date']} on {meta['machine']}, commit {meta['commit'][:10]}; "
        f"{len(result['rounds'])} interleaved rounds, median (min-max); "
        f"chunks of {result['chunk_rows']:,} rows; ONNX Runtime 1 thread in both.",
        "",
        f"| measure ({result['rows']:,} raw demo rows) | Conveyor | baseline (same run) "
        "| ratio | goal |",
        "|---|---|---|---|---|",
        f"| rows/s, scoring loop | {_spread(s['conveyor_rows_per_s'])} | "
        f"{_spread(s['baseline_rows_per_s'])} | {_spread(s['loop_ratio'], ratio)} | "
        f">= {GOAL_RATIO:.0%}: {'met' if loop_met else 'not met'} (every round) |",
        f"| rows/s, whole `conveyor predict` command (start, model load, read, write) | "
        f"{_spread(s['conveyor_command_rows_per_s'])} | {_spread(s['baseline_rows_per_s'])} | "
        f"{_spread(s['command_ratio'], ratio)} | - |",
        "",
        "| peak RSS of `conveyor predict` | "
        f"{result['rows']:,} rows | {result['big_rows']:,} rows | ratio | goal |",
        "|---|---|---|---|---|",
        f"| MB | {_spread(s['peak_rss_mb'])} | {_spread(s['peak_rss_big_mb'])} | "
        f"{_spread(s['memory_ratio'], '{:.2f}')} | <= {GOAL_MEMORY_RATIO:.2f} (flat): "
        f"{'met' if memory_met else 'not met'} (every round) |",
        "",
        f"The baseline process peaks at {_spread(s['baseline_peak_rss_mb'])} MB (it reads "
        "clean columns and loads no registry, MLflow or pandas frames).",
    ]
    return "\n".join(lines)


def render_summary(result: dict[str, Any]) -> str:
    """Two lines for the architecture document, from the same results."""
    s, meta = result["summary"], result["meta"]
    return (
        f"  scoring loop {_spread(s['conveyor_rows_per_s'])} rows/s = "
        f"{_spread(s['loop_ratio'], '{:.0%}')} of ONNX Runtime alone; peak memory "
        f"{s['peak_rss_mb']['median']:,.0f} MB on {result['rows']:,} rows and "
        f"{s['peak_rss_big_mb']['median']:,.0f} MB on {result['big_rows']:,} rows "
        f"(measured {meta['date'][:10]}, {len(result['rounds'])} rounds; "
        "[benchmarks.md](benchmarks.md#batch-scoring))."
    )


def write_doc(body: str, summary: str) -> None:
    """The results into docs/benchmarks.md, the summary into docs/architecture.md."""
    write_between(DOC, START, END, body, section=SECTION)
    write_between(
        ARCHITECTURE, "<!-- batch-summary:start -->", "<!-- batch-summary:end -->", summary
    )


def main() -> None:
    """Measure, print, and record the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args()
    if args.render_only:
        saved = json.loads(RESULTS.read_text(encoding="utf-8"))
        write_doc(render(saved), render_summary(saved))
        return
    meta = run_meta()
    started = time.perf_counter()
    result = measure(args.rows, args.big_rows, args.rounds)
    result["summary"] = summarize(result)
    result["meta"] = {**meta, "seconds": round(time.perf_counter() - started)}
    print(json.dumps(result["summary"], indent=2))
    if not args.no_write:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        write_doc(render(result), render_summary(result))


if __name__ == "__main__":
    main()
