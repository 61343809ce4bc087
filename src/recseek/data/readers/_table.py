"""Generic tables: CSV, TSV and Parquet with a column mapping."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from ..._interface import advice
from ..._optional import require
from ...errors import DataError, ParameterError
from .._interactions import Interactions
from ._text import (
    ID,
    NUMBER,
    build_interactions,
    check_duplicates,
    check_file,
    first_line,
    id_array,
    is_gzip,
    plain_suffix,
    read_delimited,
    sniff_sep,
)

TABLE_FORMATS = ("csv", "tsv", "parquet")
_ROLES = ("user", "item", "rating", "timestamp")
#: Column names tried, in order, for a role the mapping leaves out.
_GUESSES = {
    "user": ("user", "user_id", "userId", "userid", "UserID", "customer_id"),
    "item": ("item", "item_id", "itemId", "itemid", "movieId", "movie_id", "ItemID", "product_id"),
    "rating": ("rating", "score", "value", "Rating"),
    "timestamp": ("timestamp", "time", "ts", "Timestamp", "datetime"),
}
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}


def _resolve(
    available: list, columns: dict | None, header: bool, where: Path
) -> dict[str, object | None]:
    """Map each role to a column name (or position without header); None when absent."""
    columns = dict(columns or {})
    unknown = set(columns) - set(_ROLES)
    if unknown:
        raise ParameterError(f"columns: unknown role {sorted(unknown)[0]!r}; roles are user, item, rating, timestamp")
    found = ", ".join(str(c) for c in available)
    out: dict[str, object | None] = {}
    for pos, role in enumerate(_ROLES):
        if role in columns:
            col = columns[role]
            if col is None:
                if role in ("user", "item"):
                    raise ParameterError(f"columns: the {role} column cannot be None")
                out[role] = None
                continue
            if col not in available:
                raise DataError(f"{where}: missing {role} column {col!r} (columns found: {found})")
            out[role] = col
        elif header:
            out[role] = next((g for g in _GUESSES[role] if g in available), None)
            if out[role] is None and role in ("user", "item"):
                hint = advice(f"name it with columns={{{role!r}: ...}}",
                              toml=f'name it in [data] with options = {{ columns = {{ {role} = "..." }} }}')
                raise DataError(
                    f"{where}: missing {role} column (tried {', '.join(_GUESSES[role])}; columns found: {found}); "
                    f"{hint}"
                )
        else:
            out[role] = pos if pos < len(available) else None
    return out


def _guess_format(path: Path, format: str | None) -> str:
    if format is not None:
        if format not in TABLE_FORMATS:
            raise DataError(f"unknown table format {format!r}; expected one of {', '.join(TABLE_FORMATS)}")
        return format
    fmt = _EXTENSIONS.get(plain_suffix(path))
    if fmt is None:
        with open(path, "rb") as f:
            fmt = "parquet" if f.read(4) == b"PAR1" else "csv"
    return fmt


def _arrow_ids(col: Any) -> np.ndarray:
    """A Parquet id column (pyarrow ChunkedArray) as :func:`id_array` ids."""
    import pyarrow as pa

    if pa.types.is_integer(col.type):
        return col.to_numpy().astype(np.int64, copy=False)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if pa.types.is_floating(col.type) or pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return id_array(col.to_numpy(zero_copy_only=False))
    return id_array(col.cast(pa.string()).to_numpy(zero_copy_only=False))


def _numeric(col: Any, role: str, where: Path) -> np.ndarray:
    """A Parquet column as float64 (finite); temporal types become seconds since the epoch."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if col.null_count:
        row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{where}, row {row + 1}: {role} is missing")
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        micros = pc.cast(pc.cast(col, pa.timestamp("us")), pa.int64())
        return micros.to_numpy(zero_copy_only=False) / 1e6
    try:
        values = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = None
    if values is not None and np.all(np.isfinite(values)):
        return values
    raw = col.cast(pa.string()).to_numpy(zero_copy_only=False) if values is None else values
    for row, value in enumerate(raw):  # only reached when some value is bad: name it
        try:
            ok = bool(np.isfinite(float(value)))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise DataError(f"{where}, row {row + 1}: {role} {value!r} is not a number")
    raise DataError(f"{where}: {role} column cannot be read as numbers")


def read_table(
    path: str | Path,
    *,
    columns: dict[str, str | int | None] | None = None,
    sep: str | None = None,
    format: str | None = None,
    header: bool = True,
    duplicates: str = "last",
) -> Interactions:
    """Read interactions from a CSV, TSV or Parquet table.

    Parameters
    ----------
    path : str or Path
        The table file.
    columns : dict, optional
        Column of each role: ``{"user": ..., "item": ..., "rating": ..., "timestamp": ...}``
        (names, or 0-based positions when ``header=False``). Roles left out are looked up
        under common names (``user``/``user_id``/``userId``, ``item``/``item_id``/
        ``movieId``, ``rating``/``score``, ``timestamp``/``time``); without a rating
        column the feedback is implicit (1.0); ``None`` ignores a role.
    sep : str, optional
        Field separator of a text table; by default ``","`` for CSV, a tab for TSV, and
        sniffed from the first line for other extensions.
    format : {"csv", "tsv", "parquet"}, optional
        By default from the extension (Parquet also by its magic bytes).
    header : bool
        Whether a text table's first line holds column names. Without a header the
        default roles are columns 0 (user), 1 (item), 2 (rating) and 3 (timestamp).
    duplicates : str
        Policy for repeated (user, item) records, see :data:`DUPLICATE_POLICIES`.
    """
    check_duplicates(duplicates)
    p = check_file(path)
    fmt = _guess_format(p, format)
    if fmt == "parquet":
        pq = require("pyarrow.parquet", purpose="reading Parquet files")
        import pyarrow as pa

        if is_gzip(p):
            raise DataError(f"{p}: a gzip-compressed Parquet file; decompress it first (Parquet compresses itself)")
        try:
            schema = pq.read_schema(p)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{p}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
        roles = _resolve(list(schema.names), columns, True, p)
        wanted = [c for c in roles.values() if c is not None]
        table = pq.read_table(p, columns=wanted)
        if table.num_rows == 0:
            raise DataError(f"{p}: has no records")
        for role in ("user", "item"):
            col = table.column(roles[role])
            if col.null_count:
                row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
                raise DataError(f"{p}, row {row + 1}: {role} id is missing")
        users, items = _arrow_ids(table.column(roles["user"])), _arrow_ids(table.column(roles["item"]))
        values = None if roles["rating"] is None else _numeric(table.column(roles["rating"]), "rating", p)
        times = None if roles["timestamp"] is None else _numeric(table.column(roles["timestamp"]), "timestamp", p)
    else:
        line = first_line(p)
        if sep is None:
            sep = {"csv": ",", "tsv": "\t"}[fmt] if plain_suffix(p) in _EXTENSIONS else sniff_sep(line)
        fields = next(csv.reader([line], delimiter=sep)) if len(sep) == 1 else line.split(sep)
        names = [f.strip() for f in fields] if header else [f"column {i}" for i in range(len(fields))]
        if header and len(set(names)) != len(names):
            raise DataError(f"{p}, line 1: repeated column names in the header ({', '.join(names)})")
        roles = _resolve(names if header else list(range(len(fields))), columns, header, p)
        named = {role: (c if header else names[c]) for role, c in roles.items() if c is not None}
        kinds = {named["user"]: ID, named["item"]: ID}
        labels = {named["user"]: "user id", named["item"]: "item id"}
        for role in ("rating", "timestamp"):
            if role in named:
                kinds[named[role]] = NUMBER
                labels[named[role]] = role
        cols = read_delimited(p, sep=sep, names=names, kinds=kinds, skip_rows=int(header), quote=True,
                              labels=labels)
        users, items = id_array(cols[named["user"]]), id_array(cols[named["item"]])
        values = cols[named["rating"]] if "rating" in named else None
        times = cols[named["timestamp"]] if "timestamp" in named else None
    data = build_interactions(users, items, values, times, duplicates=duplicates, source=str(p))
    return Interactions(data.matrix, data.users, data.items, data.timestamps, order=data.order,
                        meta={"source": str(p), "format": fmt})
