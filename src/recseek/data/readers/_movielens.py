"""MovieLens files as distributed by GroupLens (100K, 1M, 10M, 20M, latest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError
from .._interactions import Interactions
from ._side import align, join_genres, split_year
from ._text import (
    ID,
    NUMBER,
    TEXT,
    build_interactions,
    check_duplicates,
    check_file,
    existing,
    first_line,
    id_array,
    looks_numeric,
    plain_suffix,
    read_delimited,
)

_RATING_FILES = ("u.data", "ratings.dat", "ratings.csv")
#: Genre flag order of ``u.item`` when no ``u.genre`` file lies beside it.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)
_RATING_NAMES = ["user", "item", "rating", "timestamp"]
_RATING_KINDS = {"user": ID, "item": ID, "rating": NUMBER, "timestamp": NUMBER}
_RATING_LABELS = {"user": "user id", "item": "item id"}


def _encoding(path: Path) -> str:
    """UTF-8 when the file decodes as such, else Latin-1 (older MovieLens releases)."""
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def _ratings_file(path: Path) -> Path:
    if path.is_dir():
        for name in _RATING_FILES:
            if (path / name).exists():
                return path / name
        raise DataError(f"{path}: folder holds none of the MovieLens rating files {', '.join(_RATING_FILES)}")
    return check_file(path)


def _read_ratings(path: Path) -> dict:
    line = first_line(path)
    if path.name == "ratings.dat" or "::" in line:
        sep, header = "::", False
    elif plain_suffix(path) == ".csv" or ("," in line and "\t" not in line):
        sep, header = ",", not looks_numeric(line.split(",")[0])
    else:
        sep, header = "\t", not looks_numeric(line.split("\t")[0])
    return read_delimited(path, sep=sep, names=_RATING_NAMES, kinds=_RATING_KINDS, skip_rows=int(header),
                          labels=_RATING_LABELS)


def _genre_names(folder: Path) -> list[str]:
    genre_file = folder / "u.genre"
    if not genre_file.exists():
        return list(ML100K_GENRES)
    cols = read_delimited(genre_file, sep="|", names=["name", "index"], kinds={"name": TEXT, "index": NUMBER},
                          encoding=_encoding(genre_file))
    order = cols["index"].argsort(kind="stable")
    return [str(x) for x in cols["name"][order]]


def _read_items(folder: Path) -> tuple | None:
    """Raw item ids and a frame with ``title``, ``year``, ``genres`` (+ dates, URL for 100K)."""
    if (folder / "u.item").exists():
        path = folder / "u.item"
        genres = _genre_names(folder)
        names = ["item", "title", "release_date", "video_release_date", "imdb_url", *genres]
        kinds = {n: TEXT for n in names if n != "video_release_date"}
        kinds["item"] = ID
        cols = read_delimited(path, sep="|", names=names, kinds=kinds, encoding=_encoding(path))
        genre_text = np.full(len(cols["item"]), "", dtype=object)
        for g in genres:
            genre_text = np.where(cols[g] == "1", genre_text + g + "|", genre_text)
        title, year = split_year(pd.Series(cols["title"]))
        frame = pd.DataFrame({
            "title": title,
            "year": year,
            "genres": pd.Series(genre_text, dtype="string").str.rstrip("|"),
            "release_date": pd.Series(cols["release_date"], dtype="string"),
            "imdb_url": pd.Series(cols["imdb_url"], dtype="string"),
        })
        return id_array(cols["item"]), frame
    for name, sep, header, quote in (("movies.dat", "::", 0, False), ("movies.csv", ",", 1, True)):
        path = folder / name
        if path.exists():
            cols = read_delimited(path, sep=sep, names=["item", "title", "genres"],
                                  kinds={"item": ID, "title": TEXT, "genres": TEXT}, skip_rows=header,
                                  encoding=_encoding(path), quote=quote)
            title, year = split_year(pd.Series(cols["title"]))
            genres = join_genres(pd.Series(cols["genres"]), "|")
            return id_array(cols["item"]), pd.DataFrame({"title": title, "year": year, "genres": genres})
    return None


def _read_users(folder: Path) -> tuple | None:
    for name, sep, names in (
        ("u.user", "|", ["user", "age", "gender", "occupation", "zip_code"]),
        ("users.dat", "::", ["user", "gender", "age", "occupation", "zip_code"]),
    ):
        path = folder / name
        if path.exists():
            kinds = {n: TEXT for n in names}
            kinds["user"] = ID
            cols = read_delimited(path, sep=sep, names=names, kinds=kinds, encoding=_encoding(path))
            frame = pd.DataFrame({
                n: pd.Series(cols[n], dtype="string") for n in names[1:]
            })
            frame["age"] = pd.to_numeric(frame["age"], errors="coerce").astype("Int64")
            return id_array(cols["user"]), frame
    return None


def read_movielens(path: str | Path, *, duplicates: str = "last") -> Interactions:
    """Read a MovieLens data set as distributed by GroupLens.

    Parameters
    ----------
    path : str or Path
        The rating file -- ``u.data`` (tab separated ``user item rating timestamp``),
        ``ratings.dat`` (``::`` separated) or ``ratings.csv`` (with a header) -- or the
        folder holding it.
    duplicates : str
        Policy for repeated (user, item) records, see :data:`DUPLICATE_POLICIES`.

    Returns
    -------
    Interactions
        ``item_data`` comes from ``u.item``, ``movies.dat`` or ``movies.csv`` beside the
        ratings: ``title`` (without the trailing year), ``year`` (``Int64``) and
        ``genres`` (a ``"|"``-joined string; from the genre flags of ``u.item``), plus
        ``release_date`` and ``imdb_url`` for 100K. ``user_data`` comes from ``u.user``
        or ``users.dat``. Movies (users) listed there without ratings are appended to
        the vocabulary after the rated ones.
    """
    check_duplicates(duplicates)
    ratings = _ratings_file(existing(path))
    cols = _read_ratings(ratings)
    items_side = _read_items(ratings.parent)
    users_side = _read_users(ratings.parent)
    data = build_interactions(
        id_array(cols["user"]), id_array(cols["item"]), cols["rating"], cols["timestamp"],
        duplicates=duplicates, source=str(ratings),
        extra_users=None if users_side is None else users_side[0],
        extra_items=None if items_side is None else items_side[0],
    )
    item_data = None if items_side is None else align(items_side[1], items_side[0], data.items)
    user_data = None if users_side is None else align(users_side[1], users_side[0], data.users)
    return Interactions(data.matrix, data.users, data.items, data.timestamps, item_data=item_data,
                        user_data=user_data, order=data.order,
                        meta={"source": str(ratings), "format": "movielens"})
