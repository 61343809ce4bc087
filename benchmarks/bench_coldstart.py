"""Cold-start benchmark: items nobody has interacted with, ranked from their text.

Protocol (``recseek.evaluation.coldstart``): MovieLens-100K positives (rating >= 4),
items partitioned into 5 popularity-stratified folds; each fold in turn is the cold
20% (all their interactions removed from training), and 20% of every user's warm
records are held out too. Repeated for each seed. Per user: NDCG@10 over the cold items
only (``cold``), NDCG@10 of the full mixed ranking against the warm held-out items
(``warm``) and the share of cold items in that top 10 (``exposure``). Item text: title,
year and genres from ``ml-100k.item``.

Side by side on the same splits:

- ``TextToCF`` over WRMF: ridge map with its default calibration (``"scores"``: one
  scale and shift of cold items' scores, the least-squares line onto WRMF's own scores
  of pseudo-cold items carved from each training set, never from the test records),
  the same with ``calibration="relevance"`` (Platt fits on a validation split carved
  from the training set, ``TextToCF-rel``) and without calibration
  (``TextToCF-uncal``), and the MLP map; ``HybridText``, ``ItemTextKNN`` with the
  offline all-MiniLM-L6-v2 embeddings, and ``ItemTextKNN`` with recseek's TF-IDF
  embedding (``TF-IDF KNN``);
- ``LightFM`` (Kula, "Metadata Embeddings for User and Item Cold-start
  Recommendations", 2015) with item features only (genres, release decade, title
  words; WARP loss), run by the ``lightfm`` package in its own virtual environment
  (``--lightfm-python``, default ``/work/venvs/lightfm/bin/python``); left out with a
  message when that interpreter or package is missing, or with ``--no-lightfm``;
- ``GenrePop``: the user's genre shares (plus a tenth of the catalogue's) averaged over
  an item's genres -- genre popularity, personalised;
- ``WRMF`` alone, and uniformly random scores (``Random``) as the floor.

Within a split, every model built on WRMF with the same settings shares one WRMF fit
(:func:`recseek.models.content.text.shared_base_fits`; the fit is deterministic, so
sharing it changes no figure). The script prints the table of means, the wall time by
stage and the paired two-sided permutation p-values
(``recseek.evaluation.stats.permutation_test`` over the (fold, seed, user) units) of
TextToCF against LightFM, GenrePop and TF-IDF KNN on cold NDCG@10, and of TextToCF
against WRMF on warm and mixed NDCG@10. TextToCF shares WRMF's warm scores, so a cold
item shown in a warm user's top 10 can only lower that user's warm NDCG (cold items are
never warm-relevant); the script counts the units where the two differ.

    NUMBA_NUM_THREADS=1 python benchmarks/bench_coldstart.py [--data DIR] [--seeds 0,1] [--folds 5]

``--musical`` runs the second data set instead, the musical_instruments reviews, with
:func:`recseek.evaluation.coldstart.review_release_split`: each item is introduced by
one of its reviews (no timestamps there, so a random one per seed), which is its only
text; a cold item's introduction record is neither trained on nor a target (its
reviewer never has to find the item), its other records are the cold targets. Models:
TextToCF over WRMF on TF-IDF embeddings of that review (calibrated and not), TF-IDF
KNN, HybridText, popularity (the data has no categories), WRMF, random, and LightFM
with the review's words as item features. ``--musical-users`` runs the earlier
cold-user protocol there (given 1 and 3 records, item text = the item's training
reviews).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recseek.data import Interactions, readers
from recseek.evaluation.coldstart import (
    ColdStartReport,
    _split_on_cold,
    cold_item_folds,
    evaluate_split,
    review_release_split,
)
from recseek.models import registry
from recseek.models._topk import topk
from recseek.models.content.text import fit_base_model, shared_base_fits
from recseek.testing.fixtures import shared_data_dir

K = 10
WRMF = {"factors": 64, "epochs": 15, "reg": 20.0}
#: WRMF settings on the smaller musical_instruments data.
WRMF_SMALL = {"factors": 32, "epochs": 15, "reg": 5.0}
LIGHTFM_PYTHON = "/work/venvs/lightfm/bin/python"

# Run by the lightfm interpreter: reads train_<unit>.npz and features (features_<unit>.npz
# when present, else features.npz), writes scores_<unit>.npy.
LIGHTFM_SCRIPT = r'''
import os, sys, json, numpy as np, scipy.sparse as sp
from lightfm import LightFM
folder = sys.argv[1]
spec = json.load(open(folder + "/spec.json"))
shared = folder + "/features.npz"
for unit in range(spec["units"]):
    own = f"{folder}/features_{unit}.npz"
    feats = sp.load_npz(own if os.path.exists(own) else shared).tocsr()
    train = sp.load_npz(f"{folder}/train_{unit}.npz").tocoo()
    model = LightFM(no_components=spec["components"], loss="warp", learning_rate=spec["learning_rate"],
                    item_alpha=spec["item_alpha"], random_state=spec["seed"])
    model.fit(train, item_features=feats, epochs=spec["epochs"], num_threads=1)
    n_users, n_items = train.shape
    users = np.repeat(np.arange(n_users, dtype=np.int32), n_items)
    items = np.tile(np.arange(n_items, dtype=np.int32), n_users)
    s = model.predict(users, items, item_features=feats, num_threads=1).reshape(n_users, n_items)
    np.save(f"{folder}/scores_{unit}.npy", s.astype(np.float32))
'''


def _recommend(self, users, k, candidates=None, exclude_seen=True, exclude=None):
    """Top-k of precomputed scores ``self.s`` (the Recommender.recommend arguments used here)."""
    s = self.s[users].copy()
    allowed = None
    if candidates is not None:
        allowed = np.zeros(s.shape, dtype=bool)
        allowed[:, candidates] = True
    ex = sp.csr_array(self.seen[users]) if exclude_seen else None
    if exclude is not None:
        ex = sp.csr_array(exclude) if ex is None else sp.csr_array(ex + exclude)
    return topk(s, k, exclude=ex, allowed=allowed)


class Precomputed:
    """A 'model' whose scores were computed elsewhere (LightFM), keyed by its training matrix."""

    def __init__(self, scores: dict[bytes, np.ndarray]) -> None:
        self.scores = scores

    def fit(self, train: Interactions) -> Precomputed:
        self.seen = sp.csr_array(train.matrix)
        self.s = self.scores[_key(train)]
        return self

    recommend = _recommend


class Random:
    """Uniform random scores (seeded): the floor. (RandomGuess scores uniformly within the
    training rating range, which is a single value on binary data, so it ranks by index.)"""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def fit(self, train: Interactions) -> Random:
        self.seen = sp.csr_array(train.matrix)
        self.s = self.rng.random(train.shape, dtype=np.float32)
        return self

    recommend = _recommend


class GenrePop:
    """Score of item j for user u: mean over j's genres g of (share_u(g) + 0.1 share(g))."""

    def __init__(self, genres: sp.csr_array) -> None:
        self.genres = genres  # (n_items, n_genres) binary

    def fit(self, train: Interactions) -> GenrePop:
        m = sp.csr_array(train.matrix)
        m.data[:] = 1.0
        self.seen = m
        counts = np.asarray((m @ self.genres).todense(), dtype=np.float64)  # (n_users, n_genres)
        user = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        overall = counts.sum(axis=0) / max(counts.sum(), 1)
        per_item = np.asarray(self.genres.sum(axis=1)).ravel()
        self.s = ((user + 0.1 * overall) @ self.genres.T.toarray()) / np.maximum(per_item, 1)
        self.s = self.s.astype(np.float32)
        return self

    recommend = _recommend


class SharedFit:
    """A registry model fitted through :func:`fit_base_model`: inside ``shared_base_fits``
    the text models built on the same model and settings reuse this very fit."""

    def __init__(self, name: str, params: dict) -> None:
        self.name, self.params = name, params

    def fit(self, train: Interactions) -> SharedFit:
        self.model = fit_base_model(self.name, self.params, train)
        return self

    def recommend(self, *args, **kwargs):
        return self.model.recommend(*args, **kwargs)


class ReviewText:
    """Fits ``inner`` with item texts made of the item's training reviews (word ids as
    words ``w<id>``): the text comes from the training part of each split only."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def fit(self, train: Interactions) -> ReviewText:
        import pandas as pd

        comments = np.asarray(train.meta["comments"], dtype=object)
        texts = [[] for _ in range(train.n_items)]
        for item, c in zip(train.matrix.indices, comments, strict=True):
            texts[item].append(" ".join("w" + w for w in str(c).split(":") if w))
        self.inner.fit(replace(train, item_data=pd.DataFrame({"text": [" ".join(t) for t in texts]})))
        return self

    def recommend_new(self, items, values=None, k=10, **kw):
        return self.inner.recommend_new(items, values, k, **kw)


def _musical_data(root: Path) -> Interactions | None:
    path = root / "jstarcraft" / "musical_instruments.txt"
    if not path.exists():
        print(f"musical_instruments left out: {path} not found")
        return None
    return readers.read_reviews(str(path)).binarize()


def musical_users(root: Path, seeds: list[int]) -> None:
    """Cold users given N on the musical_instruments reviews (item text = training reviews)."""
    from recseek.evaluation.coldstart import evaluate_cold_users

    data = _musical_data(root)
    if data is None:
        return
    models = {
        "TextToCF": lambda: ReviewText(registry.create("TextToCF", encoder="tfidf", base_params=WRMF_SMALL)),
        "HybridText": lambda: ReviewText(registry.create("HybridText", encoder="tfidf", base_params=WRMF_SMALL)),
        "ItemTextKNN (TF-IDF)": lambda: ReviewText(registry.create("ItemTextKNN", encoder="tfidf")),
        "WRMF": ("WRMF", WRMF_SMALL),
        "ItemKNNRanking": ("ItemKNNRanking", {}),
    }
    t0 = time.perf_counter()
    report = evaluate_cold_users(models, data, ratio=0.2, given=(1, 3), seeds=seeds, k=K)
    print(f"\nmusical_instruments {data}: cold users (20%) given N, {time.perf_counter() - t0:.1f} s")
    cols = [c for c in report.metrics() if "ndcg" in c]
    print("| model | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
    for row in report.table():
        print(f"| {row['model']} | " + " | ".join(f"{row[c]:.4f}" for c in cols) + " |")
    # every item is warm here, so TextToCF is WRMF with its fold-in; the text acts through HybridText
    for a, b in (("HybridText", "WRMF"), ("HybridText", "ItemKNNRanking"), ("TextToCF", "WRMF")):
        for c in cols:
            diff, p = report.compare(a, b, c)
            print(f"  {a} - {b} on {c}: {diff:+.4f}, p = {p:.2g}")


def _review_features(train: Interactions) -> sp.csr_array:
    """LightFM item features: the words of each item's introduction review, row-normalised."""
    texts = train.item_data["text"].tolist()
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, t in enumerate(texts):
        for w in set(str(t).split()):
            rows.append(i)
            cols.append(vocab.setdefault(w, len(vocab)))
    feats = sp.csr_array((np.ones(len(rows), np.float32), (rows, cols)), shape=(train.n_items, max(1, len(vocab))))
    norms = np.asarray(feats.sum(axis=1)).ravel()
    return sp.csr_array(sp.diags(1.0 / np.maximum(norms, 1)) @ feats, dtype=np.float32)


def musical_items(root: Path, seeds: list[int], folds: int, lightfm_python: str | None) -> None:
    """Cold items introduced by one review on musical_instruments (see the module docstring)."""
    t_start, c_start = time.perf_counter(), time.process_time()
    data = _musical_data(root)
    if data is None:
        return
    splits = [review_release_split(data, 1.0 / folds, seed, f) for seed in seeds for f in range(folds)]
    t_split, c_split = time.perf_counter() - t_start, time.process_time() - c_start
    print(f"musical_instruments {data}; {len(splits)} review-release splits ({folds} folds x seeds {seeds}), "
          f"{int(splits[0].cold.sum())} cold items each, {splits[0].known.nnz} introduction records held aside")
    base = {**WRMF_SMALL, "seed": 0, "verbose": False}
    models: dict[str, object] = {
        "TextToCF": ("TextToCF", {"encoder": "tfidf", "base_params": WRMF_SMALL}),
        "TextToCF-uncal": ("TextToCF", {"encoder": "tfidf", "base_params": WRMF_SMALL, "calibration": "none"}),
        "TextToCF-rel": ("TextToCF", {"encoder": "tfidf", "base_params": WRMF_SMALL, "calibration": "relevance"}),
        "HybridText": ("HybridText", {"encoder": "tfidf", "base_params": WRMF_SMALL}),
        "TF-IDF KNN": ("ItemTextKNN", {"encoder": "tfidf"}),
        "MostPopular": ("MostPopular", {}),
        "WRMF": lambda: SharedFit("WRMF", base),
        "Random": Random,
    }
    lfm_s = 0.0
    if lightfm_python:
        t0 = time.perf_counter()
        lfm = lightfm_scores(splits, [_review_features(s.train) for s in splits], lightfm_python, seeds[0],
                             components=32, epochs=30)
        lfm_s = time.perf_counter() - t0
        if lfm is not None:
            models["LightFM"] = lambda: Precomputed(lfm)
    c0 = time.process_time()
    report, stages, cpu = run_splits(models, splits)
    c_models = time.process_time() - c0
    if "LightFM" in report.values:
        report.seconds["LightFM"] += lfm_s
    stages = {"read + split": t_split, **stages}
    cpu_stages = {"read + split": c_split, "models + metrics": c_models}
    print_results(report, stages, lfm_s, cpu=cpu, cpu_stages=cpu_stages, tests=[
        ("TextToCF", "LightFM", "cold"), ("TextToCF", "MostPopular", "cold"), ("TextToCF", "TF-IDF KNN", "cold"),
        ("TextToCF", "WRMF", "cold"), ("TextToCF", "WRMF", "warm"), ("TextToCF-uncal", "WRMF", "warm"),
        ("TextToCF-rel", "WRMF", "warm"), ("TextToCF", "WRMF", "mixed"), ("TextToCF-uncal", "WRMF", "mixed"),
        ("TextToCF-rel", "WRMF", "mixed"), ("HybridText", "WRMF", "warm")])


def _key(train: Interactions) -> bytes:
    m = train.matrix
    return np.asarray(m.indptr).tobytes()[:4096] + np.asarray(m.indices).tobytes()[-4096:] + bytes(str(m.nnz), "ascii")


def item_features(data: Interactions) -> tuple[sp.csr_array, sp.csr_array]:
    """(genre indicators, LightFM features = genres + release decade + title words), row-normalised."""
    frame = data.item_data
    genre_lists = [str(g).split("|") if g is not None and str(g) != "<NA>" else [] for g in frame["genres"]]
    genre_vocab = sorted({g for gs in genre_lists for g in gs if g})
    gi = {g: j for j, g in enumerate(genre_vocab)}
    rows, cols = [], []
    for i, gs in enumerate(genre_lists):
        for g in gs:
            if g in gi:
                rows.append(i)
                cols.append(gi[g])
    genres = sp.csr_array((np.ones(len(rows), np.float32), (rows, cols)), shape=(data.n_items, len(genre_vocab)))
    extra: dict[str, int] = {}
    r2, c2 = [], []
    for i, (title, year) in enumerate(zip(frame["title"], frame["year"], strict=True)):
        words = {f"w:{w}" for w in str(title).lower().replace(",", " ").split() if len(w) > 2}
        if year is not None and str(year) != "<NA>":
            words.add(f"decade:{int(year) // 10}")
        for w in words:
            r2.append(i)
            c2.append(extra.setdefault(w, len(extra)))
    other = sp.csr_array((np.ones(len(r2), np.float32), (r2, c2)), shape=(data.n_items, len(extra)))
    feats = sp.hstack([genres, other]).tocsr()
    norms = np.asarray(feats.sum(axis=1)).ravel()
    feats = sp.diags(1.0 / np.maximum(norms, 1)) @ feats
    return genres, sp.csr_array(feats, dtype=np.float32)


def lightfm_scores(splits, feats, python: str, seed: int, components: int = 64, epochs: int = 30
                   ) -> dict[bytes, np.ndarray] | None:
    """LightFM scores per split, from its own interpreter; ``feats`` is one feature matrix
    for every split or a list with one per split."""
    if not Path(python).exists():
        print(f"LightFM left out: {python} does not exist (create it: python -m venv ...; pip install lightfm)")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(feats, list):
            for u, f in enumerate(feats):
                sp.save_npz(f"{tmp}/features_{u}.npz", sp.csr_matrix(f))
        else:
            sp.save_npz(f"{tmp}/features.npz", sp.csr_matrix(feats))
        for u, s in enumerate(splits):
            sp.save_npz(f"{tmp}/train_{u}.npz", sp.csr_matrix(s.train.matrix))
        spec = {"units": len(splits), "components": components, "learning_rate": 0.05, "item_alpha": 1e-6,
                "epochs": epochs, "seed": seed}
        Path(f"{tmp}/spec.json").write_text(json.dumps(spec))
        Path(f"{tmp}/run.py").write_text(LIGHTFM_SCRIPT)
        done = subprocess.run([python, f"{tmp}/run.py", tmp], capture_output=True, text=True)
        if done.returncode != 0:
            print("LightFM left out: it failed:\n" + done.stderr[-2000:])
            return None
        return {_key(s.train): np.load(f"{tmp}/scores_{u}.npy") for u, s in enumerate(splits)}


class CPUTimed:
    """Runs a model and adds the CPU seconds of its fit and recommendations to ``cpu[label]``
    (this process only: LightFM's own process is timed apart)."""

    def __init__(self, make, label: str, cpu: dict[str, float]) -> None:
        self.make, self.label, self.cpu = make, label, cpu

    def _timed(self, fn, *args, **kwargs):
        c0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            self.cpu[self.label] = self.cpu.get(self.label, 0.0) + time.process_time() - c0

    def fit(self, train: Interactions) -> CPUTimed:
        self.model = self._timed(lambda: self.make().fit(train))
        return self

    def recommend(self, *args, **kwargs):
        return self._timed(self.model.recommend, *args, **kwargs)


def _factory(spec):
    if isinstance(spec, tuple):
        name, params = spec
        return lambda: registry.create(name, **params)
    return spec


def run_splits(models: dict[str, object], splits) -> tuple[ColdStartReport, dict[str, float], dict[str, float]]:
    """Every model on every split, each split's WRMF fits shared; returns the report, the
    wall time by stage (fit + recommend of all models, metrics) and the CPU seconds by model."""
    report = ColdStartReport(K)
    cpu: dict[str, float] = {}
    timed = {label: (lambda label=label, make=_factory(spec): CPUTimed(make, label, cpu))
             for label, spec in models.items()}
    t0 = time.perf_counter()
    for s in splits:
        with shared_base_fits():
            evaluate_split(timed, s, K, report)
    total = time.perf_counter() - t0
    fit = sum(report.seconds.values())
    return report, {"models (fit + recommend)": fit, "metrics": total - fit}, cpu


def print_results(report: ColdStartReport, stages: dict[str, float], lightfm_s: float,
                  tests: list[tuple[str, str, str]], cpu: dict[str, float], cpu_stages: dict[str, float]) -> None:
    cols = [f"cold_ndcg@{K}", f"cold_recall@{K}", f"warm_ndcg@{K}", f"mixed_ndcg@{K}", f"cold_exposure@{K}"]
    print("\n| model | " + " | ".join(cols) + " | seconds |")
    print("|---|" + "---|" * (len(cols) + 1))
    for row in sorted(report.table(), key=lambda r: -r[cols[0]]):
        print(f"| {row['model']} | " + " | ".join(f"{row[c]:.4f}" for c in cols) + f" | {row['seconds']:.1f} |")
    print("\npaired two-sided permutation tests over (fold, seed, user) units:")
    t0, c0 = time.perf_counter(), time.process_time()
    for a, b, which in tests:
        metric = f"{which}_ndcg@{K}"
        if a in report.values and b in report.values:
            diff, p = report.compare(a, b, metric)
            d = report.values[a][metric] - report.values[b][metric]
            print(f"  {a} - {b} on {metric}: {diff:+.5f} (n = {d.size}; {int((d < 0).sum())} units lower, "
                  f"{int((d > 0).sum())} higher), p = {p:.2g}")
    stages = {**stages, "paired tests": time.perf_counter() - t0}
    cpu_stages = {**cpu_stages, "paired tests": time.process_time() - c0}
    print("\nwall time by stage (recseek protocol, LightFM apart): "
          + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()) + f"; total {sum(stages.values()):.1f} s"
          + (f"; LightFM (own process) {lightfm_s:.1f} s" if lightfm_s else ""))
    print("CPU time by stage (this process): "
          + ", ".join(f"{k} {v:.1f} s" for k, v in cpu_stages.items()) + f"; total {sum(cpu_stages.values()):.1f} s")
    per_model = ", ".join(f"{m} {s:.1f}/{cpu.get(m, 0.0):.1f}" for m, s in report.seconds.items() if m != "LightFM")
    print(f"fit + recommend by model, wall/CPU s (a split's shared WRMF fit counts for the first model built on it):"
          f" {per_model}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="shared data folder (with ml-100k/)")
    ap.add_argument("--seeds", default="0,1", help="comma-separated split seeds")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--lightfm-python", default=LIGHTFM_PYTHON)
    ap.add_argument("--no-lightfm", action="store_true", help="leave LightFM out")
    ap.add_argument("--quick", action="store_true", help="leave out the slower MLP map and max-similarity KNN")
    ap.add_argument("--musical", action="store_true", help="only the review-release cold items on musical_instruments")
    ap.add_argument("--musical-users", action="store_true", help="only the cold-user run on musical_instruments")
    args = ap.parse_args(argv)
    root = args.data or shared_data_dir()
    seeds = [int(s) for s in args.seeds.split(",")]
    lightfm_python = None if args.no_lightfm else args.lightfm_python
    if root is not None and args.musical_users:
        musical_users(root, seeds)
        return 0
    if root is not None and args.musical:
        musical_items(root, seeds, args.folds, lightfm_python)
        return 0
    if root is None or not (root / "ml-100k").exists():
        print("ml-100k not found: pass --data <shared data folder>")
        return 2
    t_start, c_start = time.perf_counter(), time.process_time()
    data = readers.read(str(root / "ml-100k")).binarize(4)
    genres, feats = item_features(data)
    splits = []
    for seed in seeds:
        assignment = cold_item_folds(data, args.folds, seed, 10)
        splits += [_split_on_cold(data, assignment == f, 0.2, seed) for f in range(args.folds)]
    t_split, c_split = time.perf_counter() - t_start, time.process_time() - c_start
    print(f"{data}; {len(splits)} cold-item splits ({args.folds} folds x seeds {seeds}), "
          f"{int(splits[0].cold.sum())} cold items each")

    # the embeddings are read from the cache (computed on a first run); the cache key
    # needs no model, so a cached run never loads the sentence model
    t0, c0 = time.perf_counter(), time.process_time()
    probe = registry.create("ItemTextKNN").fit(splits[0].train)
    t_embed, c_embed = time.perf_counter() - t0, time.process_time() - c0
    loaded = probe._encoder_object().model_loaded
    print(f"item text embeddings ready in {t_embed:.1f} s "
          + ("(computed: the model was loaded)" if loaded else "(read from the cache, no model loaded)"))

    base = {**WRMF, "seed": 0, "verbose": False}
    models: dict[str, object] = {
        "TextToCF": ("TextToCF", {"base_params": WRMF}),
        "TextToCF-uncal": ("TextToCF", {"base_params": WRMF, "calibration": "none"}),
        "TextToCF-rel": ("TextToCF", {"base_params": WRMF, "calibration": "relevance"}),
        "TextToCF-MLP": ("TextToCF", {"base_params": WRMF, "mapping": "mlp"}),
        "HybridText": ("HybridText", {"base_params": WRMF}),
        "ItemTextKNN": ("ItemTextKNN", {}),
        "ItemTextKNN-max": ("ItemTextKNN", {"variant": "max"}),
        "TF-IDF KNN": ("ItemTextKNN", {"encoder": "tfidf"}),
        "GenrePop": lambda: GenrePop(genres),
        "WRMF": lambda: SharedFit("WRMF", base),
        "Random": Random,
    }
    if args.quick:
        models.pop("TextToCF-MLP")
        models.pop("ItemTextKNN-max")
    lfm_s = 0.0
    if lightfm_python:
        t0 = time.perf_counter()
        lfm = lightfm_scores(splits, feats, lightfm_python, seeds[0])
        lfm_s = time.perf_counter() - t0
        if lfm is not None:
            models["LightFM"] = lambda: Precomputed(lfm)
    c0 = time.process_time()
    report, stages, cpu = run_splits(models, splits)
    c_models = time.process_time() - c0
    if "LightFM" in report.values:
        report.seconds["LightFM"] += lfm_s
    stages = {"read + split": t_split, "embeddings": t_embed, **stages}
    cpu_stages = {"read + split": c_split, "embeddings": c_embed, "models + metrics": c_models}
    tests = [("TextToCF", b, "cold") for b in ("LightFM", "GenrePop", "TF-IDF KNN", "ItemTextKNN", "WRMF")]
    tests += [("TextToCF-MLP", "TextToCF", "cold"), ("TextToCF", "WRMF", "warm"), ("TextToCF-uncal", "WRMF", "warm"),
              ("TextToCF-rel", "WRMF", "warm"), ("HybridText", "WRMF", "warm"), ("TextToCF", "WRMF", "mixed"),
              ("TextToCF-uncal", "WRMF", "mixed"), ("TextToCF-rel", "WRMF", "mixed")]
    print_results(report, stages, lfm_s, tests, cpu, cpu_stages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
