"""Trust / social graphs: ``trust.txt`` (trustor trustee value) or any edge-list CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ...errors import DataError, ParameterError
from .._interactions import build_csr
from .._vocab import Vocabulary
from ._text import (
    ID,
    NUMBER,
    check_file,
    first_line,
    id_array,
    looks_numeric,
    open_text,
    read_delimited,
    sep_name,
    sniff_sep,
)

_LABELS = {"trustor": "trustor id", "trustee": "trustee id", "value": "trust value"}
_HEADER_WORDS = {"trustor", "trustee", "truster", "source", "target", "src", "dst", "from", "to", "user", "user_id",
                 "userid", "friend", "friend_id", "follower", "followee", "value", "weight", "trust", "score"}


def _is_header(fields: list[str]) -> bool:
    """A first line is a header when its value column is not a number, or when every
    field is a usual column name."""
    if len(fields) == 3 and not looks_numeric(fields[2]):
        return True
    return all(f.strip().lower() in _HEADER_WORDS for f in fields)


def _data_line(path: Path, record: int, skip: int) -> int:
    """The line number of the ``record``-th (0-based) non-blank data line."""
    seen = -1
    with open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if lineno <= skip or not line.strip():
                continue
            seen += 1
            if seen == record:
                return lineno
    return lineno


def read_trust(path: str | Path, users: Vocabulary, *, sep: str | None = None, directed: bool = True,
               header: bool | None = None, unknown: str = "error") -> sp.csr_array:
    """Read a trust (social) graph over the users of ``users``.

    Parameters
    ----------
    path : str or Path
        ``trust.txt`` (``trustor trustee value``, whitespace separated, as in FilmTrust
        and Epinions) or any edge list: two columns (``trustor trustee``, every value 1)
        or three (``trustor trustee value``), separated by tabs, commas, semicolons,
        ``|`` or single spaces.
    users : Vocabulary
        The user vocabulary of the interactions the graph belongs to (e.g.
        ``data.users``); raw ids in the file are looked up in it.
    sep : str, optional
        The separator (guessed from the first line when None).
    directed : bool
        Keep links as given (``u`` trusts ``v``); False makes every link mutual (the
        larger value of the two directions).
    header : bool, optional
        Whether the first line names the columns (guessed when None: a header's value
        column is not a number, or all its fields are usual names such as ``source``,
        ``target``, ``weight``).
    unknown : {"error", "ignore"}
        What a user id missing from ``users`` does: raise, naming the file and line, or
        drop the link.

    Returns
    -------
    scipy.sparse.csr_array, shape (len(users), len(users)), float32
        ``T[u, v]``: how much ``u`` trusts ``v``. Self-links are kept as written;
        repeated links keep the last value.

    Raises
    ------
    DataError
        One sentence naming the file (and line): a missing or empty file, a line with
        other than 2 or 3 fields, an empty id, a value that is not a number, an unknown
        user id.
    """
    if unknown not in ("error", "ignore"):
        raise ParameterError(f"read_trust: unknown must be 'error' or 'ignore', got {unknown!r}")
    p = check_file(path)
    line = first_line(p)
    if sep is None:
        sep = sniff_sep(line)
    fields = line.split(sep)
    if header is None:
        header = _is_header(fields)
    if header:
        # the first data line tells the column count
        second = None
        with open_text(p) as f:
            lines = (ln.rstrip("\r\n") for ln in f if ln.strip())
            next(lines, None)
            second = next(lines, None)
        if second is None:
            raise DataError(f"{p}: has a header but no links")
        fields = second.split(sep)
    n = len(fields)
    if n not in (2, 3):
        where = 2 if header else 1
        raise DataError(
            f"{p}, line {where}: found {n} field(s) separated by {sep_name(sep)}; expected 'trustor trustee' "
            f"or 'trustor trustee value'"
        )
    names = ["trustor", "trustee", "value"][:n]
    kinds = {"trustor": ID, "trustee": ID}
    if n == 3:
        kinds["value"] = NUMBER
    skip = 1 if header else 0
    cols = read_delimited(p, sep=sep, names=names, kinds=kinds, skip_rows=skip, labels=_LABELS)
    values = cols["value"] if n == 3 else np.ones(len(cols["trustor"]))
    u = users.indices(id_array(cols["trustor"]), missing="negative")
    v = users.indices(id_array(cols["trustee"]), missing="negative")
    bad = (u < 0) | (v < 0)
    if bad.any():
        if unknown == "error":
            rec = int(np.flatnonzero(bad)[0])
            which, raw = ("trustor", cols["trustor"][rec]) if u[rec] < 0 else ("trustee", cols["trustee"][rec])
            raise DataError(
                f"{p}, line {_data_line(p, rec, skip)}: {which} id {raw!r} is not a user of the interactions "
                f"(pass unknown='ignore' to drop such links)"
            )
        keep = ~bad
        u, v, values = u[keep], v[keep], values[keep]
    shape = (len(users), len(users))
    if not directed:
        u, v, values = np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([values, values])
        matrix, _, _ = build_csr(u, v, values, None, shape, "max")
    else:
        matrix, _, _ = build_csr(u, v, values, None, shape, "last")
    return sp.csr_array(matrix, dtype=np.float32)
