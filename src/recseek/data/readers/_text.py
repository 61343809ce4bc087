"""Shared machinery of the readers: fast delimited parsing, precise errors, raw ids.

The fast path parses with ``pyarrow.csv`` (multi-threaded C++). Only when that fails,
or when a value turns out empty / non-numeric, the file is scanned again line by line
in Python to find the first bad line and name it.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ...errors import DataError, ParameterError
from .._interactions import DUPLICATE_POLICIES, Interactions
from .._vocab import Vocabulary

#: Column kinds understood by :func:`read_delimited`.
ID, NUMBER, TEXT = "id", "number", "text"

_SEP_NAMES = {"\t": "tabs", ",": "commas", " ": "spaces", "|": "'|'", "::": "'::'", ";": "semicolons"}
_INTERNAL_SEP = "\x1f"  # stands in for multi-character separators


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


def first_line(path: Path, encoding: str = "utf-8") -> str:
    """The first non-blank line of a file (without line break); DataError when there is none."""
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        for line in f:
            if line.strip():
                return line.rstrip("\r\n").lstrip("\ufeff")
    raise DataError(f"{path}: file is empty")


def _lines(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    with open(path, encoding=encoding, errors="replace", newline="") as f:
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
) -> dict[str, pa.ChunkedArray]:
    """Parse a delimited text file whose columns are ``names``.

    Only the columns named in ``kinds`` are returned: ``ID`` and ``TEXT`` columns as
    strings, ``NUMBER`` columns as float64 (every value finite). Every line must have
    exactly ``len(names)`` fields; blank lines are skipped. Errors name the line.
    """
    names = list(names)
    types = {name: (pa.float64() if kind == NUMBER else pa.string()) for name, kind in kinds.items()}

    def fail(detail: str | None = None) -> DataError:
        locate_error(path, sep=sep, names=names, kinds=kinds, skip_rows=skip_rows,
                     encoding=encoding, quote=quote, labels=labels)
        reason = f" ({detail.splitlines()[0]})" if detail else ""
        return DataError(f"{path}: cannot be parsed as {len(names)} fields separated by {sep_name(sep)}{reason}")

    source: str | io.BytesIO = str(path)
    delimiter = sep
    if len(sep) > 1:
        raw = path.read_bytes().replace(sep.encode(encoding), _INTERNAL_SEP.encode())
        source, delimiter = io.BytesIO(raw), _INTERNAL_SEP
    read_opts = pacsv.ReadOptions(column_names=names, skip_rows=skip_rows, encoding=encoding,
                                  block_size=1 << 24)
    parse_opts = pacsv.ParseOptions(delimiter=delimiter, quote_char='"' if quote else False,
                                    ignore_empty_lines=True)
    convert_opts = pacsv.ConvertOptions(column_types=types, include_columns=list(kinds),
                                        strings_can_be_null=False, quoted_strings_can_be_null=False)
    try:
        table = pacsv.read_csv(source, read_options=read_opts, parse_options=parse_opts,
                               convert_options=convert_opts)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise fail(str(exc)) from None
    if table.num_rows == 0:
        raise DataError(f"{path}: has no records" if skip_rows else f"{path}: file is empty")
    out: dict[str, pa.ChunkedArray] = {}
    for name, kind in kinds.items():
        col = table.column(name)
        if kind == NUMBER:
            if col.null_count or not pc.all(pc.is_finite(col)).as_py():
                raise fail()
        elif kind == ID and pc.any(pc.equal(col, "")).as_py():
            raise fail()
        out[name] = col
    return out


# ---------------------------------------------------------------------- raw ids
def id_array(col: pa.ChunkedArray | pa.Array | np.ndarray) -> np.ndarray:
    """Raw ids as int64 when every id is a canonical decimal integer, else as unicode.

    "42" becomes 42, but "007" or "B00006B8G0" keep the whole column as strings, so
    no id is ever changed by the conversion.
    """
    if isinstance(col, np.ndarray):
        col = pa.chunked_array([pa.array(col)])
    elif isinstance(col, pa.Array):
        col = pa.chunked_array([col])
    t = col.type
    if pa.types.is_integer(t):
        return col.to_numpy().astype(np.int64, copy=False)
    if pa.types.is_floating(t):
        arr = col.to_numpy()
        if np.all(np.isfinite(arr)) and np.all(np.mod(arr, 1) == 0):
            return arr.astype(np.int64)
        return arr.astype(str)
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        col = col.cast(pa.string())
    try:
        ints = pc.cast(col, pa.int64())
        if pc.all(pc.equal(pc.cast(ints, pa.string()), col)).as_py() is not False:
            return ints.to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    return col.to_numpy(zero_copy_only=False).astype(str)


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
