"""Readers of reviews (words, aspect:sentiment pairs, raw text), check-ins and place coordinates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recseek.data import readers
from recseek.data.readers import _text, read_checkins, read_locations, read_reviews
from recseek.data.split import split
from recseek.errors import DataError, ParameterError
from recseek.testing.fixtures import shared_data_dir

SHARED = shared_data_dir()
needs_shared = pytest.mark.skipif(SHARED is None, reason="shared test data not found")


@pytest.fixture(autouse=True, params=["pyarrow", "pandas"])
def parser(request, monkeypatch) -> str:
    if request.param == "pandas":
        monkeypatch.setattr(_text, "has_pyarrow", lambda: False)
    return request.param


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def one_sentence(msg: str) -> None:
    assert "\n" not in msg and "Traceback" not in msg


# ---------------------------------------------------------------- words
def test_words_counts_and_vocabulary(tmp_path):
    p = write(tmp_path / "r.txt", "1,10,5:7:5,5.0\n2,10,,3.0\n1,11,7,4.0\n")
    d = read_reviews(p)
    assert d.meta["review_kind"] == "words"
    w, vocab = d.meta["review_words"], d.meta["review_vocabulary"]
    assert w.shape == (3, 2) and list(vocab) == ["5", "7"]
    # records are stored by (user, item): (1,10), (1,11), (2,10)
    dense = w.toarray()
    np.testing.assert_array_equal(dense, [[2, 1], [0, 1], [0, 0]])
    assert w.dtype == np.float32


def test_words_follow_their_ratings_through_a_split(tmp_path):
    lines = [f"{u},{i},{u}:{i}:{u},{(u + i) % 5 + 1}" for u in range(6) for i in range(8)]
    d = read_reviews(write(tmp_path / "r.txt", "\n".join(lines) + "\n"))
    train, test = split(d, "ratio", ratio=0.75, by="user", order="random", seed=1)
    vocab = d.meta["review_vocabulary"]
    for part in (train, test):
        w = part.meta["review_words"]
        assert w.shape[0] == part.nnz
        u, i, _, _ = part.to_coo()
        for row in range(part.nnz):
            words = {vocab[c]: v for c, v in zip(w.indices[w.indptr[row]:w.indptr[row + 1]],
                                                  w.data[w.indptr[row]:w.indptr[row + 1]], strict=True)}
            raw_u, raw_i = str(part.users.ids[u[row]]), str(part.items.ids[i[row]])
            expect = {raw_u: 2.0, raw_i: 1.0} if raw_u != raw_i else {raw_u: 3.0}
            assert words == expect


def test_empty_word_names_the_line(tmp_path):
    p = write(tmp_path / "r.txt", "1,10,5:7,5.0\n\n2,10,3::4,3.0\n")
    with pytest.raises(DataError, match=r"r\.txt, line 3: .*empty word id") as e:
        read_reviews(p, kind="words")
    one_sentence(str(e.value))


def test_missing_review_column(tmp_path):
    p = write(tmp_path / "r.txt", "1,10,5.0\n2,10,3.0\n")
    with pytest.raises(DataError, match=r"r\.txt: has no review column") as e:
        read_reviews(p)
    one_sentence(str(e.value))


def test_wrong_field_count_names_the_line(tmp_path):
    p = write(tmp_path / "r.txt", "1,10,5:7,5.0\n2,10,3.0\n")
    with pytest.raises(DataError, match=r"line 2: expected 4 fields"):
        read_reviews(p)


def test_non_numeric_score_names_the_line(tmp_path):
    p = write(tmp_path / "r.txt", "1,10,5:7,5.0\n2,10,3,good\n")
    with pytest.raises(DataError, match=r"line 2: score 'good'"):
        read_reviews(p)


def test_unknown_kind():
    with pytest.raises(ParameterError, match="kind must be one of"):
        read_reviews("x", kind="sentences")


# ---------------------------------------------------------------- aspects
def test_aspects_sum_sentiment_and_count_mentions(tmp_path):
    p = write(tmp_path / "a.txt", "1,10,battery:1 screen:-1 battery:-1,4\n1,11,screen:1,5\n2,10,,3\n")
    d = read_reviews(p)
    assert d.meta["review_kind"] == "aspects"
    names = list(d.meta["aspect_names"])
    s, m = d.meta["review_aspects"], d.meta["review_aspect_mentions"]
    b, sc = names.index("battery"), names.index("screen")
    assert s.shape == m.shape == (3, 2)
    # battery: +1 -1 = 0, still stored (mentioned twice)
    assert s[0, b] == 0 and m[0, b] == 2 and s.nnz == m.nnz == 3
    assert s[0, sc] == -1 and s[1, sc] == 1 and m[1, sc] == 1
    np.testing.assert_array_equal(s.indices, m.indices)


def test_bad_aspect_pair_names_line_and_token(tmp_path):
    p = write(tmp_path / "a.txt", "1,10,battery:1,4\n1,11,screen:great,5\n")
    with pytest.raises(DataError, match=r"a\.txt, line 2: 'screen:great' is not an aspect:sentiment pair") as e:
        read_reviews(p, kind="aspects")
    one_sentence(str(e.value))
    p = write(tmp_path / "b.txt", "1,10,battery:1,4\n1,11,screen,5\n")
    with pytest.raises(DataError, match=r"line 2: 'screen' is not an aspect:sentiment pair"):
        read_reviews(p, kind="aspects")


# ---------------------------------------------------------------- text
def test_text_is_tokenised_with_the_search_analyzer(tmp_path):
    from recseek.search.analysis import Analyzer

    p = write(tmp_path / "t.csv", '1,10,"Great strings, great tone",5\n2,10,Broke after a week,1\n')
    d = read_reviews(p, kind="text")
    vocab = list(d.meta["review_vocabulary"])
    w = d.meta["review_words"].toarray()
    expect = Analyzer().analyze("Great strings, great tone")
    assert w[0, vocab.index(expect[0])] == 2  # "great" twice
    assert w[0].sum() == len(expect)
    assert "a" not in vocab  # English stop word
    d2 = read_reviews(p, kind="text", analyzer=Analyzer(stopwords=None, stemmer=None))
    assert "a" in list(d2.meta["review_vocabulary"])


# ---------------------------------------------------------------- check-ins and locations
def test_checkins_share_vocabularies(tmp_path):
    tr = write(tmp_path / "train.txt", "U1 L1 2\r\nU1 L2 1\r\nU2 L1 1")
    te = write(tmp_path / "test.txt", "U2 L3 1\nU3 L1 4\n")
    train, test = read_checkins(tr, te)
    assert train.users is test.users and train.items is test.items
    assert list(train.users.ids) == ["U1", "U2", "U3"] and list(train.items.ids) == ["L1", "L2", "L3"]
    assert train.nnz == 3 and test.nnz == 2
    assert test.matrix[2, 0] == 4


def test_checkin_non_numeric_count(tmp_path):
    p = write(tmp_path / "c.txt", "U1 L1 1\nU1 L2 many\n")
    with pytest.raises(DataError, match=r"c\.txt, line 2: check-in count 'many'"):
        read_checkins(p)


def test_locations_align_with_items(tmp_path):
    train = read_checkins(write(tmp_path / "c.txt", "U1 L2 1\nU1 L1 1\nU2 L3 1\n"))
    loc = read_locations(write(tmp_path / "l.txt", "L1 1.30 103.9\nL2 1.34 103.7\nL9 0 0\n"), train.items)
    assert list(loc.columns) == ["latitude", "longitude"]
    np.testing.assert_allclose(loc["latitude"].to_numpy()[:2], [1.34, 1.30])
    assert np.isnan(loc["latitude"].iloc[2])  # L3 has no coordinates


def test_location_non_numeric_coordinate(tmp_path):
    train = read_checkins(write(tmp_path / "c.txt", "U1 L1 1\n"))
    p = write(tmp_path / "l.txt", "L1 1.30 103.9\nL2 north 103.7\n")
    with pytest.raises(DataError, match=r"l\.txt, line 2: latitude 'north' \(column 2\) is not a number") as e:
        read_locations(p, train.items)
    one_sentence(str(e.value))


def test_location_missing_column(tmp_path):
    train = read_checkins(write(tmp_path / "c.txt", "U1 L1 1\n"))
    p = write(tmp_path / "l.txt", "L1 1.30 103.9\nL2 1.2\n")
    with pytest.raises(DataError, match=r"l\.txt, line 2: expected 3 fields separated by spaces, found 2"):
        read_locations(p, train.items)


def test_location_out_of_range_and_unknown_id(tmp_path):
    train = read_checkins(write(tmp_path / "c.txt", "U1 L1 1\n"))
    with pytest.raises(DataError, match=r"line 2: latitude 91.0 lies outside \[-90, 90\]"):
        read_locations(write(tmp_path / "l.txt", "L1 1.30 103.9\nL2 91 10\n"), train.items)
    with pytest.raises(DataError, match=r"l2\.txt, line 2: place id 'L7' does not occur in the check-ins"):
        read_locations(write(tmp_path / "l2.txt", "L1 1.30 103.9\nL7 1 10\n"), train.items, unknown="error")


def test_exported():
    assert {"read_reviews", "read_checkins", "read_locations"} <= set(readers.__all__)


# ---------------------------------------------------------------- real files
@needs_shared
def test_real_review_files():
    js = SHARED / "jstarcraft"
    mi = read_reviews(js / "musical_instruments.txt")
    assert mi.meta["review_kind"] == "words" and mi.nnz == 10261
    assert mi.meta["review_words"].shape == (10261, len(mi.meta["review_vocabulary"]))
    dc = read_reviews(js / "dc_dense.txt")
    assert dc.meta["review_kind"] == "aspects" and dc.meta["review_aspects"].shape == (7752, 271)
    assert set(np.unique(dc.meta["review_aspects"].data)) <= {-4, -3, -2, -1, 0, 1, 2, 3, 4, 5}


@needs_shared
def test_real_foursquare():
    fs = SHARED / "jstarcraft" / "poi" / "FourSquare"
    train, test = read_checkins(fs / "checkin" / "train.txt", fs / "checkin" / "test.txt")
    assert (train.nnz, test.nnz) == (69159, 29099) and train.shape == (2321, 5596)
    loc = read_locations(fs / "FoursquareLocation.txt", train.items, unknown="error")
    assert loc.notna().all().all()
    assert loc["latitude"].between(1.2, 1.5).all() and loc["longitude"].between(103.6, 104.0).all()
