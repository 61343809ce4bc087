"""Text models (ItemTextKNN, TextToCF, HybridText): the maths of each against a direct
numpy re-derivation, cold items recovered from planted text, fold-in equal to WRMF's,
text-only users, items added at run time, and the errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

import recseek.models.content.text as text_module
from recseek.errors import DataError, ParameterError
from recseek.models import registry
from recseek.models.base import Recommender
from recseek.models.content.text import (
    _apply_map_params,
    _ridge,
    fit_base_model,
    mlp_loss_grad,
    platt,
    shared_base_fits,
)
from recseek.testing.conformance import single_thread
from recseek.testing.fixtures import planted_blocks, synthetic

SMALL = {"factors": 8, "epochs": 5}


@pytest.fixture(scope="module")
def blocks():
    data = planted_blocks(side=True)
    train, test = data.for_task("ranking")
    return data, train, test


def _auc(scores: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
    p, n = scores[pos][:, None], scores[neg][None, :]
    return float(np.mean((p > n) + 0.5 * (p == n)))


# ---------------------------------------------------------------- the map maths
def test_ridge_matches_augmented_least_squares() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 7)).astype(np.float32)
    y = (x @ rng.normal(size=(7, 3)) + 2.0 + rng.normal(0, 0.1, (50, 3))).astype(np.float32)
    reg = 3.0
    w, b = _ridge(x, y, reg)
    # min ||[x 1][W; b] - y||^2 + reg ||W||^2 as one least-squares system (b unpenalised)
    a = np.vstack([np.hstack([x, np.ones((50, 1))]), np.hstack([np.sqrt(reg) * np.eye(7), np.zeros((7, 1))])])
    t = np.vstack([y, np.zeros((7, 3))])
    sol = np.linalg.lstsq(a.astype(np.float64), t.astype(np.float64), rcond=None)[0]
    np.testing.assert_allclose(w, sol[:7], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b, sol[7], rtol=1e-4, atol=1e-5)


def test_mlp_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 3))
    params = [rng.normal(size=(5, 4)), rng.normal(size=4) * 0.1, rng.normal(size=(4, 3)), rng.normal(size=3)]
    _, grads = mlp_loss_grad(params, x, y, 0.7)
    eps = 1e-6
    for p, g in zip(params, grads, strict=True):
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for j in range(flat.size):
            old = flat[j]
            flat[j] = old + eps
            up, _ = mlp_loss_grad(params, x, y, 0.7)
            flat[j] = old - eps
            down, _ = mlp_loss_grad(params, x, y, 0.7)
            flat[j] = old
            assert gflat[j] == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-6)


def test_mlp_map_fits_a_nonlinear_target() -> None:
    """On a target the ridge map cannot express (|x|), the trained MLP does far better."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    y = np.abs(x[:, :2]).astype(np.float32)
    model = registry.create("TextToCF", mapping="mlp", hidden=32, epochs=400, learning_rate=0.02, reg=0.0, seed=0)
    params = model._fit_mlp(x, y)
    mlp_err = np.mean((_apply_map_params(x, params) - y) ** 2)
    w, b = _ridge(x, y, 0.0)
    ridge_err = np.mean((x @ w + b - y) ** 2)
    assert mlp_err < 0.3 * ridge_err, (mlp_err, ridge_err)


# ---------------------------------------------------------------- ItemTextKNN
@pytest.mark.parametrize("variant", ["centroid", "max"])
def test_itemtextknn_scores_by_definition(variant: str) -> None:
    data = synthetic(seed=3, side=True)
    m = registry.create("ItemTextKNN", variant=variant, encoder="hashing").fit(data)
    e = m.text_embeddings_.astype(np.float64)
    users = np.arange(8)
    got = m.score(users)
    for row, u in enumerate(users):
        mine = e[data.items_of(u)]
        if variant == "centroid":
            c = mine.sum(axis=0)
            want = e @ (c / np.linalg.norm(c))
        else:
            want = (mine @ e.T).max(axis=0)
        np.testing.assert_allclose(got[row], want, rtol=1e-5, atol=1e-6)
    # fold-in of a training user's own items gives that user's scores
    np.testing.assert_allclose(m._score_new(sp.csr_array(m.profile_[users])), got, rtol=1e-6)


def test_max_similarity_in_blocks_of_items(monkeypatch) -> None:
    """A catalogue too large for one similarity table is scored block by block of the
    profile items; the running maximum equals the one-table result."""
    data = synthetic(seed=3, side=True)
    m = registry.create("ItemTextKNN", variant="max", encoder="hashing").fit(data)
    users = np.arange(data.n_users)
    whole = m.score(users)
    monkeypatch.setattr(text_module, "_BLOCK_BYTES", 4 * data.n_items * 3)  # three items per block
    np.testing.assert_array_equal(m.score(users), whole)
    cols = np.arange(0, data.n_items, 2)
    np.testing.assert_array_equal(m.score(users, cols), whole[:, cols])


def test_text_query_finds_the_group(blocks) -> None:
    data, train, _ = blocks
    for name, params in (("ItemTextKNN", {"encoder": "hashing"}),
                         ("TextToCF", {"encoder": "hashing", "base_params": SMALL}),
                         ("HybridText", {"encoder": "hashing", "base_params": SMALL})):
        with single_thread():
            m = registry.create(name, **params).fit(train)
        top = m.recommend_text(["genre0", "genre2"], k=6).ids
        assert (data.item_block[top[0]] == 0).mean() >= 5 / 6, name
        assert (data.item_block[top[1]] == 2).mean() >= 5 / 6, name


# ---------------------------------------------------------------- TextToCF
def _cold_blocks(blocks, share: int = 4):
    """Planted blocks where every ``share``-th item of each block has no training record."""
    data, train, test = blocks
    cold = np.zeros(train.n_items, dtype=bool)
    for b in range(4):
        members = np.flatnonzero(data.item_block == b)
        cold[members[::share]] = True
    return train.subset(~cold[train.matrix.indices]), cold


@pytest.mark.parametrize("mapping", ["ridge", "mlp"])
def test_cold_items_get_factors_from_text(blocks, mapping: str) -> None:
    """Cold items of a user's block outrank cold items of other blocks through the map;
    WRMF alone, without the text, cannot tell them apart."""
    data, _, _ = blocks
    train, cold = _cold_blocks(blocks)
    with single_thread():
        m = registry.create("TextToCF", encoder="hashing", mapping=mapping, base_params=SMALL, epochs=150).fit(train)
        plain = registry.create("WRMF", **SMALL).fit(train)
    assert not m.cf_known_[cold].any() and m.cf_known_[~cold].all()
    np.testing.assert_allclose(m.item_factors_[cold], m.map_text(m.text_embeddings_[cold]), rtol=1e-6)
    np.testing.assert_array_equal(m.item_factors_[~cold], plain.item_factors_[~cold])
    cold_idx = np.flatnonzero(cold)
    aucs, plain_aucs = [], []
    s, p = m.score(np.arange(train.n_users)), plain.score(np.arange(train.n_users))
    for u in range(train.n_users):
        own = cold_idx[data.item_block[cold_idx] == data.user_block[u]]
        other = cold_idx[data.item_block[cold_idx] != data.user_block[u]]
        aucs.append(_auc(s[u], own, other))
        plain_aucs.append(_auc(p[u], own, other))
    assert np.mean(aucs) > 0.95, np.mean(aucs)
    assert abs(np.mean(plain_aucs) - 0.5) < 0.15, np.mean(plain_aucs)


def test_foldin_equals_wrmf_foldin(blocks) -> None:
    """With every item warm, TextToCF keeps WRMF's factors, and its fold-in solves the
    same WRMF objective (base alpha and reg) as WRMF's own fold-in."""
    _, train, _ = blocks
    params = {**SMALL, "cg_steps": 0, "reg": 5.0, "alpha": 2.0}
    with single_thread():
        m = registry.create("TextToCF", encoder="hashing", base_params=params).fit(train)
        w = registry.create("WRMF", **params).fit(train)
    assert m.foldin_alpha_ == 2.0 and m.foldin_reg_ == 5.0
    rows = sp.csr_array(train.matrix[np.arange(10)])
    np.testing.assert_allclose(m._score_new(rows), w._score_new(rows), rtol=1e-3, atol=1e-4)
    # the text fold-in is the same solve with the mapped query as the only item
    q = m.embed_texts(["genre1"])
    v = m.map_text(q)
    v_all = m.item_factors_.astype(np.float64)
    a = v_all.T @ v_all + 2.0 * np.outer(v[0], v[0]) + 5.0 * np.eye(v.shape[1])
    u = np.linalg.solve(a, 3.0 * v[0].astype(np.float64))
    np.testing.assert_allclose(m.score_text(["genre1"])[0], v_all @ u, rtol=1e-3, atol=1e-4)


def test_add_items_then_recommend_and_save(blocks, tmp_path) -> None:
    data, train, _ = blocks
    with single_thread():
        m = registry.create("TextToCF", encoder="hashing", base_params=SMALL).fit(train)
    texts = [data.train.item_data["text"][i] + " genre3" for i in np.flatnonzero(data.item_block == 3)[:2]]
    new = m.add_items(["new-a", "new-b"], texts)
    np.testing.assert_array_equal(new, [train.n_items, train.n_items + 1])
    np.testing.assert_allclose(m.item_factors_[new], m.map_text(m.embed_texts(texts, query=False)), rtol=1e-6)
    users3 = np.flatnonzero(data.user_block == 3)
    others = np.flatnonzero(data.user_block != 3)
    s = m.score(np.arange(train.n_users), new)
    assert s[users3].mean() > s[others].mean()
    assert m.recommend(users3[:3], k=2, candidates=new).ids.min() >= train.n_items
    path = m.save(tmp_path / "m")
    loaded = Recommender.load(path)
    np.testing.assert_allclose(loaded.score([0, 1]), m.score([0, 1]), rtol=1e-6)
    assert loaded.items_.indices(["new-b"])[0] == train.n_items + 1
    with pytest.raises(DataError, match="already known"):
        loaded.add_items(["new-a"], ["x"])


def test_min_count_keeps_only_popular_factors() -> None:
    train = synthetic(seed=3, side=True).binarize()
    counts = np.bincount(train.matrix.indices, minlength=train.n_items)
    cut = int(np.median(counts)) + 1
    with single_thread():
        m = registry.create("TextToCF", encoder="hashing", base_params=SMALL, min_count=cut).fit(train)
    np.testing.assert_array_equal(m.cf_known_, counts >= cut)


# ---------------------------------------------------------------- HybridText
def test_hybrid_blend_by_definition(blocks) -> None:
    _, train, _ = blocks
    with single_thread():
        m = registry.create("HybridText", encoder="hashing", base_params=SMALL, blend_count=7.0).fit(train)
    users = np.arange(5)
    cf = m.user_factors_[users].astype(np.float64) @ m.item_factors_.T.astype(np.float64)
    e = m.text_embeddings_.astype(np.float64)
    txt = np.stack([e @ (c / np.linalg.norm(c)) for c in (e[train.items_of(u)].sum(axis=0) for u in users)])

    def z(a):
        return (a - a.mean(axis=1, keepdims=True)) / a.std(axis=1, keepdims=True)

    n = np.bincount(train.matrix.indices, minlength=train.n_items)
    w = n / (n + 7.0)
    np.testing.assert_allclose(m.score(users), w * z(cf) + (1 - w) * z(txt), rtol=1e-4, atol=1e-5)


def test_hybrid_ranks_cold_items_by_text(blocks) -> None:
    data, _, _ = blocks
    train, cold = _cold_blocks(blocks)
    with single_thread():
        m = registry.create("HybridText", encoder="hashing", base_params=SMALL).fit(train)
    cold_idx = np.flatnonzero(cold)
    r = m.recommend(np.arange(train.n_users), k=3, candidates=cold_idx).ids
    assert (data.item_block[r] == data.user_block[:, None]).mean() > 0.9


# ---------------------------------------------------------------- errors
def test_errors_name_the_problem(blocks) -> None:
    _, train, _ = blocks
    with pytest.raises(DataError, match="TextToCF needs"):
        registry.create("TextToCF", encoder="hashing").fit(synthetic())
    with pytest.raises(DataError, match="'plot', which item_data lacks"):
        registry.create("ItemTextKNN", encoder="hashing", text_columns=["plot"]).fit(train)
    with pytest.raises(ParameterError, match="base MostPopular has no user and item factors"):
        registry.create("TextToCF", encoder="hashing", base="MostPopular").fit(train)
    with pytest.raises(ParameterError, match="encoder must be one of"):
        registry.create("HybridText", encoder="bert").fit(train)
    with pytest.raises(ParameterError, match="base_params must be None or a table"):
        registry.create("TextToCF", base_params=[1, 2]).fit(train)
    m = registry.create("ItemTextKNN", encoder="hashing").fit(train)
    with pytest.raises(DataError, match="text 0 is empty"):
        m.recommend_text([""])
    empty = replace(train, item_data=train.item_data.assign(title="", genres="", text=""))
    with pytest.raises(DataError, match="no item has any text"):
        registry.create("ItemTextKNN", encoder="hashing").fit(empty)


@pytest.mark.slow
def test_real_model_on_movielens_text_query() -> None:
    """The offline MiniLM model on ML-100K titles, years and genres: a text-only user asking
    for comedies from the nineties gets mostly 1990s comedies."""
    pytest.importorskip("sentence_transformers")
    from recseek.testing.fixtures import ml100k_sample, with_ml100k_items

    data = with_ml100k_items(ml100k_sample(300)).binarize(4)
    m = registry.create("ItemTextKNN").fit(data)
    top = m.recommend_text(["light comedies from the nineties"], k=10).ids[0]
    rows = data.item_data.iloc[top]
    comedy = rows["genres"].astype(str).str.contains("Comedy").mean()
    nineties = rows["year"].astype(float).between(1990, 1999).mean()
    assert comedy >= 0.7 and nineties >= 0.7, rows[["title", "year", "genres"]]


def test_bpr_item_bias_becomes_a_factor(blocks) -> None:
    """BPR scores u . v + b_i: the bias is taken as one more factor, so TextToCF's scores
    equal BPR's on warm items, and the map still places cold items in their block."""
    data, _, _ = blocks
    train, cold = _cold_blocks(blocks)
    params = {"factors": 8, "epochs": 20, "item_bias": True}
    with single_thread():
        m = registry.create("TextToCF", encoder="hashing", base="BPR", base_params=params).fit(train)
        bpr = registry.create("BPR", **params).fit(train)
    assert m.item_factors_.shape[1] == 9
    np.testing.assert_array_equal(m.user_factors_[:, -1], 1.0)
    warm = np.flatnonzero(~cold)
    np.testing.assert_allclose(m.score(np.arange(10), warm), bpr.score(np.arange(10), warm), rtol=1e-4, atol=1e-4)
    cold_idx = np.flatnonzero(cold)
    r = m.recommend(np.arange(train.n_users), k=3, candidates=cold_idx).ids
    assert (data.item_block[r] == data.user_block[:, None]).mean() > 0.8


# ---------------------------------------------------------------- calibration of mapped items
def test_platt_recovers_a_logistic_model() -> None:
    """Newton's Platt fit recovers the slope and intercept that generated the labels
    (Platt's smoothed targets move them by O(1/n) only)."""
    rng = np.random.default_rng(0)
    s = rng.normal(3.0, 0.5, size=200_000) * 1e-3  # scores on a tiny scale, as WRMF's are
    y = rng.random(s.size) < 1.0 / (1.0 + np.exp(-(4000.0 * s - 14.0)))
    a, b = platt(s, y)
    assert a == pytest.approx(4000.0, rel=0.03) and b == pytest.approx(-14.0, rel=0.03)
    # separable labels keep a finite, positive slope
    a, b = platt(np.arange(10.0), np.arange(10) >= 5)
    assert np.isfinite(a) and np.isfinite(b) and a > 0


@pytest.mark.parametrize("calibration", ["scores", "relevance"])
def test_calibration_keeps_the_cold_ranking_and_the_warm_scores(blocks, calibration: str) -> None:
    """Calibration changes mapped items' scores by one positive scale and one shift:
    the cold-only ranking and every warm item's score are those of calibration='none'."""
    train, cold = _cold_blocks(blocks)
    with single_thread():
        cal = registry.create("TextToCF", encoder="hashing", base_params=SMALL, calibration=calibration).fit(train)
        raw = registry.create("TextToCF", encoder="hashing", base_params=SMALL, calibration="none").fit(train)
    assert cal.cold_scale_ > 0 and (cal.cold_scale_, cal.cold_shift_) != (1.0, 0.0)
    assert raw.cold_scale_ == 1.0 and raw.cold_shift_ == 0.0
    users = np.arange(train.n_users)
    s_cal, s_raw = cal.score(users), raw.score(users)
    np.testing.assert_array_equal(s_cal[:, ~cold], s_raw[:, ~cold])
    np.testing.assert_allclose(s_cal[:, cold], cal.cold_scale_ * s_raw[:, cold] + cal.cold_shift_, rtol=1e-5,
                               atol=1e-6 * np.abs(s_cal[:, cold]).max())
    cold_idx = np.flatnonzero(cold)
    a = cal.recommend(users, k=5, candidates=cold_idx)
    b = raw.recommend(users, k=5, candidates=cold_idx)
    np.testing.assert_array_equal(a.ids, b.ids)
    # fold-in and text users go through the same calibration
    rows = sp.csr_array(train.matrix[np.arange(4)])
    np.testing.assert_allclose(cal._score_new(rows)[:, cold],
                               cal.cold_scale_ * raw._score_new(rows)[:, cold] + cal.cold_shift_, rtol=1e-4,
                               atol=1e-6 * np.abs(cal._score_new(rows)[:, cold]).max())


def test_score_calibration_is_the_least_squares_line(blocks) -> None:
    """The 'scores' calibration is the least-squares line from the pseudo-cold items'
    mapped scores (a map refitted without them) onto the model's own scores of those
    items, over each user's 50 best-mapped unseen ones: re-derived here item by item
    from the definition in the docstring."""
    data, train, _ = blocks
    with single_thread():
        m = registry.create("TextToCF", encoder="hashing", base_params=SMALL, reg=30.0).fit(train)
    pseudo = m._pseudo_cold(train)
    rest = m.cf_known_ & m.has_text_ & ~pseudo
    x_w, x_b = _ridge(m.text_embeddings_[rest], m.item_factors_[rest], 30.0)
    items = np.flatnonzero(pseudo)
    u = m.user_factors_.astype(np.float64)
    mapped = u @ (m.text_embeddings_[items] @ x_w + x_b).T
    own = u @ m.item_factors_[items].T.astype(np.float64)
    xs, ys = [], []
    seen = train.matrix.toarray()[:, items] > 0
    for r in range(train.n_users):  # per user, its 50 best-mapped unseen pseudo-cold items
        cand = np.flatnonzero(~seen[r])
        top = cand[np.argsort(-mapped[r, cand], kind="stable")[:50]]
        xs.append(mapped[r, top])
        ys.append(own[r, top])
    x, y = np.concatenate(xs), np.concatenate(ys)
    slope, intercept = np.polyfit(x, y, 1)
    assert m.calibration_details["slope"] == pytest.approx(slope, rel=1e-3)
    assert m.cold_scale_ == pytest.approx(slope, rel=1e-3)
    # the calibrated mapped scores are closer to the model's own than the raw ones
    assert np.mean((slope * x + intercept - y) ** 2) < np.mean((x - y) ** 2)
    assert m.cold_shift_ == pytest.approx(intercept, rel=1e-3, abs=1e-6 * np.abs(y).max())


def test_shared_base_fits_reuse_one_fit_without_changing_it(blocks) -> None:
    """Inside shared_base_fits, TextToCF, HybridText and fit_base_model share one WRMF fit
    on the same data and settings; TextToCF's mapped cold factors never reach the shared
    model, and every score equals that of fresh fits."""
    train, cold = _cold_blocks(blocks)
    params = {**SMALL, "seed": 0, "verbose": False}
    with single_thread():
        fresh_t = registry.create("TextToCF", encoder="hashing", base_params=SMALL).fit(train)
        fresh_h = registry.create("HybridText", encoder="hashing", base_params=SMALL).fit(train)
        fresh_w = registry.create("WRMF", **params).fit(train)
        with shared_base_fits() as fits:
            t = registry.create("TextToCF", encoder="hashing", base_params=SMALL).fit(train)
            h = registry.create("HybridText", encoder="hashing", base_params=SMALL).fit(train)
            w = fit_base_model("WRMF", params, train)
            # TextToCF's calibration adds no base fit; its data and settings are HybridText's
            assert len(fits) == 1 and w is next(iter(fits.values()))
            other = fit_base_model("WRMF", {**params, "factors": 4}, train)
            assert other is not w and len(fits) == 2
        assert fit_base_model("WRMF", params, train) is not w  # outside the block: a fresh fit
    users = np.arange(train.n_users)
    np.testing.assert_array_equal(w.item_factors_, fresh_w.item_factors_)
    np.testing.assert_array_equal(w.score(users), fresh_w.score(users))
    np.testing.assert_array_equal(t.score(users), fresh_t.score(users))
    np.testing.assert_array_equal(h.score(users), fresh_h.score(users))
    assert not np.array_equal(t.item_factors_[cold], w.item_factors_[cold])
