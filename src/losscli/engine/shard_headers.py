"""A CSV shard without the header line the first shard has, said plainly.

A sharded CSV input reads every shard with the first shard's header decision (``sharded.
forced_options``). Writers that append parts (pandas ``to_csv(header=(i == 0))``, ``cat``-style
splits) leave the header in the first file only, so a later shard's first line is data, read as
column names: the run then failed with "no column 'target'; columns are '0.1898...'", which names
the symptom, not the cause. When a later shard fails and the first shard's CSV had a header, its
first line is looked at again (only then: a failing shard, a few KB read): a line that is data
for certain (numbers that cannot be column names) gets one line that says so and what to do.
"""

from __future__ import annotations

from ..errors import InputError, LossCliError
from ..options import Evaluation


def explain_headerless(exc: LossCliError, evaluation: Evaluation) -> LossCliError:
    """``exc``, or the clearer error when one of the shard's CSV files starts with data."""
    for source in evaluation.inputs.sources():
        path = source.path
        if path is None or path == "-" or source.header is not True:
            continue  # only a header forced from the first shard (or given) is in question
        fields = _data_first_line(path, source)
        if fields is None:
            continue
        shown = ", ".join(fields[:3]) + (", ..." if len(fields) > 3 else "")
        return InputError(
            f"its first line holds numbers ({shown}) where the first shard has column names: "
            "every CSV shard needs its header line (pandas writes it unless header=False); "
            "write each part with its header, or join the parts into one file (cat keeps the "
            "first part's header) and read that",
            path=path,
        )
    return exc


def _data_first_line(path: str, source: object) -> list[str] | None:
    """The file's first fields when they are data for certain (no header would be detected in
    it), else None; None too for a file that is not a CSV or cannot be opened."""
    from ..readers.open import open_reader

    try:
        reader = open_reader(
            path,
            getattr(source, "format", None),
            None,  # detect: is its first line a header at all?
            delimiter=getattr(source, "delimiter", None),
            decimal=getattr(source, "decimal", None),
        )
    except (LossCliError, OSError):
        return None
    with reader:
        if not reader.delimited:
            return None
        certain = getattr(reader, "header_certain", False)
        if reader.header_row or not certain:
            return None
        return list(getattr(reader, "first_fields", []))
