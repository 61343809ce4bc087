"""Item feature reader: dense tables, triple lists, .npy/.npz arrays, genre features, and
one-sentence errors with the file and line for malformed files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recseek.data import Interactions
from recseek.data._vocab import Vocabulary
from recseek.data.readers import genre_features, read_item_features
from recseek.data.readers._features import guess_feature_format, with_item_features
from recseek.errors import DataError, ParameterError
from recseek.testing.fixtures import shared_data_dir

ITEMS = Vocabulary(np.array([10, 20, 30, 40]), "item")
STR_ITEMS = Vocabulary(np.array(["B001", "B002", "B003"]), "item")


def write(tmp_path, name: str, text: str):
    p = tmp_path / name
    p.write_text(text)
    return p


# ---------------------------------------------------------------- dense tables
def test_dense_with_header_keeps_every_value(tmp_path):
    p = write(tmp_path, "f.csv", "item,red,size\n30,0,2.5\n10,1,0.5\n")
    m, names = read_item_features(p, ITEMS)
    assert isinstance(m, sp.csr_array) and m.dtype == np.float32 and m.shape == (4, 2)
    assert names.tolist() == ["red", "size"]
    np.testing.assert_array_equal(m.toarray(), [[1, 0.5], [0, 0], [0, 2.5], [0, 0]])
    # a dense row stores its zeros; an item without a line has an empty row
    assert np.diff(m.indptr).tolist() == [2, 0, 2, 0]


def test_dense_without_header_tab_separated(tmp_path):
    p = write(tmp_path, "f.tsv", "20\t1\t2\t3\n40\t4\t5\t6\n")
    m, names = read_item_features(p, ITEMS)
    assert names.tolist() == ["f0", "f1", "f2"]
    np.testing.assert_array_equal(m.toarray()[[1, 3]], [[1, 2, 3], [4, 5, 6]])
    assert guess_feature_format(p) == "dense"


def test_dense_string_ids(tmp_path):
    p = write(tmp_path, "f.csv", "B003,1.5\nB001,2\n")
    m, _ = read_item_features(p, STR_ITEMS)
    np.testing.assert_array_equal(m.toarray()[:, 0], [2, 0, 1.5])


# ---------------------------------------------------------------- triples
def test_triples_named_and_integer_features(tmp_path):
    p = write(tmp_path, "t.txt", "10 blue 1\n10 big 2\n40 blue 0.5\n")
    m, names = read_item_features(p, ITEMS)
    assert guess_feature_format(p) == "triples"
    assert names.tolist() == ["big", "blue"]
    np.testing.assert_array_equal(m.toarray(), [[2, 1], [0, 0], [0, 0], [0, 0.5]])
    q = write(tmp_path, "q.csv", "item,feature,degree\n20,7,0.25\n20,3,1\n")
    m, names = read_item_features(q, ITEMS, format="triples")
    assert names.tolist() == ["3", "7"]
    np.testing.assert_array_equal(m.toarray()[1], [1, 0.25])


def test_pairs_without_values(tmp_path):
    p = write(tmp_path, "p.csv", "10,action\n10,comedy\n30,action\n")
    m, names = read_item_features(p, ITEMS)
    assert names.tolist() == ["action", "comedy"]
    np.testing.assert_array_equal(m.toarray(), [[1, 1], [0, 0], [1, 0], [0, 0]])


# ---------------------------------------------------------------- arrays
def test_npy_with_id_file_and_npz(tmp_path):
    x = np.arange(6, dtype=np.float64).reshape(3, 2)
    np.save(tmp_path / "v.npy", x)
    (tmp_path / "v.ids.txt").write_text("30\n10\n40\n")
    m, names = read_item_features(tmp_path / "v.npy", ITEMS)
    np.testing.assert_array_equal(m.toarray(), [[2, 3], [0, 0], [0, 1], [4, 5]])
    np.savez(tmp_path / "w.npz", features=x, ids=np.array([30, 10, 40]), names=np.array(["a", "b"]))
    m2, names2 = read_item_features(tmp_path / "w.npz", ITEMS)
    np.testing.assert_array_equal(m2.toarray(), m.toarray())
    assert names2.tolist() == ["a", "b"]
    sp.save_npz(tmp_path / "s.npz", sp.csr_matrix(x))
    m3, _ = read_item_features(tmp_path / "s.npz", ITEMS, ids=tmp_path / "v.ids.txt")
    np.testing.assert_array_equal(m3.toarray(), m.toarray())


def test_npy_without_ids_is_refused(tmp_path):
    np.save(tmp_path / "v.npy", np.ones((2, 2)))
    with pytest.raises(DataError, match="no item id file"):
        read_item_features(tmp_path / "v.npy", ITEMS)


def test_array_errors(tmp_path):
    np.save(tmp_path / "v.npy", np.array([[1.0, np.nan]]))
    (tmp_path / "v.ids.txt").write_text("10\n")
    with pytest.raises(DataError, match=r"row 1, column 2 is not a finite number"):
        read_item_features(tmp_path / "v.npy", ITEMS)
    np.save(tmp_path / "u.npy", np.ones((2, 1)))
    (tmp_path / "u.ids.txt").write_text("10\n99\n")
    with pytest.raises(DataError, match=r"u\.ids\.txt, line 2: unknown item id '99'"):
        read_item_features(tmp_path / "u.npy", ITEMS)
    np.save(tmp_path / "n.npy", np.ones((3, 1)))
    (tmp_path / "n.ids.txt").write_text("10\n20\n")
    with pytest.raises(DataError, match="3 feature rows but 2 item ids"):
        read_item_features(tmp_path / "n.npy", ITEMS)


# ---------------------------------------------------------------- malformed text files
def one_sentence(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg.count(". ") == 0, msg
    return msg


def test_missing_column_names_file_and_line(tmp_path):
    p = write(tmp_path, "f.csv", "item,a,b\n10,1,2\n20,3\n")
    with pytest.raises(DataError) as exc:
        read_item_features(p, ITEMS)
    msg = one_sentence(exc)
    assert str(p) in msg and "line 3" in msg and "expected 3 fields" in msg
    q = write(tmp_path, "t.txt", "10 x 1\n10\n")
    with pytest.raises(DataError, match=r"t\.txt, line 2: expected 3 fields"):
        read_item_features(q, ITEMS, format="triples")


def test_unknown_item_names_file_and_line(tmp_path):
    p = write(tmp_path, "f.csv", "10,1\n20,2\n77,3\n")
    with pytest.raises(DataError) as exc:
        read_item_features(p, ITEMS)
    msg = one_sentence(exc)
    assert str(p) in msg and "line 3" in msg and "'77'" in msg
    m, _ = read_item_features(p, ITEMS, unknown="skip")
    np.testing.assert_array_equal(m.toarray()[:, 0], [1, 2, 0, 0])
    t = write(tmp_path, "t.txt", "item feature value\n10 a 1\nB9 a 2\n")
    with pytest.raises(DataError, match=r"t\.txt, line 3: unknown item id 'B9'"):
        read_item_features(t, ITEMS)


def test_non_numeric_value_names_file_line_and_column(tmp_path):
    p = write(tmp_path, "f.csv", "item,red,size\n10,1,2\n20,big,3\n")
    with pytest.raises(DataError) as exc:
        read_item_features(p, ITEMS)
    msg = one_sentence(exc)
    assert str(p) in msg and "line 3" in msg and "'big'" in msg and "red" in msg
    t = write(tmp_path, "t.csv", "10,a,1\n10,b,nan\n")
    with pytest.raises(DataError, match=r"t\.csv, line 2: feature value 'nan' \(column 3\) is not a number"):
        read_item_features(t, ITEMS, format="triples")


def test_repeated_item_or_pair_is_refused(tmp_path):
    p = write(tmp_path, "f.csv", "10,1,2\n20,3,4\n10,5,6\n")
    with pytest.raises(DataError, match=r"line 3: item '10' already has features on line 1"):
        read_item_features(p, ITEMS, format="dense")
    t = write(tmp_path, "t.csv", "10,a,1\n20,a,1\n10,a,2\n")
    with pytest.raises(DataError, match=r"line 3: feature 'a' of item '10' is already given on line 1"):
        read_item_features(t, ITEMS)


def test_bad_arguments(tmp_path):
    p = write(tmp_path, "f.csv", "10,1\n")
    with pytest.raises(ParameterError, match="unknown must be"):
        read_item_features(p, ITEMS, unknown="ignore")
    with pytest.raises(ParameterError, match="unknown item feature format"):
        read_item_features(p, ITEMS, format="xml")
    with pytest.raises(DataError, match="no such file"):
        read_item_features(tmp_path / "nope.csv", ITEMS)


def test_with_item_features_attaches_to_interactions(tmp_path):
    data = Interactions.from_arrays(np.array([1, 1, 2]), np.array([10, 20, 30]))
    p = write(tmp_path, "f.csv", "item,a\n20,1\n")
    out = with_item_features(data, p)
    assert out.item_features.shape == (3, 1) and out.meta["item_feature_names"].tolist() == ["a"]
    np.testing.assert_array_equal(out.item_features.toarray()[:, 0], [0, 1, 0])


# ---------------------------------------------------------------- genre features
def test_genre_features_genres_and_shared_title_words():
    table = pd.DataFrame({"title": ["Star Wars", "Star Trek", "The Piano", "Heat 2"],
                          "genres": ["Sci-Fi|Action", "Sci-Fi", "Drama", None]})
    m, names = genre_features(table)
    assert names.tolist() == ["genre:Action", "genre:Drama", "genre:Sci-Fi", "title:star"]
    np.testing.assert_array_equal(m.toarray(), [[1, 0, 1, 1], [0, 0, 1, 1], [0, 1, 0, 0], [0, 0, 0, 0]])
    with pytest.raises(DataError, match="no column 'kind'"):
        genre_features(table, genres="kind")


def test_genre_features_on_movielens():
    root = shared_data_dir()
    assert root is not None, "the shared data folder is needed (RECSEEK_TEST_DATA)"
    from recseek.data import readers

    data = readers.read(root / "ml-100k")
    m, names = genre_features(data.item_data)
    assert m.shape[0] == data.n_items
    n_genres = sum(n.startswith("genre:") for n in names)
    assert 18 <= n_genres <= 20
    # every item has a genre; shared title words are plenty
    assert (np.diff(m[:, :n_genres].indptr) > 0).mean() > 0.99
    assert len(names) - n_genres > 300


# ---------------------------------------------------------------- item relations
def test_item_relations(tmp_path):
    from recseek.data.readers import read_item_relations

    p = write(tmp_path, "r.csv", "10,20\n20,40\n10,30\n")
    m = read_item_relations(p, ITEMS)
    assert m.shape == (4, 4) and m.dtype == np.float32
    assert sorted(zip(*m.nonzero(), strict=True)) == [(0, 1), (0, 2), (1, 3)]
    q = write(tmp_path, "q.tsv", "item\trelated\tweight\n10\t40\t0.5\n")
    assert read_item_relations(q, ITEMS)[0, 3] == 0.5
    with pytest.raises(DataError, match=r"r2\.csv, line 2: unknown item id '55'"):
        read_item_relations(write(tmp_path, "r2.csv", "10,20\n20,55\n"), ITEMS)
    with pytest.raises(DataError, match=r"r3\.csv, line 3: the pair \('10', '20'\) is already given on line 1"):
        read_item_relations(write(tmp_path, "r3.csv", "10,20,1\n20,10,1\n10,20,2\n"), ITEMS)
    with pytest.raises(DataError, match=r"r4\.csv, line 2: relation value 'x' \(column 3\) is not a number"):
        read_item_relations(write(tmp_path, "r4.csv", "10,20,1\n20,10,x\n"), ITEMS)
    with pytest.raises(DataError, match=r"r5\.csv, line 2: expected 3 fields"):
        read_item_relations(write(tmp_path, "r5.csv", "10,20,1\n20\n"), ITEMS)
