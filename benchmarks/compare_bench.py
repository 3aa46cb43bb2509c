"""The `losscli compare` benchmarks (run by bench.py as C1 and C2).

C1: `compare mse TARGETS A B` on W1's 50M-row .npy files (a second prediction file is written
    beside them if missing) against one plain `losscli mse A TARGETS`: <= 1.5x, peak RSS <= 256 MB.
C2: `compare mse --test bootstrap --resamples 1000` on 1M paired examples against a numpy paired
    bootstrap written as sacrebleu's `--paired-bs` does it (indices resampled with replacement
    1,000 times, the difference of the two models' means each time): <= 0.2x.

    python benchmarks/compare_bench.py numpy-bootstrap DIR     # the C2 anchor, as a process
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

C2_ROWS = 1_000_000
C2_RESAMPLES = 1000
TITLES = {
    "C1": "compare mse TARGETS A B (t test), W1's .npy of {n} float64",
    "C2": "compare --test bootstrap --resamples 1000, {n} paired examples (.npy)",
}


def c1_files(data: Path) -> list[Path]:
    """W1's files and a second model's predictions beside them (written once, if missing)."""
    second = data / "w1_pred_b.npy"
    if not second.exists():
        n = int(np.load(data / "w1_pred.npy", mmap_mode="r").shape[0])
        rng = np.random.default_rng(1)
        out = np.lib.format.open_memmap(second, mode="w+", dtype="f8", shape=(n,))
        step = 1 << 22
        for i in range(0, n, step):
            out[i : i + step] = rng.normal(0, 10, min(n, i + step) - i)
        out.flush()
        del out
    return [data / "w1_target.npy", data / "w1_pred.npy", second]


def c2_files(folder: Path) -> list[Path]:
    """1M targets and two models' predictions (B slightly worse), written once."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"{name}.npy" for name in ("y", "a", "b")]
    if not all(f.exists() for f in files):
        rng = np.random.default_rng(2)
        y = rng.normal(0, 10, C2_ROWS)
        np.save(files[0], y)
        np.save(files[1], y + rng.normal(0, 1, C2_ROWS))
        np.save(files[2], y + rng.normal(0, 1.01, C2_ROWS))
    return files


def numpy_bootstrap(folder: Path) -> None:
    """sacrebleu's paired bootstrap: resample example indices with replacement, B times."""
    y, a, b = (np.load(folder / f"{name}.npy") for name in ("y", "a", "b"))
    la, lb = (a - y) ** 2, (b - y) ** 2
    rng = np.random.default_rng(12345)
    deltas = np.empty(C2_RESAMPLES)
    for r in range(C2_RESAMPLES):
        idx = rng.integers(0, len(y), len(y))
        deltas[r] = lb[idx].mean() - la[idx].mean()
    lo, hi = np.quantile(deltas, [0.025, 0.975])
    print(float(np.mean(lb - la)), float(lo), float(hi))


def run_compare_workloads(
    chosen: list[str],
    data: Path,
    rounds: int,
    run_measured: Callable[[list[str]], object],
    losscli: list[str],
    warm: Callable[[list[Path]], None],
    verdicts: list[str],
) -> list[list[str]]:
    """C1 and C2, each tool alternating within a round; rows for bench.py's table."""
    rows: list[list[str]] = []
    for w in [c for c in chosen if c in ("C1", "C2")]:
        if w == "C1":
            t, a, b = c1_files(data)
            tools = {
                "losscli compare": [*losscli, "compare", "mse", str(t), str(a), str(b), "-f", "json"],
                "losscli mse": [*losscli, "mse", str(a), str(t), "-f", "json"],
            }
            anchor, limit, rss_limit, n = "losscli mse", 1.5, 256.0, int(np.load(t, mmap_mode="r").shape[0])
            files = [t, a, b]
        else:
            folder = Path(__file__).resolve().parent / "data" / "c2"
            files = c2_files(folder)
            t, a, b = files
            tools = {
                "losscli compare": [
                    *losscli,
                    "compare",
                    "mse",
                    str(t),
                    str(a),
                    str(b),
                    "--test",
                    "bootstrap",
                    "--resamples",
                    str(C2_RESAMPLES),
                    "-f",
                    "json",
                ],
                "numpy-bootstrap": [sys.executable, __file__, "numpy-bootstrap", str(folder)],
            }
            anchor, limit, rss_limit, n = "numpy-bootstrap", 0.2, None, C2_ROWS
        warm(files)
        times: dict[str, list[float]] = {k: [] for k in tools}
        rss: dict[str, list[float]] = {k: [] for k in tools}
        for _ in range(rounds):
            for name, cmd in tools.items():
                r = run_measured(cmd)
                times[name].append(r.seconds)  # type: ignore[attr-defined]
                rss[name].append(r.rss_mb)  # type: ignore[attr-defined]
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio = med["losscli compare"] / med[anchor]
        ok = ratio <= limit and (rss_limit is None or max(rss["losscli compare"]) <= rss_limit)
        rss_text = (
            ""
            if rss_limit is None
            else f"; peak RSS {max(rss['losscli compare']):.0f} MB (<= {rss_limit:.0f})"
        )
        verdicts.append(
            f"{w}: {ratio:.2f}x {anchor} (target <= {limit}){rss_text} {'met' if ok else 'MISSED'}"
        )
        for name in tools:
            rows.append(
                [
                    f"{w} {TITLES[w].format(n=f'{n:,}')}" if name == "losscli compare" else "",
                    name,
                    f"{med[name]:.3f}",
                    "",
                    f"{max(rss[name]):.0f}",
                    "" if name == "losscli compare" else f"{ratio:.2f}",
                    "" if name != anchor else f"<= {limit}: {'met' if ok else 'MISSED'}",
                ]
            )
        print(f"{w} done: losscli compare {med['losscli compare']:.3f}s", file=sys.stderr)
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "numpy-bootstrap":
        numpy_bootstrap(Path(sys.argv[2]))
    else:
        sys.exit(__doc__)
