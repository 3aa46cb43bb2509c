"""Hand-made evaluation states for the state tests: every field set, nothing from the engine.

The tallies are filled through the parts' own update methods from data the test knows, so a
test can compute what a merge must give (sums, worst rows, per-sequence figures) independently.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from losscli.state import Binding, EvalState, Header, InputFile, LossState, Provenance, SequenceStats

#: a quiet NaN with a payload: survives a round trip only if bits are kept, not just "nan"
ODD_NAN = struct.unpack(">d", bytes.fromhex("7ff8000000000abc"))[0]


@dataclass
class Data:
    """What a part scored: per-row losses (rows x outputs), weights, and per-token LM data."""

    row_offset: int
    losses: np.ndarray
    weights: np.ndarray
    tok_seq: np.ndarray  # global sequence id of each token
    tok_pos: np.ndarray
    tok_loss: np.ndarray
    tok_target: np.ndarray


def make_data(
    seed: int, rows: int = 40, outputs: int = 2, row_offset: int = 0, seqs: tuple[int, int] = (0, 6)
) -> Data:
    rng = np.random.default_rng(seed)
    first, count = seqs
    tokens = 5 * count
    tok_seq = rng.integers(first, first + count, tokens)
    tok_pos = rng.integers(0, 50, tokens)
    # ties on purpose: equal losses must be broken by position, whatever the grouping
    tok_loss = np.round(rng.random(tokens) * 4, 1)
    return Data(
        row_offset,
        np.round(rng.random((rows, outputs)) * 5, 2),  # ties among rows too
        rng.random(rows) + 0.5,
        tok_seq.astype(np.int64),
        tok_pos.astype(np.int64),
        tok_loss,
        rng.integers(0, 1000, tokens).astype(np.int64),
    )


def details_of(data: Data, i: int) -> tuple[Any, ...]:
    """Every kind of cell a breakdown row holds: int, float, str, bool, None, a per-output tuple."""
    row = data.row_offset + i
    return (
        row * 7,
        float(data.losses[i, 0]),
        f"id-{row}",
        bool(row % 2),
        None,
        tuple(data.losses[i].tolist()),
    )


def tallies(
    data: Data, capacity: int = 6, with_sequences: bool = True, first: int | None = None
) -> LossState:
    rows, outputs = data.losses.shape
    s = LossState(outputs, capacity)
    s.output_sums.add((data.losses * data.weights[:, None]).sum(axis=0))
    s.weight_sum.add1(float(data.weights.sum()))
    s.companion("mae").add1(float((np.sqrt(data.losses[:, 0]) * data.weights).sum()))
    s.hits.add((float(data.weights[::2].sum()), float(data.weights[::3].sum())))
    s.counts_correct = True
    s.n, s.rows, s.ignored, s.skipped, s.clamped, s.nulls = rows, rows + 3, 2, 1, 4, 1
    per_row = data.losses.mean(axis=1)
    global_rows = np.arange(rows, dtype=np.int64) + data.row_offset
    s.worst.offer(global_rows, per_row, [details_of(data, i) for i in range(rows)])
    s.note_row_sum(data.row_offset + 1, 1.0 + float(per_row[0]) * 1e-4)
    if with_sequences:
        lo = int(data.tok_seq.min()) if first is None else first
        s.sequences = SequenceStats(int(data.tok_seq.max()) + 1 - lo, lo)
        s.sequences.update(data.tok_seq, data.tok_pos, data.tok_loss, data.tok_target)
    return s


def binding(outputs: int = 2, **changes: Any) -> Binding:
    base = dict(
        input_kind=None,
        input_detected=False,
        outputs=outputs,
        classes=0,
        output_names=tuple(f"y{j}" for j in range(outputs)),
        labels=None,
        detail_columns=("pred", "target"),
        id_column=None,
        weighted=True,
    )
    base.update(changes)
    return Binding(**base)


def eval_state(
    data: Data,
    path: str = "a.csv",
    *,
    metric: str = "mse",
    options: dict[str, Any] | None = None,
    bound: Binding | None = None,
    notes: tuple[str, ...] = (),
    warnings: tuple[str, ...] = (),
    text: tuple[int, int] | None = None,
    tallied: LossState | None = None,
) -> EvalState:
    """An unmerged state of one part read from ``path`` (a made-up input of known size)."""
    opts = {"ignore_index": -100, "topk": 5} if options is None else options
    prov = Provenance(
        version="0.1.0",
        metric=metric,
        options={"nan": "error", "chunk_rows": 1000, "file": path},
        inputs=(InputFile("preds", f"/data/{path}", 1000 + len(path), 1.7e9 + 0.25),),
        row_offset=data.row_offset,
    )
    header = Header(
        metric=metric,
        metric_options=dict(opts),
        provenance=prov,
        binding=binding(data.losses.shape[1]) if bound is None else bound,
        row_offset=data.row_offset,
        sequence_offset=int(data.tok_seq.min()),
        files={"preds": path, "targets": "targets.csv"},
        columns={"preds": [f"p{j}" for j in range(data.losses.shape[1])], "rows": (1, 2.5)},
        notes=list(notes),
        warnings=list(warnings),
        text_bytes=None if text is None else text[0],
        text_words=None if text is None else text[1],
    )
    return EvalState(header, tallies(data) if tallied is None else tallied)


def plain_text(state: EvalState) -> str:
    """The JSON half of a state's plain form, as text: equal text = equal values, bit for bit."""
    return json.dumps(state.to_plain()[0], sort_keys=True)


def array_bytes(state: EvalState) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    return {k: (a.dtype.str, a.shape, a.tobytes()) for k, a in state.to_plain()[1].items()}
