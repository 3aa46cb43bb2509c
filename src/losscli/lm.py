"""How a perplexity run is laid out: which columns and which sequences.

Language-model inputs come in several shapes (flat (N, V) logits, batched (B, T, V), Parquet
list columns per sequence, gathered log-probabilities in JSON Lines); this module turns each into
one token per row plus a ``SequenceMap``, so the engine sees a single kind of stream.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from .engine.runners import Role
from .errors import InputError, UsageError
from .metrics.checks import PREDS, TARGETS
from .readers.base import Group, Reader
from .readers.tokens import TokenView, token_view
from .sequences import MASK, ListSequences, PeriodicSequences, SequenceMap, SingleSequence
from .state.evalstate import EvalState, TokenText

LOGPROB_NAMES = ("logprob", "logprobs", "token_logprob", "token_logprobs", "log_prob", "lp")
LOGIT_NAMES = ("logits", "logit", "scores")
#: lm-evaluation-harness's word count (wikitext): len(re.split(r"\s+", text)), edge whitespace included
WORD_BREAK = re.compile(r"\s+")
MASK_NAMES = ("attention_mask", "mask")
ID_NAMES = ("labels", "label", "targets", "target", "ids", "input_ids", "token_ids", "tokens")


@dataclass
class TokenPlan:
    roles: dict[str, Role]
    seqmap: SequenceMap
    nulls: int = 0  # null log-probabilities (JSON): rows the scorer ignores
    ids: TokenView | None = None  # the token ids' view, whose layout an attention mask must have
    warnings: list[str] = field(default_factory=list)


def _pick(reader: Reader, spec: str | None, names: tuple[str, ...]) -> int | None:
    """A named column, else a conventionally named one, else None (the whole array/file)."""
    if spec is not None:  # the forms of --pred-col, coming to one column (or array)
        cols = reader.resolve_many(spec)
        if len(cols) != 1:
            shown = ", ".join(repr(reader.header_text(j)) for j in cols[:8])
            raise UsageError(
                f"{reader.display}: {spec!r} names {len(cols)} columns ({shown}); perplexity reads one "
                "column or array for the logits (log-probabilities) and one for the token ids"
            )
        return cols[0]
    return reader.guess(names)


def run_lengths(reader: Reader, column: int) -> NDArray[np.int64]:
    """Tokens per sequence from a sequence-id column whose ids come in contiguous runs."""
    lengths: list[int] = []
    last: float | None = None
    seen: set[float] = set()
    row = 0
    for (ids,) in reader.chunks([[column]], 1 << 16):
        values = np.asarray(ids).ravel()
        if len(values) == 0:
            continue
        change = np.flatnonzero(values[1:] != values[:-1]) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(values)]])
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            value = float(values[a])
            if value == last:
                lengths[-1] += b - a
            else:
                if value in seen:
                    raise InputError(
                        f"sequence id {values[a]} appears again after other sequences: "
                        "rows of one sequence must be contiguous",
                        path=reader.display,
                        row=row + a,
                    )
                seen.add(value)
                lengths.append(b - a)
                last = value
        row += len(values)
    return np.asarray(lengths, dtype=np.int64)


def _without_index(reader: Reader) -> Group:
    """A whole file's columns but its pandas index (``df.to_csv(path)`` of logits): None, the
    plain whole file, when there is no index."""
    if not reader.index_columns:
        return None
    return [j for j in range(len(reader.column_names)) if j not in reader.index_columns]


def plan_logits(
    logits: Reader,
    targets: Reader,
    pred_col: str | None,
    target_col: str | None,
    seq_col: str | None,
) -> TokenPlan:
    """Logits and token ids, each read through a token view (the readers given are left as
    they are; the plan's roles hold the views). One file holding both (.npz keys, Parquet
    columns) needs both columns named."""
    same = logits is targets
    pcol = _pick(logits, pred_col, LOGIT_NAMES) if (pred_col or len(logits.column_names) > 1) else None
    tcol = _pick(targets, target_col, ID_NAMES) if (target_col or len(targets.column_names) > 1) else None
    if same and (pcol is None or tcol is None or pcol == tcol):
        raise UsageError(
            f"{logits.display}: name the logits and the token ids with --pred-col and --target-col"
        )
    lv = token_view(logits, pcol, keep_last=True)
    # one file holding both: the ids' view is taken of the logits' view, so one reader reads both
    tv = token_view(lv.reader if same else targets, tcol, keep_last=False)
    logits, targets = (tv.reader if same else lv.reader), tv.reader
    seqmap = _logit_sequences(lv, tv, seq_col, logits.n_rows)
    said = unnamed_sequences(targets) if isinstance(seqmap, SingleSequence) else []
    p_group: Group = _without_index(logits) if pcol is None else [pcol]
    t_group: Group = _without_index(targets) if tcol is None else [tcol]
    if same:
        p_group, t_group = [pcol], [tcol]  # type: ignore[list-item]
    roles = {
        PREDS: Role(logits, p_group, logits.display),
        TARGETS: Role(targets, t_group, targets.display),
    }
    return TokenPlan(roles, seqmap, ids=tv, warnings=said)


def add_mask(plan: TokenPlan, reader: Reader, mask_col: str | None, auto: bool = False) -> str | None:
    """An attention mask (--mask FILE, or --mask-col in the ids' file) as one more role, one
    token per row like the ids; its layout must be the ids' ((B, T), flat B*T, or the same list
    lengths), so a mask never lines up with the wrong tokens."""
    if plan.ids is None:  # JSON log-probs: a record is a sequence; padding is not in it
        raise UsageError(
            "--mask and --mask-col go with token arrays and tables; JSON log-probs hold only real "
            "tokens (a null log-prob is already left out)"
        )
    if mask_col is not None and not reader.named():  # --mask-col in a plain array (ids.npy)
        raise UsageError(
            f"--mask-col {mask_col!r}: {reader.display} is one plain array, with no named arrays or "
            "columns; give the attention mask as a file of its own with --mask FILE"
        )
    multi = mask_col is not None or len(reader.column_names) > 1
    col = _pick(reader, mask_col, MASK_NAMES) if multi else None
    if col is None and not multi and token_view(reader, 0, keep_last=False).lists:
        col = 0  # a file of one list column (pandas' DataFrame({"attention_mask": list(mask)}))
    view, ids = token_view(reader, col, keep_last=False), plan.ids
    data = [j for j in range(len(view.reader.column_names)) if j not in view.reader.index_columns]
    if view.lead is None and col is None and len(data) > 1:  # a (B, T) mask written as a table
        raise InputError(
            f"the attention mask is a table of {len(data)} columns, which does not say which token "
            "each value is; give one value per token: a (B, T) .npy/.npz array, a Parquet list "
            "column per sequence, or one column of B*T values",
            path=view.reader.display,
        )
    misfit = _mask_misfit(view, ids)
    if misfit is not None and not auto:
        raise InputError(
            f"{misfit}: give the mask the tokenizer returned with these ids", path=view.reader.display
        )
    if misfit is not None:
        # found by its name, in another layout (attention_mask[:, 1:] is what log-probs gathered
        # for ids[:, 1:] go with): not applied, and said, since padding is then scored
        shifted = (
            view.batched is not None
            and ids.batched is not None
            and view.batched == (ids.batched[0], ids.batched[1] + 1)
        )
        fix = (
            "log-probs gathered for input_ids[:, 1:] go with attention_mask[:, 1:]: save that"
            if shifted
            else "give the mask that fits with --mask"
        )
        return f"{view.reader.display}: {misfit}; it was not applied, so padding is scored: {fix}"
    group: Group = _without_index(view.reader) if col is None else [col]
    plan.roles[MASK] = Role(view.reader, group, view.reader.display)
    return None


#: the attention mask a tokenizer returns beside ``input_ids``, applied when found beside the ids
AUTO_MASK = "attention_mask"


def found_mask(plan: TokenPlan, reader: Reader) -> str | None:
    """``attention_mask``, when the ids' file (an .npz, a Parquet table) holds an array or
    column of that name that is not itself the ids or logits: the padding it marks would be
    scored as tokens otherwise (``labels = input_ids`` with no -100 is the common case)."""
    if AUTO_MASK not in reader.column_names:
        return None
    col = reader.column_names.index(AUTO_MASK)
    used = {c for role in plan.roles.values() if role.reader is reader and role.group for c in role.group}
    return None if col in used else AUTO_MASK


def _mask_misfit(mask: TokenView, ids: TokenView) -> str | None:
    """How the mask's layout cannot be the tokens' (B, T), or None when it fits."""
    shown: tuple[object, object] | None = None
    if mask.lists and ids.lists:
        if not np.array_equal(mask.lengths(), ids.lengths()):
            shown = ("lists of other lengths", "")
    elif mask.lists != ids.lists and (mask.lead or ids.lead):  # a list column beside a (B, T) array
        lists, array = (mask, ids) if mask.lists else (ids, mask)
        lengths, lead = lists.lengths(), array.lead or ()
        fits = len(lead) == 2 and len(lengths) == lead[0] and bool(np.all(lengths == lead[1]))
        if not fits and not (len(lead) == 1 and int(lengths.sum()) == lead[0]):
            shown = (
                f"shape {mask.lead}" if mask.lead else f"{len(lengths)} lists",
                f" {ids.lead}" if ids.lead else f" {len(ids.lengths())} lists of other lengths",
            )
    elif mask.lead and ids.lead:
        flat = len(mask.lead) == 1 or len(ids.lead) == 1
        if int(np.prod(mask.lead)) != int(np.prod(ids.lead)) or (not flat and mask.lead != ids.lead):
            shown = (f"shape {mask.lead}", f" {ids.lead}")
    if shown is None:
        return None
    return (
        f"the attention mask has {shown[0]} but the tokens ({ids.reader.display}) have"
        f"{shown[1] or ' other list lengths'}"
    )


def _logit_sequences(lv: TokenView, tv: TokenView, seq_col: str | None, rows: int | None) -> SequenceMap:
    """Where sequences end, for logits and ids: a sequence-id column, else list columns (one
    list per sequence), else the (B, T) of batched logits (or ids), else one sequence of
    ``rows`` tokens (the logits' rows, when known)."""
    if seq_col is not None:
        return ListSequences(run_lengths(tv.reader, tv.reader.resolve(seq_col)))
    if lv.lists or tv.lists:
        return ListSequences((tv if tv.lists else lv).lengths())
    if lv.batched is not None:
        batch, length = lv.batched
        if tv.lead is not None and int(np.prod(tv.lead)) != batch * length:
            raise InputError(
                f"logits are {batch} sequences x {length} tokens but the ids have shape {tv.lead}",
                path=tv.reader.display,
            )
        return PeriodicSequences(batch, length)
    if tv.batched is not None:
        return PeriodicSequences(*tv.batched)
    return SingleSequence(rows)


def _batched_array(reader: Reader) -> bool:
    """``reader`` is one 2-D array (.npy, a single-array .npz, an in-memory array): what
    ``logits.log_softmax(-1).gather(-1, ids[..., None])[..., 0]`` gives, (B, T), read as B
    sequences of T tokens. A table with columns (CSV, Parquet, Arrow) keeps its columns: its
    token view is the table itself (no leading shape), so it is never taken for (B, T)."""
    shape = reader.row_shape
    if shape is None or len(shape) != 1:
        return False
    return token_view(reader, None, keep_last=False).batched is not None


def plan_logprobs(
    reader: Reader, pred_col: str | None, seq_col: str | None, pad_value: float | None = None
) -> TokenPlan:
    """Gathered log-probabilities: a column (named, conventionally named, or the only one)
    read through a token view, or JSON Lines records, one per sequence."""
    if reader.sequence_records:  # JSON Lines: the format fixes the column and the sequences
        lengths = reader.list_lengths(0)
        if lengths is None:
            raise TypeError(f"{type(reader).__name__} has sequence records but no list lengths")
        role = Role(reader, None, reader.display)
        return TokenPlan({PREDS: role}, ListSequences(lengths), reader.nulls)
    col = _pick(reader, pred_col, LOGPROB_NAMES)
    if col is None and _batched_array(reader):
        col = 0  # a (B, T) array: B sequences of T tokens, flattened whole by the token view
    if col is None:
        if len(reader.column_names) != 1:
            raise UsageError(
                f"{reader.display}: say which column holds the log-probabilities with --pred-col "
                f"(columns: {', '.join(reader.column_names[:20])})"
            )
        col = 0
    view = token_view(reader, col, keep_last=False)
    reader = view.reader
    seqmap: SequenceMap
    if seq_col is not None:
        seqmap = ListSequences(run_lengths(reader, reader.resolve(seq_col)))
    elif view.lists:
        seqmap = ListSequences(view.lengths())
    elif view.batched is not None:
        seqmap = PeriodicSequences(*view.batched)
    else:
        seqmap = SingleSequence(reader.n_rows)
    group: Group = [col] if len(reader.column_names) > 1 or view.lead is None else None
    plan = TokenPlan({PREDS: Role(reader, group, reader.display)}, seqmap, ids=view)  # a mask's layout
    if isinstance(seqmap, SingleSequence):
        plan.warnings += unnamed_sequences(reader)
    grid = view.batched
    if grid is None and view.lists and pad_value is None:  # equal-length lists: a (B, T) array
        lengths = view.lengths()
        if len(lengths) and bool(np.all(lengths == lengths[0])):
            grid = (len(lengths), int(lengths[0]))
    if grid is not None and pad_value is None:
        said = unmarked_padding(reader, group, *grid)
        plan.warnings += [said] if said else []
    if pad_value is not None and pad_value <= 0:
        why = "; float32 models give exactly 0.0 for sure tokens" if pad_value == 0 else ""
        plan.warnings.append(
            f"--pad-value {pad_value:g} is a value a real log-prob can take ({pad_value:g} is probability "
            f"{math.exp(pad_value):.3g}{why}): such tokens are taken for padding; pad with a positive "
            "value such as 1.0, which no log-prob can be"
        )
    return plan


#: column names that say which sequence a token row belongs to (a long table of tokens)
SEQUENCE_NAMES = ("seq", "seq_id", "sequence", "sequence_id", "doc", "doc_id", "document_id", "sample_id")


def unnamed_sequences(reader: Reader) -> list[str]:
    """A flat table of tokens read as ONE sequence although a column looks like a sequence id:
    per-sequence figures would all be one sequence's, and --shift would run across documents."""
    if not reader.named():
        return []
    found = next((c for c in reader.column_names if c.strip().lower() in SEQUENCE_NAMES), None)
    if found is None:
        return []
    return [
        f"{reader.display}: read as one sequence, but column {found!r} looks like a sequence id: "
        f"if it says which sequence each token belongs to, give --seq-col {found}"
    ]


#: rows of a (B, T) log-prob array looked at for padding that --pad-value does not mark
PADDING_SAMPLE_ROWS = 4096


def unmarked_padding(reader: Reader, group: Group, batch: int, length: int) -> str | None:
    """A warning when rows of a (B, T) log-prob array (or of equal-length list columns) end or
    start in one value, as padding does (``masked_fill(mask == 0, 0.0)``, -100 from the
    ignore-index habit, ``F.pad``'s single 0.0), and no --pad-value says so: they would be
    scored as real log-probs. The first and the last rows are looked at (data sorted by length
    puts the short, padded rows last); a pipe is read once and is not looked at."""
    if length < 2 or reader.read_once:
        return None
    grid = _edge_rows(reader, group, batch, length)
    if grid is None:
        return None
    rows = len(grid)
    for edge, ends in ((-1, "end"), (0, "start")):
        nxt = edge - 1 if edge < 0 else 1
        col = grid[:, edge]
        runs = (col == grid[:, nxt]) & (col <= 0)  # 1.0 is refused anyway; two equal at an edge
        values, counts = np.unique(col[col <= 0], return_counts=True)
        common = float(values[np.argmax(counts)]) if len(values) else math.nan
        # one value at the edge of most rows (a single pad each), or runs of one value
        # (a pad's habits are round numbers: 0, -100, -inf; a bf16 model's sure last token may
        # repeat a small log-prob in every row, which is no padding)
        shared = (
            len(values)
            and counts.max() >= max(2, rows // 2)
            and (common == -math.inf or common == round(common))
        )
        if not runs.any() and not shared:
            continue
        value = common if shared else float(np.unique(col[runs], return_counts=True)[0][0])
        hits = int(np.count_nonzero(col == value))
        fix = (
            "pad with 1.0, which no log-prob can be, and give --pad-value 1"
            if not math.isfinite(value)
            else f"if it is padding, give --pad-value {value:g}"
        )
        return (
            f"{reader.display}: {hits} of {rows} rows looked at {ends} in the same log-prob {value:g}, "
            f"as padding does; it was scored as real log-probs: {fix}"
        )
    return None


def _edge_rows(reader: Reader, group: Group, batch: int, length: int) -> NDArray[np.float64] | None:
    """The first and the last PADDING_SAMPLE_ROWS // 2 rows, as a (rows, T) float64 grid."""
    half = PADDING_SAMPLE_ROWS // 2
    head_rows = min(batch, half if batch > PADDING_SAMPLE_ROWS else batch)
    block = next(iter(reader.chunks([group], head_rows * length)), [None])[0]
    if block is None or block.size != head_rows * length:
        return None
    parts = [np.asarray(block, dtype=np.float64).reshape(head_rows, length)]
    ranges = reader.range_reader() if batch > head_rows else None
    if ranges is not None:
        start = max(head_rows, batch - half)
        tail = ranges.read([group], start * length, batch * length)[0]
        parts.append(np.asarray(tail, dtype=np.float64).reshape(batch - start, length))
    return np.concatenate(parts)


def worst_token_text(state: EvalState, reader: Reader) -> TokenText | None:
    """The text and ids of the tokens a report shows (each sequence's worst, the worst
    examples), when ``reader`` (JSON log-probs) carries them; None otherwise. Rows and sequences in the
    state are global (``--row-offset``, ``--sequence-offset``); the reader's are its own."""
    texts, h = reader.token_texts, state.header
    lengths = reader.list_lengths(0) if texts is not None else None  # read already: cached
    if texts is None or lengths is None:
        return None
    out = TokenText()
    for row in state.tallies.worst.rows.tolist():
        text = texts.get(row - h.row_offset)
        if text is not None:
            out.rows[row] = text
    seq = state.tallies.sequences
    if seq is not None:
        starts = np.concatenate([[0], np.cumsum(lengths)])
        s_idx, slot = np.nonzero(seq.worst_loss > -np.inf)
        local = seq.first + s_idx - h.sequence_offset
        for s, p, row in zip(
            (seq.first + s_idx).tolist(),
            seq.worst_pos[s_idx, slot].tolist(),
            (starts[local] + seq.worst_pos[s_idx, slot]).tolist(),
            strict=True,
        ):
            text, token_id = texts.get(row), texts.token_id(row)
            if text is not None:
                out.positions[(s, p)] = text
            if token_id is not None:
                out.ids[(s, p)] = token_id
    return out


@dataclass(frozen=True)
class TextSize:
    """Bytes and words of the evaluated text, for bits per byte and word perplexity."""

    bytes: int | None = None
    words: int | None = None


def text_size(path: str | None, n_bytes: int | None, n_words: int | None) -> TextSize:
    """--text FILE counts as lm-evaluation-harness's wikitext task does, so word perplexity and
    bits per byte compare with its numbers: words are ``len(re.split(r"\\s+", text))`` (leading or
    trailing whitespace counts as an empty word, so a file ending in a newline has one more word
    than ``str.split()`` finds) and bytes are the UTF-8 bytes of the text. A UTF-8 byte-order mark
    is an artefact of the editor, not text: it is neither a byte nor part of a word.
    --bytes/--words give the counts directly (and win)."""
    if path is not None:
        try:
            with open(path, "rb") as fp:
                data = fp.read()
        except OSError as exc:
            raise InputError(f"cannot be read ({exc.strerror})", path=path) from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(f"is not UTF-8 text (byte {exc.start})", path=path) from None
        if not text:
            raise InputError("is empty: there is no text to count bytes and words in", path=path)
        n_bytes = len(text.encode("utf-8")) if n_bytes is None else n_bytes
        n_words = len(WORD_BREAK.split(text)) if n_words is None else n_words
    for name, value in (("--bytes", n_bytes), ("--words", n_words)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be at least 1")
    return TextSize(n_bytes, n_words)
