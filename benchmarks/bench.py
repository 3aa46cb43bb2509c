"""losscli against the tools people would otherwise use: whole-process wall time and peak RSS.

    python benchmarks/bench.py                 # full scale (the table in BENCHMARKS.md)
    python benchmarks/bench.py --quick         # a tenth of the data, one round: under two minutes
    python benchmarks/bench.py --write BENCHMARKS.md

Every tool runs as a fresh process, tools alternate within each round, the data is read once
beforehand so it sits in the page cache, and the median of the rounds is reported. Peak RSS is
the child's ru_maxrss from wait4. Ratios are losscli's time over the anchor's, measured in the
same session, so they hold on any machine of the same kind.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _losscli_command() -> list[str]:
    """``losscli`` as people run it: this environment's console script (``python -m`` adds runpy,
    15-25 ms), falling back to ``python -m losscli`` where the script is missing."""
    script = Path(sys.executable).parent / "losscli"
    return [str(script)] if script.exists() else [sys.executable, "-m", "losscli"]


LOSSCLI = _losscli_command()
THREAD_ENV = {
    "OMP_NUM_THREADS": "2",
    "MKL_NUM_THREADS": "2",
    "POLARS_MAX_THREADS": "2",
    "OPENBLAS_NUM_THREADS": "2",
}

# workload -> (anchor the target is measured against, max ratio, max peak RSS in MB)
TARGETS = {
    "W1": ("numpy-chunked", 1.5, 256),
    "W2": ("polars", 1.0, 400),
    "W3": ("polars", 1.2, 300),
    "W4": ("numpy-chunked", 1.5, 256),
    "W4C": ("numpy-chunked", 1.5, 256),  # bce --calibration against W4's plain BCE anchor
    "W5": ("torch", 0.2, 256),
    "W6": ("polars", 1.0, 300),
    "W6G": ("polars", 1.0, 400),
    "W6D": ("dask-dataframe", 0.5, None),  # RSS: the client's only; the workers are their own
}
ANCHOR_TOOLS = {
    "W1": ["numpy-chunked", "numpy-whole", "torch", "sklearn"],
    "W2": ["polars", "duckdb", "pandas", "pyarrow-read", "pyarrow-stream"],
    "W3": ["polars", "duckdb", "pyarrow-read"],
    "W4": ["numpy-chunked", "numpy-whole", "torch", "sklearn"],
    "W4C": ["numpy-chunked"],
    "W5": ["torch", "numpy-chunked", "numpy-whole"],
    "W6": ["polars", "duckdb"],
    "W6G": ["polars"],
    "W6D": ["dask-dataframe"],
}
TITLES = {
    "W1": "MSE+MAE, two .npy of {n} float64",
    "W2": "MSE+MAE, one CSV pred,target, {n} rows",
    "W3": "MSE+MAE, Parquet {n} rows",
    "W4": "BCE, {n} float32 probs + labels .npy",
    "W4C": "BCE --calibration (15 bins), W4's {n} probs + labels",
    "W5": "perplexity, logits {n} x {v} float32 .npy",
    "W6": "MSE+MAE, a directory of 20 Parquet shards x {n} rows (pred, target, lang)",
    "W6G": "MSE+MAE --group-by lang (12 values, dictionary), W6's 20 Parquet shards x {n} rows",
    "W6D": "W6 with --engine dask --workers 2: a LocalCluster of 2 single-threaded processes, "
    "start-up included",
}
W6_SHARDS = 20


@dataclass
class Sizes:
    w1: int
    w2: int
    w3: int
    w4: int
    w5: int
    w6: int  # rows per shard
    vocab: int = 50257


def sizes_of(scale: float) -> Sizes:
    return Sizes(
        int(50e6 * scale),
        int(10e6 * scale),
        int(10e6 * scale),
        int(20e6 * scale),
        max(64, int(8192 * scale)),
        int(2.5e6 * scale),
    )


def _write_npy_blocks(path: Path, shape: tuple[int, ...], dtype: str, fill) -> None:
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    step = max(1, (1 << 24) // max(1, int(np.prod(shape[1:], dtype=np.int64))))
    for i in range(0, shape[0], step):
        arr[i : i + step] = fill(i, min(shape[0], i + step))
    arr.flush()
    del arr


def generate(data: Path, s: Sizes) -> None:
    """Write every workload's files (skipped when already there at this size)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    data.mkdir(parents=True, exist_ok=True)
    generate_w6(data, s.w6)
    stamp = data / "sizes.txt"
    if stamp.exists() and stamp.read_text() == repr(Sizes(**{**s.__dict__, "w6": 0})):
        return
    rng = np.random.default_rng(0)
    print(f"generating data in {data} ...", file=sys.stderr)
    _write_npy_blocks(data / "w1_target.npy", (s.w1,), "f8", lambda a, b: rng.normal(0, 10, b - a))
    _write_npy_blocks(data / "w1_pred.npy", (s.w1,), "f8", lambda a, b: rng.normal(0, 10, b - a))
    y = rng.normal(0, 10, s.w2)
    table = pa.table({"pred": y + rng.normal(0, 1, s.w2), "target": y})
    pacsv.write_csv(table, data / "w2.csv")
    y = rng.normal(0, 10, s.w3)
    pq.write_table(pa.table({"pred": y + rng.normal(0, 1, s.w3), "target": y}), data / "w3.parquet")
    _write_npy_blocks(
        data / "w4_prob.npy", (s.w4,), "f4", lambda a, b: rng.uniform(1e-4, 1 - 1e-4, b - a).astype("f4")
    )
    _write_npy_blocks(
        data / "w4_label.npy", (s.w4,), "f4", lambda a, b: (rng.random(b - a) < 0.5).astype("f4")
    )
    _write_npy_blocks(
        data / "w5_logits.npy",
        (s.w5, s.vocab),
        "f4",
        lambda a, b: rng.standard_normal((b - a, s.vocab), dtype=np.float32) * 3,
    )
    np.save(data / "w5_ids.npy", rng.integers(0, s.vocab, s.w5))
    stamp.write_text(repr(Sizes(**{**s.__dict__, "w6": 0})))


def generate_w6(data: Path, rows: int) -> None:
    """W6: batch inference's output, 20 Parquet shards of pred, target (float64) and lang (12
    languages, dictionary-encoded), as pyarrow writes them (snappy); cached by its own stamp."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = data / "w6"
    stamp = data / "w6_rows.txt"
    if stamp.exists() and stamp.read_text() == str(rows):
        return
    print(f"generating W6 in {folder} ...", file=sys.stderr)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    langs = pa.array(["ar", "de", "en", "es", "fr", "hi", "it", "ja", "ko", "pt", "ru", "zh"])
    rng = np.random.default_rng(6)
    for i in range(W6_SHARDS):
        y = rng.normal(0, 10, rows)
        lang = pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 12, rows).astype(np.int32)), langs)
        table = pa.table({"pred": y + rng.normal(0, 1, rows), "target": y, "lang": lang})
        pq.write_table(table, folder / f"part-{i:05d}.parquet")
    stamp.write_text(str(rows))


def warm(paths: list[Path]) -> None:
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass


@dataclass
class Run:
    seconds: float
    rss_mb: float
    output: str


TIME = "/usr/bin/time"
NOTES_MARKER = "<!-- notes: kept when the table above is regenerated -->"


def run_measured(cmd: list[str]) -> Run:
    """Wall time around the child; peak RSS from GNU time (or wait4 when it is missing).

    ru_maxrss of a forked child starts at its parent's RSS, so wait4 alone would report this
    harness's own footprint for small children; /usr/bin/time forks from a tiny process.
    """
    env = {**os.environ, **THREAD_ENV, "PYTHONPATH": str(ROOT / "src")}
    out_path, err_path, rss_path = HERE / ".bench_stdout", HERE / ".bench_stderr", HERE / ".bench_rss"
    use_time = os.path.exists(TIME)
    full = [TIME, "-f", "%M", "-o", str(rss_path), *cmd] if use_time else cmd
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(full, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err_path.read_text()[-500:]}")
    kb = float(rss_path.read_text().split()[-1]) if use_time else usage.ru_maxrss
    return Run(seconds, kb / 1024.0, out_path.read_text())


def losscli_cmd(workload: str, d: Path) -> list[str]:
    if workload == "W1":
        return [*LOSSCLI, "mse", str(d / "w1_pred.npy"), str(d / "w1_target.npy"), "-f", "json"]
    if workload in ("W6", "W6D"):
        engine = ["--engine", "dask", "--workers", "2"] if workload == "W6D" else []
        return [
            *LOSSCLI,
            "mse",
            str(d / "w6"),
            "--pred-col",
            "pred",
            "--target-col",
            "target",
            "-f",
            "json",
            *engine,
        ]
    if workload == "W6G":
        opts = ["--pred-col", "pred", "--target-col", "target", "--group-by", "lang", "-f", "json"]
        return [*LOSSCLI, "mse", str(d / "w6"), *opts]
    if workload in ("W2", "W3"):
        name = "w2.csv" if workload == "W2" else "w3.parquet"
        return [*LOSSCLI, "mse", str(d / name), "--pred-col", "pred", "--target-col", "target", "-f", "json"]
    if workload in ("W4", "W4C"):
        calibration = ["--calibration"] if workload == "W4C" else []
        return [
            *LOSSCLI,
            "bce",
            str(d / "w4_prob.npy"),
            str(d / "w4_label.npy"),
            "--input",
            "probs",
            "-f",
            "json",
            *calibration,
        ]
    return [
        *LOSSCLI,
        "perplexity",
        "--logits",
        str(d / "w5_logits.npy"),
        "--targets",
        str(d / "w5_ids.npy"),
        "-f",
        "json",
    ]


def files_of(workload: str, d: Path) -> list[Path]:
    return {
        "W1": [d / "w1_pred.npy", d / "w1_target.npy"],
        "W2": [d / "w2.csv"],
        "W3": [d / "w3.parquet"],
        "W4": [d / "w4_prob.npy", d / "w4_label.npy"],
        "W4C": [d / "w4_prob.npy", d / "w4_label.npy"],
        "W5": [d / "w5_logits.npy", d / "w5_ids.npy"],
        "W6": sorted((d / "w6").glob("*.parquet")),
        "W6G": sorted((d / "w6").glob("*.parquet")),
        "W6D": sorted((d / "w6").glob("*.parquet")),
    }[workload]


def available(tool: str) -> bool:
    module = {
        "torch": "torch",
        "sklearn": "sklearn",
        "duckdb": "duckdb",
        "polars": "polars",
        "pandas": "pandas",
        "dask-dataframe": "dask.dataframe",
    }.get(tool)
    if module is None:
        return True
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # dask.dataframe without dask
        return False


def fmt_row(cells: list[str], widths: list[int]) -> str:
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the full data sizes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="scale 0.1, one round")
    ap.add_argument("--data", type=Path, default=HERE / "data")
    ap.add_argument(
        "--only",
        nargs="*",
        help="workloads to run (W1..W6, W4C, W6G, W6D, C1, C2, ci, report, startup, flat)",
    )
    ap.add_argument("--write", type=Path, help="also write the table to this Markdown file")
    args = ap.parse_args()
    if args.quick:
        args.scale, args.rounds = 0.1, 1
    s = sizes_of(args.scale)
    chosen = args.only or [
        "W1",
        "W2",
        "W3",
        "W4",
        "W4C",
        "W5",
        "W6",
        "W6G",
        "W6D",
        "C1",
        "C2",
        "ci",
        "report",
        "startup",
        "flat",
    ]
    if any(c.startswith(("W", "flat", "ci")) for c in chosen):  # C1 reuses W1's files; C2 writes its own
        generate(args.data, s)
    lines: list[str] = []
    verdicts: list[str] = []
    headers = ["workload", "tool", "median s", "MB/s", "peak RSS MB", "losscli / tool", "target"]
    rows: list[list[str]] = []
    from compare_bench import run_compare_workloads

    rows += run_compare_workloads(chosen, args.data, args.rounds, run_measured, LOSSCLI, warm, verdicts)
    for w in [c for c in chosen if c.startswith("W")]:
        files = files_of(w, args.data)
        warm(files)
        size_mb = sum(f.stat().st_size for f in files) / 1e6
        tools = ["losscli"] + [t for t in ANCHOR_TOOLS[w] if available(t)]
        times: dict[str, list[float]] = {t: [] for t in tools}
        rss: dict[str, list[float]] = {t: [] for t in tools}
        outputs: dict[str, str] = {}
        for _ in range(args.rounds):
            for t in tools:
                cmd = (
                    losscli_cmd(w, args.data)
                    if t == "losscli"
                    else [sys.executable, str(HERE / "anchors.py"), w.rstrip("C"), t, str(args.data)]
                )
                r = run_measured(cmd)
                times[t].append(r.seconds)
                rss[t].append(r.rss_mb)
                outputs[t] = r.output
        med = {t: statistics.median(v) for t, v in times.items()}
        anchor, max_ratio, max_rss = TARGETS[w]
        n = {
            "W1": s.w1,
            "W2": s.w2,
            "W3": s.w3,
            "W4": s.w4,
            "W4C": s.w4,
            "W5": s.w5,
            "W6": s.w6,
            "W6G": s.w6,
            "W6D": s.w6,
        }[w]
        title = f"{w} {TITLES[w].format(n=f'{n:,}', v=s.vocab)}"
        for t in tools:
            ratio = med["losscli"] / med[t]
            target = ""
            rss_ok = max_rss is None or max(rss["losscli"]) <= max_rss
            if t == "losscli" and max_rss is not None:
                target = f"RSS <= {max_rss} MB: {'met' if rss_ok else 'MISSED'}"
            elif t == anchor:
                ok = ratio <= max_ratio
                target = f"<= {max_ratio}: {'met' if ok else 'MISSED'}"
                verdicts.append(
                    f"{w}: {ratio:.2f}x {anchor} (target <= {max_ratio}) {'met' if ok else 'MISSED'}"
                    + (
                        ""
                        if max_rss is None
                        else f"; peak RSS {max(rss['losscli']):.0f} MB (target <= {max_rss}) "
                        f"{'met' if rss_ok else 'MISSED'}"
                    )
                )
            rows.append(
                [
                    title if t == "losscli" else "",
                    t,
                    f"{med[t]:.3f}",
                    f"{size_mb / med[t]:,.0f}",
                    f"{max(rss[t]):.0f}",
                    "" if t == "losscli" else f"{ratio:.2f}",
                    target,
                ]
            )
        _agree(w, outputs)
        if w == "W6D":
            verdicts.append(_same_as_local(args.data, outputs["losscli"]))
        print(f"{w} done: losscli {med['losscli']:.3f}s", file=sys.stderr)
    if "report" in chosen:
        verdicts.append(_report_cost(args.data, args.rounds))
    if "ci" in chosen:
        rows.extend(_ci_rows(args.data, args.rounds, verdicts))
    if "startup" in chosen:
        rows.extend(_startup(args.rounds, verdicts))
    if "flat" in chosen:
        rows.extend(_flat_rss(args.data, verdicts, args.scale))
        rows.extend(_flat_w5(args.data, verdicts, args.scale))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines.append(fmt_row(headers, widths))
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines.extend(fmt_row(r, widths) for r in rows)
    report = "\n".join(lines) + "\n\n" + "\n".join(f"- {v}" for v in verdicts) + "\n"
    print(report)
    if args.write:
        _write_md(args.write, report, args)
    return 0 if all("MISSED" not in v for v in verdicts) else 1


def _report_cost(data: Path, rounds: int) -> str:
    """--report PATH.html on W1, alternated with the same run without it: the page is drawn from
    the state, so its cost is fixed (matplotlib's import and drawing), whatever the data size."""
    import tempfile

    plain, report = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(max(rounds, 3)):
            plain.append(run_measured(losscli_cmd("W1", data)).seconds)
            report.append(run_measured([*losscli_cmd("W1", data), "--report", f"{tmp}/r.html"]).seconds)
    added = statistics.median(report) - statistics.median(plain)
    return f"--report on W1 adds {added:.2f} s (target < 1 s) {'met' if added < 1.0 else 'MISSED'}"


def _agree(w: str, outputs: dict[str, str]) -> None:
    """losscli's figures must match the anchors' (to 1e-6: anchors use plain float sums)."""
    import json

    data = json.loads(outputs["losscli"])
    if w == "W6G":
        mine = [v for g in data["groups"] for v in (g["value"], g["mae"])]
    elif w in ("W1", "W2", "W3", "W6", "W6D"):
        mine = [data["value"], data["mae"]]
    elif w in ("W4", "W4C"):
        mine = [data["value"]]
    else:
        mine = [data["value"], data["cross_entropy"]]
    for tool, out in outputs.items():
        if tool == "losscli":
            continue
        theirs = [float(x) for x in out.split()]
        for a, b in zip(mine, theirs, strict=False):
            if not np.isclose(a, b, rtol=1e-5):
                print(f"warning: {w} {tool} gives {b!r}, losscli {a!r}", file=sys.stderr)


def _same_as_local(data: Path, dask_output: str) -> str:
    """--engine dask must give the local engine's figures exactly (the same states, merged alike)."""
    import json

    local = json.loads(run_measured(losscli_cmd("W6", data)).output)
    dask = json.loads(dask_output)
    same = all(local[k] == dask[k] for k in ("value", "mae", "rmse", "n", "examples"))
    return f"W6D: figures {'identical to' if same else 'DIFFER from (MISSED)'} --engine local's"


CI_LIMIT = 1.15  # --ci (analytic) on W1, as a ratio of the same run without it


def _ci_rows(data: Path, rounds: int, verdicts: list[str]) -> list[list[str]]:
    """W1 with --ci against W1 plain, interleaved in each round (the anchor is losscli itself:
    the interval's cost), then --ci --bootstrap 1000 once, reported without a target."""
    files = files_of("W1", data)
    warm(files)
    plain_cmd = losscli_cmd("W1", data)
    times: dict[str, list[float]] = {"plain": [], "ci": []}
    rss: dict[str, list[float]] = {"plain": [], "ci": []}
    for _ in range(max(rounds, 3)):
        for name, cmd in (("plain", plain_cmd), ("ci", [*plain_cmd, "--ci"])):
            r = run_measured(cmd)
            times[name].append(r.seconds)
            rss[name].append(r.rss_mb)
    boot = run_measured([*plain_cmd, "--bootstrap", "1000"])
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["ci"] / med["plain"]
    ok = ratio <= CI_LIMIT
    verdicts.append(f"W1 --ci: {ratio:.2f}x a plain run (target <= {CI_LIMIT}) {'met' if ok else 'MISSED'}")
    verdicts.append(
        f"W1 --ci --bootstrap 1000: {boot.seconds:.1f} s, {boot.seconds / med['plain']:.0f}x a plain run "
        f"(one run, no target), peak RSS {boot.rss_mb:.0f} MB"
    )
    title = "W1CI MSE+MAE of W1's .npy files with --ci"
    return [
        [
            title,
            "losscli --ci",
            f"{med['ci']:.3f}",
            "",
            f"{max(rss['ci']):.0f}",
            f"{ratio:.2f}",
            f"<= {CI_LIMIT}x plain: {'met' if ok else 'MISSED'}",
        ],
        ["", "losscli (plain)", f"{med['plain']:.3f}", "", f"{max(rss['plain']):.0f}", "", ""],
        [
            "",
            "losscli --bootstrap 1000",
            f"{boot.seconds:.3f}",
            "",
            f"{boot.rss_mb:.0f}",
            f"{boot.seconds / med['plain']:.1f}",
            "reported, no target",
        ],
    ]


def _startup(rounds: int, verdicts: list[str]) -> list[list[str]]:
    ex = ROOT / "sample_data"
    cases = [
        ("losscli --version", [*LOSSCLI, "--version"], 0.080),
        (
            "three-row CSV mse",
            [
                *LOSSCLI,
                "mse",
                str(ex / "exercise1_preds.csv"),
                str(ex / "exercise1_targets.csv"),
                "-f",
                "value",
            ],
            0.250,
        ),
    ]
    rows = []
    for name, cmd, limit in cases:
        times = sorted(run_measured(cmd).seconds for _ in range(max(5, rounds)))
        med = statistics.median(times)
        ok = med <= limit
        verdict = "met" if ok else "MISSED"
        verdicts.append(f"start-up, {name}: {med * 1000:.0f} ms (target <= {limit * 1000:.0f} ms) {verdict}")
        rows.append(
            [
                f"start-up: {name}",
                "losscli",
                f"{med:.3f}",
                "",
                "",
                "",
                f"<= {limit * 1000:.0f} ms: {'met' if ok else 'MISSED'}",
            ]
        )
    return rows


def _flat_verdict(
    name: str,
    sizes: tuple[str, str],
    peaks: tuple[float, float],
    verdicts: list[str],
    limit_mb: float | None = None,
) -> list[list[str]]:
    """One verdict and one table row for 'peak RSS the same at two input sizes'."""
    small, big = peaks
    spread = abs(big - small) / small
    ok = spread <= 0.10 and (limit_mb is None or big <= limit_mb)
    verdict = "met" if ok else "MISSED"
    bound = "" if limit_mb is None else f" and <= {limit_mb:.0f} MB"
    verdicts.append(
        f"flat RSS: {name} peak {small:.0f} MB at {sizes[0]}, {big:.0f} MB at {sizes[1]} "
        f"({spread:.0%} apart, target <= 10%{bound}) {verdict}"
    )
    label = f"flat RSS: {name} {sizes[0]} vs {sizes[1]}"
    return [[label, "losscli", "", "", f"{small:.0f} / {big:.0f}", "", f"<= 10% apart: {verdict}"]]


def _flat_rss(data: Path, verdicts: list[str], scale: float) -> list[list[str]]:
    """Peak RSS of W1 at 10M and 50M rows (scaled): flat within 10%."""
    small = data / "flat"
    small.mkdir(exist_ok=True)
    n_small = int(10e6 * scale)
    rng = np.random.default_rng(1)
    for name in ("w1_pred.npy", "w1_target.npy"):
        path = small / name
        if not path.exists() or np.load(path, mmap_mode="r").shape[0] != n_small:
            _write_npy_blocks(path, (n_small,), "f8", lambda a, b: rng.normal(0, 10, b - a))
    peaks = []
    for d in (small, data):
        warm(files_of("W1", d))
        peaks.append(max(run_measured(losscli_cmd("W1", d)).rss_mb for _ in range(2)))
    sizes = (f"{n_small:,} rows", f"{sizes_of(scale).w1:,} rows")
    return _flat_verdict("W1", sizes, (peaks[0], peaks[1]), verdicts)


def _flat_w5(data: Path, verdicts: list[str], scale: float) -> list[list[str]]:
    """Peak RSS of W5 at T = 2048 and T = 32768 token rows (scaled): the same within 10%."""
    d = data / "flat5"
    d.mkdir(exist_ok=True)
    vocab = 50257
    rng = np.random.default_rng(2)
    lengths = (max(64, int(2048 * scale)), max(256, int(32768 * scale)))
    peaks = []
    for t in lengths:
        logits, ids = d / f"logits_{t}.npy", d / f"ids_{t}.npy"
        if not logits.exists() or np.load(logits, mmap_mode="r").shape[0] != t:
            _write_npy_blocks(
                logits,
                (t, vocab),
                "f4",
                lambda a, b: rng.standard_normal((b - a, vocab), dtype=np.float32) * 3,
            )
            np.save(ids, rng.integers(0, vocab, t))
        warm([logits, ids])
        cmd = [*LOSSCLI, "perplexity", "--logits", str(logits), "--targets", str(ids), "-f", "value"]
        peaks.append(max(run_measured(cmd).rss_mb for _ in range(2)))
    sizes = (f"T={lengths[0]}", f"T={lengths[1]}")
    return _flat_verdict("W5", sizes, (peaks[0], peaks[1]), verdicts, limit_mb=256)


def _write_md(path: Path, table: str, args: argparse.Namespace) -> None:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    head = (
        "# Benchmarks\n\n"
        f"Machine: {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}.\n"
        f"Run: {time.strftime('%Y-%m-%d')}, "
        f"`python benchmarks/bench.py --scale {args.scale} --rounds {args.rounds}` (`make bench`).\n\n"
        "Whole-process wall time, median of the rounds, each tool a fresh process, files in the page cache; "
        "peak RSS from wait4. Ratios are losscli's time over the tool's in the same session.\n\n"
    )
    notes = ""
    if path.exists() and NOTES_MARKER in path.read_text():
        notes = path.read_text()[path.read_text().index(NOTES_MARKER) :]
    path.write_text(head + table + ("\n" + notes if notes else ""))


if __name__ == "__main__":
    sys.exit(main())
