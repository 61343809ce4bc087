"""Personalised item search over MovieLens-100K titles and genres."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recseek.data import Interactions, Vocabulary
from recseek.errors import DataError, ParameterError
from recseek.models import create
from recseek.models.base import Recommender
from recseek.search.lexical import BM25
from recseek.search.personalized import ItemSearch, item_documents
from recseek.testing.fixtures import shared_data_dir


@pytest.fixture(scope="module")
def movies() -> pd.DataFrame:
    root = shared_data_dir()
    if root is None:
        pytest.skip("MovieLens-100K test data not found")
    df = pd.read_csv(root / "ml-100k" / "ml-100k.item", sep="\t")
    df.columns = ["item", "title", "year", "genres"]
    return df


def genre_items(movies: pd.DataFrame, genre: str) -> np.ndarray:
    return movies.item[movies.genres.fillna("").str.split().apply(lambda g: genre in g)].to_numpy()


@pytest.fixture(scope="module")
def data(movies) -> Interactions:
    """Two synthetic users: one rates comedies, one rates horror films; background users rate at random."""
    rng = np.random.default_rng(0)
    users, items, ratings = [], [], []
    for name, genre in (("comedy_fan", "Comedy"), ("horror_fan", "Horror")):
        chosen = rng.choice(genre_items(movies, genre), 40, replace=False)
        users += [name] * 40
        items += chosen.tolist()
        ratings += [5.0] * 40
    for u in range(30):
        chosen = rng.choice(movies.item.to_numpy(), 60, replace=False)
        users += [f"bg{u}"] * 60
        items += chosen.tolist()
        ratings += rng.integers(1, 6, 60).astype(float).tolist()
    all_items = movies.item.to_numpy()
    inter = Interactions.from_arrays(np.array(users), np.array(items), np.array(ratings),
                                     item_vocab=Vocabulary(all_items, "item"))
    item_data = movies.set_index("item").loc[all_items].reset_index()[["title", "year", "genres"]]
    item_data["genres"] = item_data.genres.fillna("").str.replace(" ", "|")
    return Interactions(inter.matrix, inter.users, inter.items, item_data=item_data)


class GenreAffinity(Recommender):
    """Scores an item by how many of the user's rated items share each of its genres."""

    name = "GenreAffinity"

    def __init__(self) -> None:
        pass

    def _fit(self, train: Interactions) -> None:
        genres = train.item_data.genres.str.get_dummies(sep="|").to_numpy(dtype=np.float32)
        self.item_genres_ = genres
        self.user_genres_ = (train.matrix @ genres).astype(np.float32)

    def _score(self, users, items):
        g = self.item_genres_ if items is None else self.item_genres_[items]
        return (self.user_genres_[users] @ g.T).astype(np.float32)


def share(ids, genre_set) -> float:
    return float(np.mean([i in genre_set for i in ids if i != ""]))


def test_documents_from_item_data(data):
    docs = item_documents(data)
    assert len(docs) == data.n_items
    toy = next(d for d in docs if d["id"] == "1")
    assert toy["title"] == "Toy Story" and "Animation" in toy["text"] and toy["year"] == 1995


def test_personalisation_moves_the_users_genre_up(data, movies):
    model = GenreAffinity().fit(data)
    search = ItemSearch(BM25(), model, data, weight=0.7, depth=200)
    search.index()
    comedies = {str(i) for i in genre_items(movies, "Comedy")}
    horror = {str(i) for i in genre_items(movies, "Horror")}
    query = "night"
    plain = search.search(query, k=10)
    assert plain.ids.shape == (1, 10)
    np.testing.assert_array_equal(plain.ids, search.retriever.search(query, k=10).ids)
    c = search.search(query, user="comedy_fan", k=10)
    h = search.search(query, user="horror_fan", k=10)
    assert share(c.ids[0], comedies) > share(plain.ids[0], comedies)
    assert share(h.ids[0], horror) > share(plain.ids[0], horror)
    assert share(c.ids[0], comedies) > share(h.ids[0], comedies)
    assert c.ids[0, 0] in comedies and h.ids[0, 0] in horror
    # every re-ranked result still matches the query text
    assert set(c.ids[0]) <= set(search.retriever.search(query, k=200).ids[0])
    # batch with one user per query equals the single calls
    both = search.search([query, query, query], user=["comedy_fan", "horror_fan", None], k=10)
    np.testing.assert_array_equal(both.ids, np.vstack([c.ids, h.ids, plain.ids]))
    # weight 0 is plain search
    search0 = ItemSearch(search.retriever, model, data, weight=0.0, depth=200)
    np.testing.assert_array_equal(search0.search(query, user="comedy_fan", k=10).ids, plain.ids)


def test_item_average_promotes_well_rated_matches(data):
    model = create("ItemAverage").fit(data)
    search = ItemSearch(BM25(), model, data, weight=1.0, depth=50)
    search.index()
    hits = search.search("star", k=5)
    ranked = search.search("star", user="bg0", k=50)
    cand = [i for i in ranked.ids[0] if i != ""]
    means = model.score([data.users.index("bg0")], data.items.indices(cand))[0]
    assert np.all(np.diff(means) <= 1e-6)  # weight 1: recommender order among the text matches
    assert set(cand) == set(search.retriever.search("star", k=50).row(0)[i][0] for i in range(len(cand)))
    assert hits.ids[0, 0] != "" and len(hits.row(0)) == 5


def test_filter_and_explicit_documents(data):
    model = create("MostPopular").fit(data)
    search = ItemSearch(BM25(), model, data.items, weight=0.5)
    with pytest.raises(DataError, match="needs docs"):
        search.index()
    search.index(item_documents(data))
    hits = search.search("love", user="comedy_fan", k=20, filter={"year": {"gte": 1990}})
    years = {d["id"]: d.get("year") for d in item_documents(data)}
    assert all(years[i] >= 1990 for i in hits.ids[0] if i != "")
    with pytest.raises(DataError, match="not an item id"):
        search.index([{"id": "99999", "title": "nothing"}])


def test_bad_input(data):
    model = create("MostPopular").fit(data)
    search = ItemSearch(BM25(), model, data)
    search.index()
    with pytest.raises(DataError, match="unknown user id 'nobody'"):
        search.search("love", user="nobody")
    with pytest.raises(ParameterError, match="weight"):
        ItemSearch(BM25(), model, data, weight=1.5)
    with pytest.raises(ParameterError, match="one id or one per query"):
        search.search(["a", "b"], user=["comedy_fan"])
    with pytest.raises(ParameterError, match="fitted"):
        ItemSearch(BM25(), create("MostPopular"), data)
