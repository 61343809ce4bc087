"""Side tables (item / user attributes) aligned to a vocabulary."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .._vocab import Vocabulary
from ._text import unify_ids

_YEAR_SUFFIX = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")


def align(table: pd.DataFrame, ids: np.ndarray, vocab: Vocabulary) -> pd.DataFrame:
    """Rows of ``table`` (keyed by the raw ``ids``) in the index order of ``vocab``.

    The first row of a repeated id wins; ids of ``vocab`` without a row get missing values.
    """
    ids, vids = unify_ids(np.asarray(ids), vocab.ids)
    keep = ~pd.Index(ids).duplicated()
    out = table.loc[keep].set_axis(pd.Index(ids[keep]), axis=0)
    return out.reindex(pd.Index(vids)).reset_index(drop=True)


def split_year(titles: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``"Toy Story (1995)"`` -> ``("Toy Story", 1995)``; titles without a year are kept as they are."""
    parts = titles.astype("string").str.extract(_YEAR_SUFFIX)
    has = parts[0].notna()
    title = titles.astype("string").str.strip().where(~has, parts[0])
    year = pd.to_numeric(parts[1], errors="coerce").astype("Int64")
    return title, year


def to_year(values: pd.Series) -> pd.Series:
    """Numeric years (``Int64``), missing where the value is not a number."""
    return pd.to_numeric(values, errors="coerce").round().astype("Int64")


def join_genres(values: pd.Series, sep: str) -> pd.Series:
    """Genre lists written with ``sep`` as one ``"|"``-joined string per row."""
    s = values.astype("string").str.strip()
    if sep != "|":
        s = s.str.split(sep).str.join("|")
    return s.astype("string")
