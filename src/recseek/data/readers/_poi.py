"""Check-ins at places (points of interest) and the coordinates of the places."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError, ParameterError
from .._interactions import Interactions
from .._vocab import Vocabulary
from ._text import (
    ID,
    NUMBER,
    build_interactions,
    check_duplicates,
    check_file,
    existing,
    first_line,
    id_array,
    read_delimited,
    sep_name,
    sniff_sep,
)

_LABELS = {"user": "user id", "item": "place id", "score": "check-in count",
           "latitude": "latitude", "longitude": "longitude"}


def _read_checkin_file(path: Path) -> dict[str, np.ndarray]:
    p = check_file(existing(path))
    line = first_line(p)
    sep = sniff_sep(line, ("\t", ",", " "))
    n = len(line.split(sep))
    if n not in (2, 3):
        raise DataError(f"{p}, line 1: found {n} fields separated by {sep_name(sep)}; expected 'user place [count]'")
    names = ["user", "item", "score"][:n]
    kinds = {"user": ID, "item": ID}
    if n == 3:
        kinds["score"] = NUMBER
    cols = read_delimited(p, sep=sep, names=names, kinds=kinds, labels=_LABELS)
    if "score" not in cols:
        cols["score"] = np.ones(len(cols["user"]))
    return cols


def read_checkins(train_path: str | Path, test_path: str | Path | None = None, *,
                  duplicates: str = "sum") -> Interactions | tuple[Interactions, Interactions]:
    """Read check-ins ``user place [count]`` (space, tab or comma separated).

    The FourSquare files of JStarCraft RNS (``poi/FourSquare/checkin/train.txt`` and
    ``test.txt``: ``USER_894 LOC_2915 1``) have this layout; a missing count is 1.

    Parameters
    ----------
    train_path : path
        The check-ins (the training part when ``test_path`` is given).
    test_path : path, optional
        A second file of check-ins; both files are then read onto one user and one place
        vocabulary (the training file's ids first) and ``(train, test)`` is returned.
    duplicates : str
        Policy for repeated (user, place) lines within one file (default ``"sum"``: the
        counts add up).

    Returns
    -------
    Interactions, or (train, test) when ``test_path`` is given.
    """
    check_duplicates(duplicates)
    first = _read_checkin_file(Path(train_path))
    if test_path is None:
        data = build_interactions(id_array(first["user"]), id_array(first["item"]), first["score"], None,
                                  duplicates=duplicates, source=str(train_path))
        return _with_meta(data, str(train_path))
    second = _read_checkin_file(Path(test_path))
    users = id_array(np.concatenate([first["user"], second["user"]]))
    items = id_array(np.concatenate([first["item"], second["item"]]))
    n = len(first["user"])
    both = build_interactions(users, items, np.concatenate([first["score"], second["score"]]), None,
                              duplicates=duplicates, source=f"{train_path} + {test_path}")
    u_all = both.users.indices(users)
    i_all = both.items.indices(items)
    values = np.concatenate([first["score"], second["score"]])
    train = Interactions.from_indices(u_all[:n], i_all[:n], values[:n], None, both, duplicates)
    test = Interactions.from_indices(u_all[n:], i_all[n:], values[n:], None, both, duplicates)
    return _with_meta(train, str(train_path)), _with_meta(test, str(test_path))


def _with_meta(data: Interactions, source: str) -> Interactions:
    return replace(data, meta={"source": source, "format": "checkins"})


def read_locations(path: str | Path, items: Vocabulary, *, unknown: str = "ignore") -> pd.DataFrame:
    """Coordinates of places, ``id latitude longitude`` per line, aligned with ``items``.

    ``FoursquareLocation.txt`` of JStarCraft RNS has this layout (``LOC_1967
    1.3095228 103.9017820``). Put the result into ``Interactions.item_data`` (the
    ``"item_locations"`` side data of place models such as RankGeoFM).

    Parameters
    ----------
    path : path
        The location file (space, tab or comma separated).
    items : Vocabulary
        The place vocabulary of the check-ins.
    unknown : {"ignore", "error"}
        What a place id absent from ``items`` does: skipped, or a DataError naming its line.

    Returns
    -------
    pandas.DataFrame with float64 columns ``latitude`` and ``longitude``, one row per item
    of ``items`` in index order; NaN where the file has no coordinates for an item.

    Errors
    ------
    DataError naming file and line for a line without three fields, an empty id, a
    coordinate that is not a number, a latitude outside [-90, 90] or a longitude outside
    [-180, 180], and (``unknown="error"``) an unknown place id.
    """
    if unknown not in ("ignore", "error"):
        raise ParameterError(f"read_locations: unknown must be 'ignore' or 'error', got {unknown!r}")
    p = check_file(existing(path))
    line = first_line(p)
    sep = sniff_sep(line, ("\t", ",", " "))
    names = ["item", "latitude", "longitude"]
    cols = read_delimited(p, sep=sep, names=names, kinds={"item": ID, "latitude": NUMBER, "longitude": NUMBER},
                          labels=_LABELS)
    lat, lon = cols["latitude"], cols["longitude"]
    for label, values, bound in (("latitude", lat, 90.0), ("longitude", lon, 180.0)):
        bad = np.abs(values) > bound
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise DataError(f"{p}, line {_line_of(p, k)}: {label} {float(values[k])!r} lies outside "
                            f"[-{bound:g}, {bound:g}]")
    ids = id_array(cols["item"])
    vids = items.ids
    if ids.dtype.kind != vids.dtype.kind:
        ids, vids = ids.astype(str), vids.astype(str)
    pos = pd.Index(vids).get_indexer(ids)
    if unknown == "error" and (pos < 0).any():
        k = int(np.flatnonzero(pos < 0)[0])
        raise DataError(f"{p}, line {_line_of(p, k)}: place id {cols['item'][k]!r} does not occur in the check-ins")
    keep = pos >= 0
    out = pd.DataFrame({"latitude": np.full(len(items), np.nan), "longitude": np.full(len(items), np.nan)})
    # the first line of a repeated id wins
    order = np.flatnonzero(keep)[::-1]
    out.loc[pos[order], "latitude"] = lat[order]
    out.loc[pos[order], "longitude"] = lon[order]
    return out


def _line_of(path: Path, record: int) -> int:
    from ._reviews import _line_of as line_of

    return line_of(path, record)
