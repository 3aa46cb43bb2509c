"""State files: exact round trips, atomic saves, and loads that refuse every damaged, foreign or
malicious file with one InputError line (never a traceback, never code execution)."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from losscli.errors import EXIT_BAD_INPUT, EXIT_OUTPUT, InputError, OutputError
from losscli.state import EvalState, StateFileError
from losscli.state import files as state_files
from state_samples import ODD_NAN, array_bytes, eval_state, make_data, plain_text


@pytest.fixture(scope="module")
def sample() -> EvalState:
    s = eval_state(make_data(1), notes=("a note",), warnings=("a warning",), text=(10, 2))
    s.tallies.row_sum = ODD_NAN
    return s


@pytest.fixture(scope="module")
def saved(sample: EvalState, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("state") / "good.state"
    sample.save(path)
    return path.read_bytes()


def refused(path: Path) -> StateFileError:
    """Load must fail with one StateFileError line that names the file."""
    with pytest.raises(StateFileError) as err:
        EvalState.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert err.value.exit_code == EXIT_BAD_INPUT
    return err.value


# ---- round trip and format --------------------------------------------------------------------


def test_save_load_round_trip_is_exact(sample: EvalState, tmp_path: Path) -> None:
    path = tmp_path / "s.state"
    sample.save(path)
    back = EvalState.load(path)
    assert plain_text(back) == plain_text(sample) and array_bytes(back) == array_bytes(sample)
    assert back.tallies.worst.details == sample.tallies.worst.details
    assert struct.pack(">d", back.tallies.row_sum) == struct.pack(">d", ODD_NAN)  # the NaN's payload too


def test_merged_state_round_trip_keeps_the_parts(sample: EvalState, tmp_path: Path) -> None:
    other = eval_state(make_data(2, row_offset=43, seqs=(100, 3)), "b.csv")
    merged = sample.merge(other)
    merged.save(tmp_path / "m.state")
    back = EvalState.load(str(tmp_path / "m.state"))
    assert plain_text(back) == plain_text(merged) and array_bytes(back) == array_bytes(merged)
    assert len(back.header.provenance.parts) == 2
    # merging again from the file gives what merging the values gives
    third = eval_state(make_data(3, row_offset=100), "c.csv")
    assert plain_text(back.merge(third)) == plain_text(merged.merge(third))


def test_the_archive_is_npz_compatible_and_has_no_pickle(saved: bytes, tmp_path: Path) -> None:
    path = tmp_path / "s.state"
    path.write_bytes(saved)
    with np.load(path, allow_pickle=False) as npz:
        assert "state.json" in npz.files and "tallies.sequences.nll" in npz.files
        assert npz["tallies.worst.rows"].dtype == np.int64
    with zipfile.ZipFile(path) as zf:
        doc = json.loads(zf.read("state.json"))
        assert doc["format"] == "losscli-state" and doc["format_version"] == 3  # 3: the quantile sketch
        assert set(doc) == {"format", "format_version", "header", "tallies"}
        for name in zf.namelist():
            assert name == "state.json" or (name.startswith("tallies.") and name.endswith(".npy"))


def test_the_same_state_gives_the_same_bytes(sample: EvalState, saved: bytes, tmp_path: Path) -> None:
    sample.save(tmp_path / "again.state")
    assert (tmp_path / "again.state").read_bytes() == saved


# ---- atomic save --------------------------------------------------------------------------


def test_save_replaces_an_existing_file_and_leaves_no_temporary(sample: EvalState, tmp_path: Path) -> None:
    path = tmp_path / "s.state"
    path.write_text("old")
    sample.save(path)
    assert os.listdir(tmp_path) == ["s.state"] and EvalState.load(path).tallies.n == sample.tallies.n
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_save_into_a_missing_directory_is_an_output_error(sample: EvalState, tmp_path: Path) -> None:
    with pytest.raises(OutputError) as err:
        sample.save(tmp_path / "no" / "s.state")
    assert err.value.exit_code == EXIT_OUTPUT and "no/s.state" in str(err.value)


def test_a_failed_save_keeps_the_old_file_and_removes_the_temporary(
    sample: EvalState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.state"
    path.write_text("old")

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", disk_full)
    with pytest.raises(OutputError, match="No space left on device"):
        sample.save(path)
    assert os.listdir(tmp_path) == ["s.state"] and path.read_text() == "old"


def test_save_onto_a_directory_is_an_output_error(sample: EvalState, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputError):
        sample.save(tmp_path / "d")
    assert os.listdir(tmp_path) == ["d"]


# ---- refusals ---------------------------------------------------------------------------------


def rewrite(saved: bytes, path: Path, doc: Any = None, *, raw_json: bytes | None = None, extra=()) -> Path:  # type: ignore[no-untyped-def]
    """A copy of the saved archive with state.json replaced (and extra members added)."""
    with zipfile.ZipFile(io.BytesIO(saved)) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "state.json":
                data = raw_json if raw_json is not None else json.dumps(doc).encode()
            out.writestr(info.filename, data)
        for name, data in extra:
            out.writestr(name, data)
    return path


def doc_of(saved: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(saved)) as zf:
        return json.loads(zf.read("state.json"))


def test_a_newer_format_version_asks_for_an_upgrade(saved: bytes, tmp_path: Path) -> None:
    doc = doc_of(saved)
    doc["format_version"] = 7
    path = rewrite(saved, tmp_path / "new.state", doc)
    err = refused(path)
    assert str(err) == f"{path}: format version 7 is newer than this losscli reads (3): upgrade losscli"


@pytest.mark.parametrize(
    "content",
    [b"", b"pred,target\n1,2\n", b"PK\x03\x04 not really", b"\x93NUMPY\x01\x00"],
    ids=["empty", "csv", "zip-magic", "npy-magic"],
)
def test_files_that_are_not_states_are_refused(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "x.state"
    path.write_bytes(content)
    assert "not a losscli state file" in str(refused(path))


def test_other_archives_are_refused(saved: bytes, tmp_path: Path) -> None:
    npz = tmp_path / "arrays.npz"
    np.savez(npz, a=np.arange(3))
    assert "no state.json" in str(refused(npz))
    doc = doc_of(saved)
    doc["format"] = "something-else"
    assert "does not say format" in str(refused(rewrite(saved, tmp_path / "f.state", doc)))


def test_missing_and_unreadable_paths_are_input_errors(tmp_path: Path) -> None:
    assert "No such file" in str(refused(tmp_path / "nothing.state"))
    refused(tmp_path)  # a directory


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"[]",
        b"\xff\xfe",
        b'{"format": "losscli-state", "format_version": NaN}',
        b'{"format": "losscli-state", "format": "losscli-state", "format_version": 1}',
        b'{"format": "losscli-state", "format_version": "1"}',
        b'{"format": "losscli-state", "format_version": 0}',
        b'{"format": "losscli-state", "format_version": 1}',
        b'{"format": "losscli-state", "format_version": 1, "header": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}",
    ],
    ids=[
        "broken",
        "list",
        "not-utf8",
        "nan",
        "duplicate-key",
        "version-text",
        "version-0",
        "no-body",
        "deep",
    ],
)
def test_malformed_json_is_refused(saved: bytes, tmp_path: Path, raw: bytes) -> None:
    refused(rewrite(saved, tmp_path / "j.state", raw_json=raw))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document (objects' keys and lists' indices)."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:2]):
            out += _paths(v, (*prefix, i))
    return out


def _replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(doc))
    node = copy
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return copy


def _at(doc: Any, place: tuple[Any, ...]) -> Any:
    for k in place:
        doc = doc[k]
    return doc


FREE_FORM = ("options", "metric_options", "columns")  # any plain data is a valid value there


def test_every_field_replaced_by_a_wrong_type_is_refused(saved: bytes, tmp_path: Path) -> None:
    doc = doc_of(saved)
    places = [p for p in _paths(doc) if p and p[0] != "format"]
    refusals = 0
    for place in places:
        was = _at(doc, place)
        for value in ("text", [[1]], {"$float": "7ff0"}, {"k": None}, 10**30, -1):
            free = any(k in FREE_FORM for k in place[:-1]) or (
                place[-1] in FREE_FORM and value == {"k": None}
            )
            path = rewrite(saved, tmp_path / "t.state", _replaced(doc, place, value))
            if not _load_or_refuse(path):
                refusals += 1
                continue
            # accepted: only a free-form value, or a scalar where a scalar of its type (or null) was
            same_kind = isinstance(value, (str, int)) and (was is None or type(was) is type(value))
            same_kind |= place[-1] == "files" and value == {"$float": "7ff0"}  # roles are any text
            same_kind |= "details" in place[:-1] and isinstance(value, (str, int))  # cells: any scalar
            assert free or same_kind, (place, value)
    assert refusals > 400


def test_unknown_and_object_members_are_refused(saved: bytes, tmp_path: Path) -> None:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.zeros(2))
    assert "unknown array" in str(
        refused(
            rewrite(saved, tmp_path / "a.state", doc_of(saved), extra=[("tallies.spare.npy", buf.getvalue())])
        )
    )
    assert "unknown member" in str(
        refused(rewrite(saved, tmp_path / "b.state", doc_of(saved), extra=[("notes.txt", b"hi")]))
    )
    for dtype in ([("a", "<f8"), ("b", "<i8")], "<U3", "<M8[s]", "<c16"):
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.zeros(3, dtype=dtype))
        assert "plain numbers" in str(
            refused(_with_member(saved, tmp_path, "tallies.worst.losses.npy", buf.getvalue()))
        )


def _with_member(saved: bytes, tmp_path: Path, name: str, data: bytes) -> Path:
    """The saved archive with one member's bytes replaced."""
    path = tmp_path / "m.state"
    with zipfile.ZipFile(io.BytesIO(saved)) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            out.writestr(info.filename, data if info.filename == name else src.read(info))
    return path


def test_an_array_header_that_lies_about_its_size_is_refused(saved: bytes, tmp_path: Path) -> None:
    # a header claiming 10**12 numbers must be refused before anything is allocated
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    err = refused(_with_member(saved, tmp_path, "tallies.worst.losses.npy", header.getvalue() + b"\0" * 48))
    assert "not as long as its header says" in str(err)


class _Marker:
    """Unpickling this calls open(path, "w"): the file appears if a pickle is ever loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.path, "w"))


def test_a_pickle_payload_is_never_executed(saved: bytes, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = np.empty(6, dtype=object)
    payload[:] = [_Marker(str(marker))] * 6
    buf = io.BytesIO()
    np.lib.format.write_array(buf, payload, allow_pickle=True)
    evil = buf.getvalue()
    # the payload is live: loading it the unsafe way does create the marker
    np.lib.format.read_array(io.BytesIO(evil), allow_pickle=True)
    assert marker.exists()
    marker.unlink()
    for name in ("tallies.worst.losses.npy", "tallies.worst.rows.npy", "tallies.sequences.nll.npy"):
        refused(_with_member(saved, tmp_path, name, evil))
    refused(_with_member(saved, tmp_path, "state.json", pickle.dumps(_Marker(str(marker)))))
    extra = rewrite(saved, tmp_path / "x.state", doc_of(saved), extra=[("tallies.payload.npy", evil)])
    refused(extra)
    assert not marker.exists()


# ---- fuzzing ----------------------------------------------------------------------------------


def _load_or_refuse(path: Path) -> bool:
    """True when the file loads, False when it is refused as it should be; anything else fails."""
    try:
        EvalState.load(path)
    except InputError as e:
        assert isinstance(e, StateFileError) and "\n" not in str(e)
        return False
    return True


def test_truncated_files_are_refused(saved: bytes, tmp_path: Path) -> None:
    path = tmp_path / "cut.state"
    offsets = sorted({*range(0, len(saved), 13), *range(len(saved) - 200, len(saved))})
    for n in offsets:
        path.write_bytes(saved[:n])
        assert not _load_or_refuse(path), n


def test_flipped_bytes_never_crash(saved: bytes, tmp_path: Path) -> None:
    rng = np.random.default_rng(20261130)
    path = tmp_path / "flip.state"
    loaded = 0
    for _ in range(300):
        data = bytearray(saved)
        for at in rng.integers(0, len(data), rng.integers(1, 4)):
            data[at] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(data))
        loaded += _load_or_refuse(path)
    assert loaded < 150  # most flips hit data that a CRC or a check catches


def test_arrays_of_the_wrong_length_are_refused(saved: bytes, tmp_path: Path, sample: EvalState) -> None:
    # valid archives whose arrays were cut: shapes disagree with the header's counts
    for name in ("tallies.sequences.nll.npy", "tallies.worst.rows.npy", "tallies.output_sums.terms.npy"):
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.zeros(1))
        refused(_with_member(saved, tmp_path, name, buf.getvalue()))


def test_the_loaders_error_list_is_wide_enough(
    monkeypatch: pytest.MonkeyPatch, saved: bytes, tmp_path: Path
) -> None:
    # an unexpected library error while reading (here from zipfile) still becomes one line
    path = tmp_path / "s.state"
    path.write_bytes(saved)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise zipfile.BadZipFile("Bad magic number for file header")

    monkeypatch.setattr(state_files.zipfile.ZipFile, "open", broken)
    assert "corrupt or truncated" in str(refused(path))
