"""Check losscli --calibration against the libraries themselves, once (not a test dependency).

Run with an interpreter that has torch, torchmetrics and scikit-learn, pointing at a losscli:

    /work/refenv/bin/python benchmarks/calibration_check.py --losscli .venv/bin/losscli

Binary: ECE (norm l1) and MCE (norm max) against torchmetrics' BinaryCalibrationError, the
reliability curve against scikit-learn's calibration_curve(strategy="uniform") and the Brier
score against brier_score_loss, within 1e-9, on float64 data with no value on a bin edge.
Multiclass: ECE/MCE against MulticlassCalibrationError, which computes in float32 (about 1e-7).
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
    print(f"binary: largest difference {worst:.2e} (required <= 1e-9)")
    return 0 if worst <= 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
