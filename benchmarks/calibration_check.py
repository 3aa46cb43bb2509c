"""Check losscli --calibration against the libraries themselves, once (not a test dependency).

Run with an interpreter that has torch, torchmetrics and scikit-learn, pointing at a losscli:

    /work/refenv/bin/python benchmarks/calibration_check.py --losscli .venv/bin/losscli

Binary: ECE (norm l1) and MCE (norm max) against torchmetrics' BinaryCalibrationError, the
reliability curve against scikit-learn's calibration_curve(strategy="uniform") and the Brier
score against brier_score_loss, within 1e-9, on float64 data with no value on a bin edge.
Multiclass: ECE/MCE against MulticlassCalibrationError, which computes in float32 (about 1e-7).
Edges: losscli's bin edges against torch.linspace for every --bins up to 1,200 (float64 and
float32), and ECE/MCE against torchmetrics on data ON the edges, with many probabilities exactly
1.0 and random-forest-style k/20 probabilities (binary float64 and float32, multiclass): the bins
must be torchmetrics' own (1e-12 binary float64; float32 and multiclass, whose sums torchmetrics
keeps in float32, within 2e-5, where one row in a wrong bin moves ECE by about 1e-4).

Last run (torch 2.13.0+cpu, torchmetrics 1.9.0, scikit-learn 1.x): edges identical for every
bins; binary largest difference 2.8e-15; data on the edges 1.4e-15 (float64), 8.8e-7 (float32)
and the k/20 multiclass data 1.0e-6 (torchmetrics sums in float32).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def run(losscli: str, *args: str) -> dict:
    cmd = [losscli, *args, "--calibration", "--format", "json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr)
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--losscli", default="losscli")
    ap.add_argument("--bins", type=int, default=15)
    args = ap.parse_args()
    import torch
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss
    from torchmetrics.classification import BinaryCalibrationError, MulticlassCalibrationError

    rng = np.random.default_rng(0)
    n, bins = 200_000, args.bins
    p = rng.beta(0.6, 0.9, n)
    edges = np.linspace(0, 1, bins + 1)
    p = p[np.abs(p[:, None] - edges[None, :]).min(axis=1) > 1e-12]  # no value on a bin edge
    y = (rng.random(len(p)) < p**1.2).astype(np.int64)
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "p.npy", p)
        np.save(Path(tmp) / "y.npy", y)
        files = str(Path(tmp) / "p.npy"), str(Path(tmp) / "y.npy")
        doc = run(args.losscli, "bce", *files, "--bins", str(bins))
        pt, yt = torch.from_numpy(p), torch.from_numpy(y)
        for norm, key in (("l1", "ece"), ("max", "mce")):
            ref = float(BinaryCalibrationError(n_bins=bins, norm=norm).double()(pt, yt))
            worst = max(worst, abs(doc[key] - ref))
            print(f"bce {key}: losscli {doc[key]!r} torchmetrics {ref!r} diff {abs(doc[key] - ref):.2e}")
        frac, mean = calibration_curve(y, p, n_bins=bins, strategy="uniform")
        rows = [r for r in doc["calibration"]["reliability"] if r["count"]]
        curve = max(
            np.abs(np.array([r["observed"] for r in rows]) - frac).max(),
            np.abs(np.array([r["confidence"] for r in rows]) - mean).max(),
        )
        brier = brier_score_loss(y, p)
        print(f"bce reliability curve vs calibration_curve: max diff {curve:.2e}")
        print(f"bce brier: losscli {doc['brier']!r} sklearn {brier!r} diff {abs(doc['brier'] - brier):.2e}")
        worst = max(worst, curve, abs(doc["brier"] - brier))
        c = 10
        logits = rng.normal(size=(50_000, c)) * 2
        labels = rng.integers(0, c, 50_000)
        np.save(Path(tmp) / "z.npy", logits)
        np.save(Path(tmp) / "l.npy", labels)
        doc = run(args.losscli, "ce", str(Path(tmp) / "z.npy"), str(Path(tmp) / "l.npy"), "--bins", str(bins))
        probs = torch.softmax(torch.from_numpy(logits), dim=1)
        for norm, key in (("l1", "ece"), ("max", "mce")):
            metric = MulticlassCalibrationError(num_classes=c, n_bins=bins, norm=norm)
            ref = float(metric(probs.float(), torch.from_numpy(labels)))
            diff = abs(doc[key] - ref)
            print(f"ce {key}: losscli {doc[key]!r} torchmetrics(float32) {ref!r} diff {diff:.2e}")
            if abs(doc[key] - ref) > 1e-6:
                return 1
        worst = max(worst, edges_and_ones(args.losscli, tmp, torch))
    print(f"binary: largest difference {worst:.2e} (required <= 1e-9)")
    return 0 if worst <= 1e-9 else 1


def edges_and_ones(losscli: str, tmp: str, torch) -> float:  # type: ignore[no-untyped-def]
    """Edges as torch.linspace; values on them, 1.0 and k/20 binned as torchmetrics bins them."""
    from torchmetrics.classification import BinaryCalibrationError, MulticlassCalibrationError

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from losscli.engine.calibration_edges import torch_edges

    for float32, dtype in ((False, torch.float64), (True, torch.float32)):
        for n in range(1, 1201):
            ref = torch.linspace(0, 1, n + 1, dtype=dtype).double().numpy()
            if not np.array_equal(torch_edges(n, float32), ref):
                sys.exit(f"edges differ from torch.linspace for bins={n} float32={float32}")
    print("edges: identical to torch.linspace for bins 1..1200, float64 and float32")
    rng = np.random.default_rng(5)
    worst = 0.0
    for bins in (15, 10, 20):
        edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64).numpy()
        p = np.concatenate(
            [edges, np.arange(bins + 1) / bins, np.full(300, 1.0), rng.integers(0, 21, 3000) / 20]
        )
        y = (rng.random(len(p)) < p).astype(np.int64)
        for dt, tol in ((np.float64, 1e-12), (np.float32, 2e-5)):  # float32 sums: ~1e-6
            np.save(Path(tmp) / "pe.npy", p.astype(dt))
            np.save(Path(tmp) / "ye.npy", y)
            doc = run(
                losscli, "bce", str(Path(tmp) / "pe.npy"), str(Path(tmp) / "ye.npy"), "--bins", str(bins)
            )
            for norm, key in (("l1", "ece"), ("max", "mce")):
                ref = float(
                    BinaryCalibrationError(n_bins=bins, norm=norm)(
                        torch.tensor(p.astype(dt)), torch.tensor(y)
                    )
                )
                diff = abs(doc[key] - ref)
                print(
                    f"edges bce {np.dtype(dt).name} bins={bins} {key}: losscli {doc[key]!r} "
                    f"torchmetrics {ref!r} diff {diff:.1e}"
                )
                if diff > tol:
                    sys.exit("edge data: not torchmetrics' bins")
                worst = max(worst, diff if dt is np.float64 else 0.0)
        votes = rng.multinomial(20, rng.dirichlet([0.3] * 3, 4000))
        probs = votes / 20.0
        labels = np.where(rng.random(4000) < 0.8, probs.argmax(axis=1), rng.integers(0, 3, 4000))
        np.save(Path(tmp) / "P.npy", probs)
        np.save(Path(tmp) / "L.npy", labels)
        doc = run(losscli, "ce", str(Path(tmp) / "P.npy"), str(Path(tmp) / "L.npy"), "--bins", str(bins))
        for norm, key in (("l1", "ece"), ("max", "mce")):
            metric = MulticlassCalibrationError(num_classes=3, n_bins=bins, norm=norm)
            ref = float(metric(torch.tensor(probs), torch.tensor(labels)))
            diff = abs(doc[key] - ref)
            print(f"rf ce bins={bins} {key}: losscli {doc[key]!r} torchmetrics {ref!r} diff {diff:.1e}")
            if diff > 2e-5:  # float32 sums differ by ~1e-6; one row in a wrong bin by ~1e-4
                sys.exit("k/20 data: not torchmetrics' multiclass bins")
    return worst


if __name__ == "__main__":
    sys.exit(main())
