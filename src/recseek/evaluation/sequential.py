"""The sequential protocol: leave each user's last item out by time, rank the whole catalogue.

Sequential models (SASRec) read a user's history in time order and predict the next
item. Their standard protocol (Kang & McAuley 2018; RecBole's ``LS`` split) is:

- per user with at least ``min_history + 1`` interactions, the most recent interaction
  (by timestamp, ties broken by input order) is the test item and everything before it is
  the training history; users with fewer interactions keep everything in training and are
  not evaluated;
- optionally the item before it is held out the same way for validation
  (:func:`leave_last_out` with ``validation=True``);
- every model ranks the whole catalogue minus the user's history (full ranking, no
  sampled negatives; ``exclude_history=False`` keeps the history in the ranking, as
  RecBole's full-sort evaluation of sequential models does), and NDCG@k and HR@k (hit
  rate: the test item in the top k) are averaged over the evaluated users;
- the history a sequential model reads at test time is the user's training sequence, or,
  with ``valid=`` (a three-way split), the training sequence followed by the validation
  item, as RecBole and the SASRec paper feed it: the model is trained on ``train`` and
  reads ``train + valid`` through its ``score_histories`` (nothing is refitted).

Any recommender can be evaluated this way (non-sequential ones simply ignore the order),
which gives the comparison the literature reports.
"""

from __future__ import annotations

import numpy as np

from ..data._interactions import Interactions
from ..errors import DataError, ParameterError
from ..models.base import Recommender, check_k

__all__ = ["evaluate_sequential", "leave_last_out"]


def _positions_from_end(data: Interactions) -> np.ndarray:
    """For each stored entry, its position counted from the user's most recent one (0 = last)."""
    if data.timestamps is None:
        raise DataError("the sequential protocol needs timestamps, and the data has none")
    order = data.order if data.order is not None else np.arange(data.nnz)
    users = data.user_index()
    idx = np.lexsort((order, data.timestamps, users))
    counts = np.diff(data.matrix.indptr)
    ends = np.repeat(data.matrix.indptr[1:], counts)
    out = np.empty(data.nnz, dtype=np.int64)
    # idx lists each user's entries oldest first, users in index order
    out[idx] = ends - 1 - np.arange(data.nnz)
    return out


def leave_last_out(data: Interactions, *, validation: bool = False, min_history: int = 1
                   ) -> tuple[Interactions, ...]:
    """``(train, test)`` (or ``(train, valid, test)`` with ``validation``): each user's last
    interaction by time to test (the one before it to validation), the rest to train.

    Users with fewer than ``min_history`` training interactions left stay wholly in
    train. Timestamps are required; equal times keep the input order.
    """
    if isinstance(min_history, bool) or not isinstance(min_history, int) or min_history < 1:
        raise ParameterError(f"min_history must be a positive integer, got {min_history!r}")
    held = 2 if validation else 1
    pos = _positions_from_end(data)
    counts = np.diff(data.matrix.indptr)[data.user_index()]
    eligible = counts >= min_history + held
    test = eligible & (pos == 0)
    parts = [data.subset(~eligible | (pos >= held))]
    if validation:
        parts.append(data.subset(eligible & (pos == 1)))
    parts.append(data.subset(test))
    return tuple(parts)


def evaluate_sequential(model: Recommender, train: Interactions, test: Interactions, k: int = 10, *,
                        valid: Interactions | None = None, exclude_history: bool = True) -> dict[str, float]:
    """``{"ndcg@k", "hitrate@k", "users"}`` of a fitted model on a :func:`leave_last_out` split
    (full ranking of the whole catalogue).

    Parameters
    ----------
    model : Recommender
        Fitted on ``train``.
    train, test : Interactions
        The split's training and test parts.
    k : int
        List length.
    valid : Interactions, optional
        The validation part of a ``leave_last_out(validation=True)`` split. When given,
        each user's history is the training sequence followed by the validation item:
        a model with ``score_histories`` (SASRec) reads that history in time order;
        any other model scores the user as trained (it cannot read a history), and the
        validation item joins the excluded history.
    exclude_history : bool
        Leave the history's items out of each list (default). False ranks every item,
        as RecBole's full-sort evaluation of sequential models does.
    """
    import scipy.sparse as sp

    from ..metrics import ranking as rm
    from ..models._topk import topk

    k = check_k(k, "k")
    if not isinstance(exclude_history, bool):
        raise ParameterError(f"exclude_history must be True or False, got {exclude_history!r}")
    if test.shape != train.shape or (valid is not None and valid.shape != train.shape):
        raise DataError("train, valid and test must come from one split (same users and items)")
    users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    if users.size == 0:
        raise DataError("the test set holds no user with a test item")
    history = sp.csr_array(train.matrix[users])
    if valid is not None:
        history = sp.csr_array(history + sp.csr_array(valid.matrix[users]))
    history = sp.csr_array((np.ones(history.nnz, dtype=np.float32), history.indices, history.indptr),
                           shape=history.shape)
    if valid is not None and hasattr(model, "score_histories"):
        from ..models.neural.sasrec import user_sequences

        seqs_train = user_sequences(train, train.nnz + 1)
        seqs_valid = user_sequences(valid, valid.nnz + 1)
        scores = model.score_histories([np.concatenate([seqs_train[u], seqs_valid[u]]) for u in users])
        ids = topk(scores, k, exclude=history if exclude_history else None).ids
    elif exclude_history:
        ids = model.recommend(users, k, exclude_seen=False, exclude=history).ids
    else:
        ids = model.recommend(users, k, exclude_seen=False).ids
    rel = test.matrix[users]
    hits = rm.hit_matrix(ids, rel)
    n_rel = np.diff(rel.indptr)
    return {
        f"ndcg@{k}": float(np.mean(rm.ndcg(hits, n_rel, rm.list_lengths(ids)))),
        f"hitrate@{k}": float(np.mean(rm.hit_rate(hits))),
        "users": float(users.size),
    }
