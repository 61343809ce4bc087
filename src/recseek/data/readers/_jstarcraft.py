"""Data files in the layouts used by JStarCraft RNS."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import DataError
from .._interactions import Interactions, build_csr
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
    read_delimited,
    sep_name,
)

_SCORE_FILES = ("score.txt", "scores.txt", "ratings.txt", "rating.txt")
_LABELS = {"user": "user id", "item": "item id", "instant": "instant", "score": "score",
           "trustor": "trustor id", "trustee": "trustee id", "value": "trust value"}


def _layout(path: Path) -> tuple[str, list[str], dict[str, str]]:
    """Separator, column names and kinds, detected from the first line."""
    line = first_line(path)
    if "," in line:
        sep = ","
        layouts = {4: ["user", "item", "comment", "score"], 3: ["user", "item", "score"]}
    else:
        sep = "\t" if "\t" in line else " "
        layouts = {4: ["user", "item", "instant", "score"], 3: ["user", "item", "score"]}
    n = len(line.split(sep))
    if n not in layouts:
        raise DataError(
            f"{path}, line 1: found {n} fields separated by {sep_name(sep)}; expected "
            f"'user item instant score', 'user item score', 'user,item,comment,score' or 'user,item,score'"
        )
    names = layouts[n]
    kinds = {"user": ID, "item": ID, "score": NUMBER}
    if "instant" in names:
        kinds["instant"] = NUMBER
    if "comment" in names:
        kinds["comment"] = TEXT
    return sep, names, kinds


def _read_trust(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    line = first_line(path)
    sep = "," if "," in line else ("\t" if "\t" in line else " ")
    n = len(line.split(sep))
    names = ["trustor", "trustee", "value"][:n] if n in (2, 3) else ["trustor", "trustee", "value"]
    kinds = {"trustor": ID, "trustee": ID}
    if "value" in names:
        kinds["value"] = NUMBER
    cols = read_delimited(path, sep=sep, names=names, kinds=kinds, labels=_LABELS)
    values = cols["value"] if "value" in cols else np.ones(len(cols["trustor"]))
    return id_array(cols["trustor"]), id_array(cols["trustee"]), values


def read_jstarcraft(path: str | Path, *, duplicates: str = "last") -> Interactions:
    """Read a JStarCraft RNS data file; the layout is detected from the first line.

    Layouts
    -------
    ``user item instant score`` (space or tab separated, e.g. FilmTrust ``score.txt``)
        ``instant`` becomes the timestamps.
    ``user item score`` (space or tab separated)
        No timestamps.
    ``user,item,comment,score`` (review files such as ``musical_instruments.txt`` and
    ``dc_dense.txt``; the comment is a colon-separated list of word ids or
    ``aspect:sentiment`` pairs, possibly empty)
        ``meta["comments"]`` holds the comment of each stored record as a unicode array
        aligned with ``matrix.data``, of numpy's variable-width ``StringDType`` (a
        fixed-width ``<U`` array would pad every comment to the longest one: 190 MB for
        the 1 MB ``musical_instruments.txt``; ``.astype(str)`` gives one if needed) (for merged duplicates, the comment of the record
        the policy keeps: the last one, or the first for ``duplicates="first"``).
    ``user,item,score`` (e.g. ``product/scores.txt``)
        No timestamps.

    Parameters
    ----------
    path : str or Path
        The file, or a folder holding ``score.txt``.
    duplicates : str
        Policy for repeated (user, item) records, see :data:`DUPLICATE_POLICIES`.

    Notes
    -----
    When a ``trust.txt`` (``trustor trustee value``) lies beside the file, the directed
    trust graph is returned as ``trust``: a CSR array of shape (n_users, n_users) over
    the same user vocabulary (repeated links keep the last value). Users who only
    appear in the trust file are appended to the user vocabulary after the raters.
    """
    check_duplicates(duplicates)
    p = existing(path)
    if p.is_dir():
        found = [p / name for name in _SCORE_FILES if (p / name).exists()]
        if not found:
            raise DataError(f"{p}: folder holds none of the JStarCraft score files {', '.join(_SCORE_FILES)}")
        p = found[0]
    p = check_file(p)
    sep, names, kinds = _layout(p)
    cols = read_delimited(p, sep=sep, names=names, kinds=kinds, labels=_LABELS)
    trust_file = p.parent / "trust.txt"
    trust = _read_trust(trust_file) if trust_file.exists() and trust_file != p else None
    extra_users = None if trust is None else np.concatenate([trust[0], trust[1]])
    if extra_users is not None and extra_users.dtype.kind != trust[1].dtype.kind:
        extra_users = np.concatenate([trust[0].astype(str), trust[1].astype(str)])
    data = build_interactions(
        id_array(cols["user"]), id_array(cols["item"]), cols["score"],
        cols["instant"] if "instant" in cols else None,
        duplicates=duplicates, source=str(p), extra_users=extra_users,
    )
    meta: dict = {"source": str(p), "format": "jstarcraft"}
    if "comment" in cols:
        comments = cols["comment"].astype(np.dtypes.StringDType())
        meta["comments"] = comments[data.order]
    trust_matrix = None
    if trust is not None:
        tu = _encode(data.users.ids, trust[0])
        tv = _encode(data.users.ids, trust[1])
        trust_matrix, _, _ = build_csr(tu, tv, trust[2], None, (data.n_users, data.n_users), "last")
        meta["trust_source"] = str(trust_file)
    return Interactions(data.matrix, data.users, data.items, data.timestamps, trust=trust_matrix,
                        order=data.order, meta=meta)


def _encode(vocab_ids: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Indices of ``raw`` ids in a vocabulary's id array (all present), vectorised."""
    if vocab_ids.dtype.kind != raw.dtype.kind:
        vocab_ids, raw = vocab_ids.astype(str), raw.astype(str)
    order = np.argsort(vocab_ids, kind="stable")
    pos = np.searchsorted(vocab_ids, raw, sorter=order)
    return order[pos].astype(np.int64)
