"""Readers: data files -> :class:`~recseek.data.Interactions`.

======================  ===================================================================
``read_recbole``        RecBole atomic files (``.inter`` + optional ``.item`` / ``.user``)
``read_movielens``      GroupLens MovieLens (``u.data``, ``ratings.dat``, ``ratings.csv``)
``read_jstarcraft``     JStarCraft RNS layouts (FilmTrust ``score.txt`` + ``trust.txt``,
                        review files ``user,item,comment,score``, ``user,item,score``)
``read_table``          CSV / TSV / Parquet with a column mapping
``read``                any of the above, chosen by ``format`` or guessed from the path
======================  ===================================================================

Raw ids are kept exactly: a column whose ids are all canonical decimal integers
(``"42"``, not ``"042"``) becomes an ``int64`` vocabulary, anything else a unicode one.
Vocabularies list ids in first-seen order; users / items that only appear in side files
(``.item``, ``u.item``, ``trust.txt`` ...) are appended after the others. ``order`` holds
the input position of every stored record, ``meta["source"]`` the file read.

Duplicate (user, item) records
------------------------------
A matrix stores one value per (user, item). Every reader takes ``duplicates``, one of
:data:`~recseek.data.DUPLICATE_POLICIES`:

``"last"`` (default)
    keep the latest record -- by timestamp when the file has timestamps (ties: the one
    later in the file), else the last one in the file;
``"first"``
    keep the earliest record;
``"mean"``, ``"sum"``, ``"max"``
    combine the values; the kept timestamp and input position are those of the latest
    record.

Errors
------
Bad input raises :class:`~recseek.errors.DataError` with one sentence naming the file
and, where it applies, the line and column: a missing path, an empty file, a missing
column (with the columns found), a line with the wrong number of fields, an empty id,
or a rating / timestamp that is not a finite number (with the value). Text files are
parsed in C (``pyarrow.csv`` when pyarrow is installed, else pandas); the line-by-line
scan that names the bad line only runs when parsing fails. Gzip-compressed files
(``ratings.csv.gz``) are read transparently; Parquet needs the ``parquet`` extra.
"""

from __future__ import annotations

from pathlib import Path

from ..._interface import advice
from ...errors import DataError, ParameterError
from .._interactions import Interactions
from ._features import genre_features, read_item_features, read_item_relations, with_item_features
from ._jstarcraft import read_jstarcraft
from ._movielens import read_movielens
from ._poi import read_checkins, read_locations
from ._recbole import read_recbole
from ._reviews import read_reviews
from ._social import read_trust
from ._table import read_table
from ._text import plain_suffix

#: Formats understood by :func:`read`.
FORMATS = ("recbole", "movielens", "jstarcraft", "csv", "tsv", "parquet")
_TABLE_OPTIONS = {"duplicates", "columns", "sep", "header"}
_OPTIONS = {
    "recbole": {"duplicates", "columns"},
    "movielens": {"duplicates"},
    "jstarcraft": {"duplicates"},
    "csv": _TABLE_OPTIONS,
    "tsv": _TABLE_OPTIONS,
    "parquet": _TABLE_OPTIONS - {"sep", "header"},
}


def guess_format(path: str | Path) -> str:
    """The format of a data file or folder, from its names; DataError when it cannot tell."""
    p = Path(path).expanduser()
    if not p.exists() and p.with_name(p.name + ".inter").exists():
        return "recbole"
    if not p.exists():
        raise DataError(f"{p}: no such file or directory")
    if p.is_dir():
        if any(p.glob("*.inter")):
            return "recbole"
        if any((p / n).exists() for n in ("u.data", "ratings.dat", "ratings.csv")):
            return "movielens"
        if any((p / n).exists() for n in ("score.txt", "scores.txt", "ratings.txt", "rating.txt")):
            return "jstarcraft"
        raise DataError(f"{p}: cannot tell the format of this folder; {_format_hint()}")
    name, suffix = p.name, plain_suffix(p)
    if suffix == ".inter":
        return "recbole"
    if name in ("u.data", "ratings.dat") or (name == "ratings.csv" and (p.parent / "movies.csv").exists()):
        return "movielens"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    if suffix == ".csv":
        return "csv"
    if suffix == ".txt":
        return "jstarcraft"
    raise DataError(f"{p}: cannot tell the format from the file name; {_format_hint()}")


def _format_hint() -> str:
    names = ", ".join(FORMATS)
    return advice(f"pass format= (one of {names})", cli=f"pass --format (one of {names})",
                  toml=f'set format = "..." in [data] (one of {names})')


def read(path: str | Path, format: str | None = None, **kwargs) -> Interactions:
    """Read interactions in ``format`` (one of :data:`FORMATS`; guessed from the path when None).

    Keyword arguments go to the reader: ``duplicates`` for all, ``columns`` for
    ``recbole`` and the tables, ``sep`` and ``header`` for the tables.
    """
    if format is None:
        format = guess_format(path)
    if format not in FORMATS:
        raise DataError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    allowed = _OPTIONS[format]
    extra = sorted(set(kwargs) - allowed)
    if extra:
        raise ParameterError(
            f"read: option {extra[0]!r} does not apply to format {format!r} (options: {', '.join(sorted(allowed))})"
        )
    if format == "recbole":
        return read_recbole(path, **kwargs)
    if format == "movielens":
        return read_movielens(path, **kwargs)
    if format == "jstarcraft":
        return read_jstarcraft(path, **kwargs)
    return read_table(path, format=format, **kwargs)


__all__ = ["FORMATS", "guess_format", "read", "read_jstarcraft", "read_movielens", "read_recbole", "read_table",
           "read_checkins", "read_locations", "read_reviews", "read_trust",
           "genre_features", "read_item_features", "read_item_relations", "with_item_features"]
