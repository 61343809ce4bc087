"""Shared machinery of the readers: fast delimited parsing, precise errors, raw ids.

Files are parsed in C: with ``pyarrow.csv`` (multi-threaded) when pyarrow is installed
(the ``parquet`` extra), else with pandas' C parser; both give the same columns. Only
when parsing fails, or when a value turns out empty / non-numeric, the file is scanned
again line by line in Python to find the first bad line and name it. Gzip-compressed
files (``ratings.csv.gz``, recognised by their first bytes) are read transparently.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from ...errors import DataError, ParameterError
from .._interactions import DUPLICATE_POLICIES, Interactions
from .._vocab import Vocabulary

#: Column kinds understood by :func:`read_delimited`.
ID, NUMBER, TEXT = "id", "number", "text"

_SEP_NAMES = {"\t": "tabs", ",": "commas", " ": "spaces", "|": "'|'", "::": "'::'", ";": "semicolons"}
_INTERNAL_SEP = "\x1f"  # stands in for multi-character separators
_GZIP_MAGIC = b"\x1f\x8b"
#: Extensions that mark a compressed file, stripped before a format is guessed from the name.
COMPRESSED_SUFFIXES = (".gz",)


def sep_name(sep: str) -> str:
    return _SEP_NAMES.get(sep, repr(sep))


def check_duplicates(duplicates: str) -> None:
    if duplicates not in DUPLICATE_POLICIES:
        opts = ", ".join(repr(p) for p in DUPLICATE_POLICIES)
        raise ParameterError(f"duplicates must be one of {opts}, got {duplicates!r}")


def existing(path: str | Path) -> Path:
    """``path`` as a Path; DataError when it does not exist."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: no such file or directory")
    return p


def check_file(path: str | Path) -> Path:
    """An existing, non-empty regular file."""
    p = existing(path)
    if p.is_dir():
        raise DataError(f"{p}: is a folder, expected a file")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: file is empty")
    return p


def is_gzip(path: Path) -> bool:
    """Whether ``path`` starts with the gzip signature."""
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def plain_suffix(path: Path) -> str:
    """The lower-case extension of ``path`` that tells its format (``.csv`` for ``x.csv.gz``)."""
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def open_text(path: Path, encoding: str = "utf-8") -> IO[str]:
    """``path`` opened as text (decompressed when gzip); undecodable bytes are replaced."""
    if is_gzip(path):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding, errors="replace", newline="")
    return open(path, encoding=encoding, errors="replace", newline="")


def read_bytes(path: Path) -> bytes:
    """The content of ``path`` (decompressed when gzip); DataError for a damaged gzip file."""
    if not is_gzip(path):
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: damaged gzip file ({exc})") from None


def first_line(path: Path, encoding: str = "utf-8") -> str:
    """The first non-blank line of a file (without line break); DataError when there is none."""
    try:
        with open_text(path, encoding) as f:
            for line in f:
                if line.strip():
                    return line.rstrip("\r\n").lstrip("\ufeff")
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: damaged gzip file ({exc})") from None
    raise DataError(f"{path}: file is empty")


def _lines(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    with open_text(path, encoding) as f:
        for lineno, line in enumerate(f, 1):
            yield lineno, line.rstrip("\r\n")


def _split(line: str, sep: str, quote: bool) -> list[str]:
    if quote and len(sep) == 1:
        return next(csv.reader([line], delimiter=sep))
    return line.split(sep)


def locate_error(
    path: Path,
    *,
    sep: str,
    names: Sequence[str],
    kinds: dict[str, str],
    skip_rows: int,
    encoding: str,
    quote: bool,
    labels: dict[str, str] | None = None,
) -> None:
    """Scan ``path`` and raise a DataError naming the first bad line, if any is found."""
    labels = labels or {}
    n = len(names)
    checks = [(pos, name, kinds[name]) for pos, name in enumerate(names) if name in kinds]
    for lineno, line in _lines(path, encoding):
        if lineno <= skip_rows or not line.strip():
            continue
        fields = _split(line, sep, quote)
        if len(fields) != n:
            raise DataError(
                f"{path}, line {lineno}: expected {n} fields separated by {sep_name(sep)}, found {len(fields)}"
            )
        for pos, name, kind in checks:
            value = fields[pos]
            label = labels.get(name, name)
            if kind == NUMBER:
                try:
                    ok = math.isfinite(float(value))
                except ValueError:
                    ok = False
                if not ok:
                    raise DataError(f"{path}, line {lineno}: {label} {value!r} (column {pos + 1}) is not a number")
            elif kind == ID and value == "":
                raise DataError(f"{path}, line {lineno}: {label} (column {pos + 1}) is empty")


def has_pyarrow() -> bool:
    """Whether pyarrow is installed (then it parses text files; it is optional)."""
    return importlib.util.find_spec("pyarrow") is not None


def read_delimited(
    path: Path,
    *,
    sep: str,
    names: Sequence[str],
    kinds: dict[str, str],
    skip_rows: int = 0,
    encoding: str = "utf-8",
    quote: bool = False,
    labels: dict[str, str] | None = None,
) -> dict[str, np.ndarray]:
    """Parse a delimited text file whose columns are ``names``.

    Only the columns named in ``kinds`` are returned: ``ID`` and ``TEXT`` columns as
    object arrays of ``str``, ``NUMBER`` columns as float64 (every value finite). Every
    line must have exactly ``len(names)`` fields; blank lines are skipped. Errors name
    the line.
    """
    names = list(names)

    def fail(detail: str | None = None) -> DataError:
        locate_error(path, sep=sep, names=names, kinds=kinds, skip_rows=skip_rows,
                     encoding=encoding, quote=quote, labels=labels)
        reason = f" ({detail.splitlines()[0]})" if detail else ""
        return DataError(f"{path}: cannot be parsed as {len(names)} fields separated by {sep_name(sep)}{reason}")

    raw = read_bytes(path)
    delimiter = sep
    if len(sep) > 1:
        raw, delimiter = raw.replace(sep.encode(encoding), _INTERNAL_SEP.encode()), _INTERNAL_SEP
    parse = _parse_arrow if has_pyarrow() else _parse_pandas
    try:
        cols = parse(raw, delimiter, names, kinds, skip_rows, encoding, quote)
    except _ParseFailure as exc:
        raise fail(exc.detail) from None
    n_rows = len(next(iter(cols.values())))
    if n_rows == 0:
        raise DataError(f"{path}: has no records" if skip_rows else f"{path}: file is empty")
    for name, kind in kinds.items():
        col = cols[name]
        if kind == NUMBER and not np.isfinite(col).all():
            raise fail()
        if kind == ID and (col == "").any():
            raise fail()
    return cols


class _ParseFailure(Exception):
    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail


def _parse_arrow(raw: bytes, delimiter: str, names: list[str], kinds: dict[str, str], skip_rows: int,
                 encoding: str, quote: bool) -> dict[str, np.ndarray]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    types = {name: (pa.float64() if kind == NUMBER else pa.string()) for name, kind in kinds.items()}
    read_opts = pacsv.ReadOptions(column_names=names, skip_rows=skip_rows, encoding=encoding, block_size=1 << 24)
    parse_opts = pacsv.ParseOptions(delimiter=delimiter, quote_char='"' if quote else False,
                                    ignore_empty_lines=True)
    convert_opts = pacsv.ConvertOptions(column_types=types, include_columns=list(kinds),
                                        strings_can_be_null=False, quoted_strings_can_be_null=False)
    try:
        table = pacsv.read_csv(io.BytesIO(raw), read_options=read_opts, parse_options=parse_opts,
                               convert_options=convert_opts)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _ParseFailure(str(exc)) from None
    out = {}
    for name, kind in kinds.items():
        col = table.column(name)
        if col.null_count:
            raise _ParseFailure()
        out[name] = col.to_numpy() if kind == NUMBER else col.to_numpy(zero_copy_only=False)
    return out


def _parse_pandas(raw: bytes, delimiter: str, names: list[str], kinds: dict[str, str], skip_rows: int,
                  encoding: str, quote: bool) -> dict[str, np.ndarray]:
    if _miscounted(raw, delimiter, len(names), skip_rows, encoding, quote):
        raise _ParseFailure()
    try:
        # every column is parsed (no usecols) so that a line with too many fields fails
        frame = pd.read_csv(io.BytesIO(raw), sep=delimiter, header=None, names=names,
                            skiprows=skip_rows, dtype=str, na_filter=False, skip_blank_lines=True,
                            quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE, encoding=encoding,
                            encoding_errors="strict", engine="c")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise _ParseFailure(str(exc)) from None
    out = {}
    for name, kind in kinds.items():
        col = frame[name]
        if kind == NUMBER:
            out[name] = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            out[name] = col.to_numpy(dtype=object)
    return out


def _miscounted(raw: bytes, sep: str, n_fields: int, skip_rows: int, encoding: str, quote: bool) -> bool:
    """Whether some data line has a field count other than ``n_fields``.

    pandas pads a short line with empty fields instead of failing; counting the fields
    of every line (separators in C, or the csv module for quoted files) finds such
    files, and the line-by-line scan then names the line.
    """
    lines = raw.split(b"\n")[skip_rows:]
    if not quote:
        s = sep.encode(encoding)
        return any(ln.count(s) != n_fields - 1 for ln in lines if ln.strip())
    text = io.StringIO(b"\n".join(lines).decode(encoding, errors="replace"), newline="")
    return any(len(row) != n_fields for row in csv.reader(text, delimiter=sep) if row and any(f.strip() for f in row))


# ---------------------------------------------------------------------- raw ids
def id_array(values: np.ndarray | Sequence) -> np.ndarray:
    """Raw ids as int64 when every id is a canonical decimal integer, else as unicode.

    "42" becomes 42, but "007" or "B00006B8G0" keep the whole column as strings, so
    no id is ever changed by the conversion.
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f":
        if np.all(np.isfinite(arr)) and np.all(np.mod(arr, 1) == 0):
            return arr.astype(np.int64)
        return arr.astype(str)
    text = arr.astype(str)
    if text.size == 0:
        return np.zeros(0, dtype=np.int64)
    try:
        ints = text.astype(np.int64)
    except (ValueError, OverflowError):
        return text
    return ints if np.array_equal(ints.astype(str), text) else text


def unify_ids(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give two id arrays the same kind (both int64, or both unicode)."""
    if a.dtype.kind == b.dtype.kind:
        return a, b
    return a.astype(str), b.astype(str)


def extend_vocabulary(vocab: Vocabulary, extra: np.ndarray) -> Vocabulary:
    """``vocab`` with the ids of ``extra`` it lacks appended in first-seen order."""
    ids, extra = unify_ids(vocab.ids, extra)
    new = extra[~np.isin(extra, ids)]
    if new.size == 0:
        return vocab if ids is vocab.ids else Vocabulary(ids, vocab.name)
    _, first = np.unique(new, return_index=True)
    return Vocabulary(np.concatenate([ids, new[np.sort(first)]]), vocab.name)


def build_interactions(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray | None,
    timestamps: np.ndarray | None,
    *,
    duplicates: str,
    source: str,
    extra_users: np.ndarray | None = None,
    extra_items: np.ndarray | None = None,
) -> Interactions:
    """Interactions from raw id arrays; ids only in ``extra_*`` are appended to the vocabularies."""
    if extra_users is not None:
        users, extra_users = unify_ids(users, extra_users)
    if extra_items is not None:
        items, extra_items = unify_ids(items, extra_items)
    data = Interactions.from_arrays(users, items, values, timestamps, duplicates=duplicates, source=source)
    if extra_users is None and extra_items is None:
        return data
    uv = data.users if extra_users is None else extend_vocabulary(data.users, extra_users)
    iv = data.items if extra_items is None else extend_vocabulary(data.items, extra_items)
    return data.with_vocabularies(uv, iv)


def sniff_sep(line: str, candidates: Sequence[str] = ("\t", ",", ";", "|", " ")) -> str:
    """The first of ``candidates`` present in ``line`` ("::" wins over ":")."""
    if "::" in line:
        return "::"
    for c in candidates:
        if c in line:
            return c
    return candidates[0]


def looks_numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
