"""Interactions, vocabularies, readers and splits."""

from ._interactions import DUPLICATE_POLICIES, SIDE_DATA, Interactions, build_csr
from ._vocab import Vocabulary

__all__ = ["DUPLICATE_POLICIES", "SIDE_DATA", "Interactions", "Vocabulary", "build_csr"]
from .split import given_n, kfold, leave_one_out, random_split, ratio_split, temporal_split  # noqa: E402

__all__ += ["given_n", "kfold", "leave_one_out", "random_split", "ratio_split", "temporal_split"]

# readers pull in pyarrow.csv: imported on first use so that ``import recseek`` stays light
_READERS = ("read", "read_jstarcraft", "read_movielens", "read_recbole", "read_table")
__all__ += list(_READERS)


def __getattr__(name: str):
    if name in _READERS:
        from . import readers

        return getattr(readers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
