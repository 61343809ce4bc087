"""RecBole atomic files: ``<name>.inter`` with optional ``<name>.item`` / ``<name>.user``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...errors import DataError, ParameterError
from .._interactions import Interactions
from ._side import align, join_genres, to_year
from ._text import (
    ID,
    NUMBER,
    TEXT,
    build_interactions,
    check_duplicates,
    check_file,
    first_line,
    id_array,
    read_delimited,
)

_TYPES = ("token", "float", "token_seq", "float_seq")
_DEFAULT_COLUMNS = {"user": "user_id", "item": "item_id", "rating": "rating", "timestamp": "timestamp"}
_TITLE_COLUMNS = ("title", "movie_title", "item_name", "name", "book_title")
_GENRE_COLUMNS = ("genres", "genre", "class", "categories", "category")
_YEAR_COLUMNS = ("year", "release_year")


def _inter_file(path: str | Path) -> Path:
    """The ``.inter`` file for a file, a folder, or a prefix such as ``.../ml-100k/ml-100k``."""
    p = Path(path).expanduser()
    if p.is_dir():
        named = p / f"{p.name}.inter"
        if named.exists():
            return named
        found = sorted(p.glob("*.inter"))
        if len(found) == 1:
            return found[0]
        if not found:
            raise DataError(f"{p}: folder holds no RecBole .inter file")
        raise DataError(f"{p}: folder holds several .inter files ({', '.join(f.name for f in found)}); pass one")
    if p.suffix != ".inter" and not p.exists() and p.with_name(p.name + ".inter").exists():
        return p.with_name(p.name + ".inter")
    return check_file(p)


def _header(path: Path) -> tuple[list[str], list[str]]:
    """Column names and RecBole types of an atomic file's header line."""
    line = first_line(path)
    names, types = [], []
    for pos, field in enumerate(line.split("\t"), 1):
        name, colon, typ = field.partition(":")
        if not colon or typ not in _TYPES or not name:
            raise DataError(
                f"{path}, line 1, column {pos}: header field {field!r} is not of the form name:type "
                f"with type one of {', '.join(_TYPES)}"
            )
        names.append(name)
        types.append(typ)
    return names, types


def _side_table(path: Path, key: str) -> tuple[pd.Series, pd.DataFrame]:
    """Raw ids and the other columns of a ``.item`` / ``.user`` file."""
    names, types = _header(path)
    if key not in names:
        raise DataError(f"{path}: missing column {key!r} (columns found: {', '.join(names)})")
    kinds = {n: (ID if n == key else TEXT) for n in names}
    cols = read_delimited(path, sep="\t", names=names, kinds=kinds, skip_rows=1)
    ids = id_array(cols[key])
    frame = {}
    for name, typ in zip(names, types, strict=True):
        if name == key:
            continue
        values = pd.Series(cols[name], dtype="string")
        frame[name] = pd.to_numeric(values, errors="coerce") if typ == "float" else values
    return ids, pd.DataFrame(frame)


def _normalise_items(df: pd.DataFrame) -> pd.DataFrame:
    """Add the common ``title``, ``year`` and ``genres`` columns when their source exists."""
    cols = set(df.columns)
    title = next((c for c in _TITLE_COLUMNS if c in cols), None)
    if title is not None and title != "title":
        df["title"] = df[title].astype("string").str.strip()
    year = next((c for c in _YEAR_COLUMNS if c in cols), None)
    if year is not None and year != "year":
        df["year"] = to_year(df[year])
    genres = next((c for c in _GENRE_COLUMNS if c in cols), None)
    if genres is not None and genres != "genres":
        df["genres"] = join_genres(df[genres], " ")
    return df


def _normalise_users(df: pd.DataFrame) -> pd.DataFrame:
    """An ``age`` token column whose values are all whole numbers becomes ``Int64``."""
    if "age" in df.columns:
        age = pd.to_numeric(df["age"], errors="coerce")
        if age.notna().sum() == df["age"].notna().sum() and (age.dropna() % 1 == 0).all():
            df["age"] = age.astype("Int64")
    return df


def read_recbole(
    path: str | Path,
    *,
    columns: dict[str, str | None] | None = None,
    duplicates: str = "last",
) -> Interactions:
    """Read RecBole atomic files.

    Parameters
    ----------
    path : str or Path
        The ``.inter`` file, the dataset folder (``ml-100k/`` holding ``ml-100k.inter``)
        or the prefix (``ml-100k/ml-100k``).
    columns : dict, optional
        Column names for ``user``, ``item``, ``rating`` and ``timestamp`` (defaults
        ``user_id``, ``item_id``, ``rating``, ``timestamp``). A missing ``rating`` column
        means implicit feedback (1.0); ``None`` ignores a column.
    duplicates : str
        Policy for repeated (user, item) records, see :data:`DUPLICATE_POLICIES`.

    Returns
    -------
    Interactions
        With ``item_data`` from ``<name>.item`` (the original columns plus ``title``,
        ``year`` and ``genres`` -- a ``"|"``-joined string -- when a title / year /
        genre column exists) and ``user_data`` from ``<name>.user``. Items listed in
        ``.item`` (users in ``.user``) that have no interaction are appended to the
        vocabulary after the others, so the matrix has empty columns (rows) for them.
    """
    check_duplicates(duplicates)
    inter = _inter_file(path)
    names, _types = _header(inter)
    spec = dict(_DEFAULT_COLUMNS)
    explicit = set()
    if columns:
        unknown = set(columns) - set(spec)
        if unknown:
            raise ParameterError(f"columns: unknown role {sorted(unknown)[0]!r}; roles are user, item, rating, timestamp")
        spec.update(columns)
        explicit = {role for role, col in columns.items() if col is not None}
    found = ", ".join(names)
    for role in ("user", "item"):
        if spec[role] is None or spec[role] not in names:
            raise DataError(f"{inter}: missing {role} column {spec[role]!r} (columns found: {found})")
    for role in ("rating", "timestamp"):
        if spec[role] is not None and spec[role] not in names:
            if role in explicit:
                raise DataError(f"{inter}: missing {role} column {spec[role]!r} (columns found: {found})")
            spec[role] = None
    kinds = {spec["user"]: ID, spec["item"]: ID}
    labels = {spec["user"]: "user id", spec["item"]: "item id"}
    for role in ("rating", "timestamp"):
        if spec[role] is not None:
            kinds[spec[role]] = NUMBER
            labels[spec[role]] = role
    cols = read_delimited(inter, sep="\t", names=names, kinds=kinds, skip_rows=1, labels=labels)
    users = id_array(cols[spec["user"]])
    items = id_array(cols[spec["item"]])
    values = None if spec["rating"] is None else cols[spec["rating"]]
    times = None if spec["timestamp"] is None else cols[spec["timestamp"]]

    item_file = inter.with_suffix(".item")
    user_file = inter.with_suffix(".user")
    item_side = _side_table(item_file, spec["item"]) if item_file.exists() else None
    user_side = _side_table(user_file, spec["user"]) if user_file.exists() else None
    data = build_interactions(
        users, items, values, times, duplicates=duplicates, source=str(inter),
        extra_users=None if user_side is None else user_side[0],
        extra_items=None if item_side is None else item_side[0],
    )
    item_data = None if item_side is None else _normalise_items(align(item_side[1], item_side[0], data.items))
    user_data = None if user_side is None else _normalise_users(align(user_side[1], user_side[0], data.users))
    meta = {"source": str(inter), "format": "recbole"}
    return Interactions(data.matrix, data.users, data.items, data.timestamps, item_data=item_data,
                        user_data=user_data, order=data.order, meta=meta)
