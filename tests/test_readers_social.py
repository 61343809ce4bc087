"""read_trust: trust.txt and edge-list CSV files over a user vocabulary, with one-sentence errors."""

from __future__ import annotations

import numpy as np
import pytest

from recseek.data import Vocabulary
from recseek.data.readers import read_jstarcraft, read_trust
from recseek.errors import DataError
from recseek.testing.fixtures import shared_data_dir

USERS = Vocabulary(np.array([10, 20, 30, 40]), "user")


def _write(tmp_path, text, name="trust.txt"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_trust_txt_three_columns(tmp_path) -> None:
    t = read_trust(_write(tmp_path, "10 20 1\n20 30 0.5\n10 40 1\n"), USERS)
    assert t.shape == (4, 4) and t.dtype == np.float32
    dense = t.toarray()
    assert dense[0, 1] == 1.0 and dense[1, 2] == 0.5 and dense[0, 3] == 1.0 and dense.sum() == 2.5


def test_edge_list_csv_with_header_two_columns_undirected(tmp_path) -> None:
    p = _write(tmp_path, "source,target\n10,20\n30,20\n", "edges.csv")
    t = read_trust(p, USERS, directed=False).toarray()
    expected = np.zeros((4, 4), np.float32)
    expected[[0, 1, 2, 1], [1, 0, 1, 2]] = 1.0
    np.testing.assert_array_equal(t, expected)


def test_csv_header_with_value_column_and_repeated_links_keep_last(tmp_path) -> None:
    p = _write(tmp_path, "trustor;trustee;weight\n10;20;0.2\n10;20;0.7\n", "t.csv")
    assert read_trust(p, USERS)[0, 1] == pytest.approx(0.7)


def test_unknown_user_names_file_and_line(tmp_path) -> None:
    p = _write(tmp_path, "10 20 1\n\n20 99 1\n")
    with pytest.raises(DataError, match=r"trust\.txt, line 3: trustee id '99' is not a user") as e:
        read_trust(p, USERS)
    assert str(e.value).count(".") <= 3 and "\n" not in str(e.value)
    t = read_trust(p, USERS, unknown="ignore")
    assert t.nnz == 1


def test_non_numeric_value_names_file_and_line(tmp_path) -> None:
    p = _write(tmp_path, "10 20 1\n20 30 high\n")
    with pytest.raises(DataError, match=r"trust\.txt, line 2: trust value 'high' \(column 3\) is not a number"):
        read_trust(p, USERS)


def test_missing_column_names_file_and_line(tmp_path) -> None:
    p = _write(tmp_path, "10\n20\n")
    with pytest.raises(DataError, match=r"trust\.txt, line 1: found 1 field\(s\) separated by .*expected 'trustor"):
        read_trust(p, USERS)
    p = _write(tmp_path, "10 20 1\n20\n", "short.txt")
    with pytest.raises(DataError, match=r"short\.txt, line 2: expected 3 fields"):
        read_trust(p, USERS)


def test_empty_file_and_bad_option(tmp_path) -> None:
    with pytest.raises(DataError, match="empty"):
        read_trust(_write(tmp_path, ""), USERS)
    with pytest.raises(Exception, match="unknown must be"):
        read_trust(_write(tmp_path, "10 20 1\n", "ok.txt"), USERS, unknown="skip")


def test_filmtrust_trust_file_matches_the_jstarcraft_reader_and_survives_the_split() -> None:
    from recseek.evaluation.jstarcraft import load_dataset_split

    folder = shared_data_dir() / "jstarcraft" / "filmtrust"
    data = read_jstarcraft(folder)
    t = read_trust(folder / "trust.txt", data.users)
    assert t.nnz == 1853 and abs(t - data.trust).sum() == 0
    _, train, test = load_dataset_split(folder)
    assert train.users is test.users
    assert abs(train.trust - t).sum() == 0 and abs(test.trust - t).sum() == 0


def test_gzip_file_and_header_without_links(tmp_path) -> None:
    import gzip

    p = tmp_path / "trust.csv.gz"
    with gzip.open(p, "wt") as f:
        f.write("trustor,trustee,value\n10,30,1\n40,10,0.5\n")
    t = read_trust(p, USERS).toarray()
    assert t[0, 2] == 1.0 and t[3, 0] == 0.5 and t.sum() == 1.5
    with pytest.raises(DataError, match="header but no links"):
        read_trust(_write(tmp_path, "source,target\n", "h.csv"), USERS)
    p2 = tmp_path / "bad.txt.gz"
    with gzip.open(p2, "wt") as f:
        f.write("10 20 1\n\n30 77 1\n")
    with pytest.raises(DataError, match=r"line 3: trustee id '77'"):
        read_trust(p2, USERS)
