"""Readers: RecBole, MovieLens, JStarCraft, tables; duplicates; error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recseek.data import readers
from recseek.data.readers import _text, read, read_jstarcraft, read_movielens, read_recbole, read_table
from recseek.errors import DataError, ParameterError
from recseek.testing.fixtures import shared_data_dir

SHARED = shared_data_dir()
needs_shared = pytest.mark.skipif(SHARED is None, reason="shared test data not found")


@pytest.fixture(autouse=True, params=["pyarrow", "pandas"])
def parser(request, monkeypatch) -> str:
    """Every reader test runs with both text parsers (pyarrow is optional)."""
    if request.param == "pandas":
        monkeypatch.setattr(_text, "has_pyarrow", lambda: False)
    return request.param


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


def entries(data) -> dict:
    """{(raw user, raw item): value} of every stored record."""
    u, i, v, _ = data.to_coo()
    return {(data.users.id(a), data.items.id(b)): float(x) for a, b, x in zip(u, i, v, strict=True)}


# ---------------------------------------------------------------------- RecBole
@pytest.fixture
def recbole_dir(tmp_path: Path) -> Path:
    d = tmp_path / "toy"
    write(d / "toy.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
          "7\t100\t4\t10\n3\t200\t2.5\t11\n7\t200\t1\t12\n")
    write(d / "toy.item", "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
          "200\tThe Second\t1999\tDrama Comedy\n100\tFirst, The\t1995\tAction\n300\tNever Rated\tunknown\tHorror\n")
    write(d / "toy.user", "user_id:token\tage:token\tgender:token\n3\t30\tF\n7\t40\tM\n9\t50\tF\n")
    return d


def test_recbole_folder_prefix_and_file_agree(recbole_dir: Path) -> None:
    a = read_recbole(recbole_dir)
    b = read_recbole(recbole_dir / "toy")
    c = read_recbole(recbole_dir / "toy.inter")
    for other in (b, c):
        assert entries(a) == entries(other)
    assert entries(a) == {(7, 100): 4.0, (3, 200): 2.5, (7, 200): 1.0}
    assert a.users.ids.dtype == np.int64 and a.items.ids.dtype == np.int64


def test_recbole_side_data_aligned_and_unrated_appended(recbole_dir: Path) -> None:
    data = read_recbole(recbole_dir)
    # rated items first (first-seen order), then the item only listed in .item
    assert data.items.ids.tolist() == [100, 200, 300]
    assert data.users.ids.tolist() == [7, 3, 9]
    assert data.shape == (3, 3)
    assert data.matrix[:, [2]].nnz == 0 and data.matrix[[2]].nnz == 0
    items = data.item_data
    assert items["title"].tolist() == ["First, The", "The Second", "Never Rated"]
    assert items["genres"].tolist() == ["Action", "Drama|Comedy", "Horror"]
    assert items["year"].tolist()[:2] == [1995, 1999] and pd.isna(items["year"][2])
    assert items["movie_title"].tolist()[0] == "First, The"
    assert data.user_data["gender"].tolist() == ["M", "F", "F"]
    assert data.timestamps.tolist() == [10.0, 12.0, 11.0]  # row 7: items 100, 200; row 3: item 200


def test_recbole_columns_override_and_implicit(tmp_path: Path) -> None:
    f = write(tmp_path / "x.inter", "uid:token\tiid:token\tweight:float\n1\ta\t2\n2\tb\t3\n")
    data = read_recbole(f, columns={"user": "uid", "item": "iid", "rating": "weight"})
    assert entries(data) == {(1, "a"): 2.0, (2, "b"): 3.0}
    assert data.timestamps is None
    implicit = read_recbole(f, columns={"user": "uid", "item": "iid"})
    assert set(entries(implicit).values()) == {1.0}
    with pytest.raises(DataError, match=r"missing user column 'user_id' \(columns found: uid, iid, weight\)"):
        read_recbole(f)
    with pytest.raises(DataError, match="missing timestamp column 'when'"):
        read_recbole(f, columns={"user": "uid", "item": "iid", "timestamp": "when"})
    with pytest.raises(ParameterError, match="unknown role 'score'"):
        read_recbole(f, columns={"score": "weight"})


def test_recbole_bad_header(tmp_path: Path) -> None:
    f = write(tmp_path / "x.inter", "user_id\titem_id:token\n1\t2\n")
    with pytest.raises(DataError, match=r"x\.inter, line 1, column 1: header field 'user_id'"):
        read_recbole(f)


@needs_shared
def test_recbole_ml100k() -> None:
    data = read_recbole(SHARED / "ml-100k")
    assert data.shape == (943, 1682) and data.nnz == 100_000
    assert data.items.id(0) == 242 and data.users.id(0) == 196  # first line of the file
    row = data.items.index(1)
    assert data.item_data["title"][row] == "Toy Story"
    assert data.item_data["genres"][row] == "Animation|Children's|Comedy"
    assert data.item_data["year"][row] == 1995
    assert data.user_data.shape[0] == 943 and str(data.user_data["age"].dtype) == "Int64"
    assert data.matrix.dtype == np.float32 and data.timestamps.shape == (100_000,)


# ---------------------------------------------------------------------- MovieLens
GENRES = "unknown|0\nAction|1\nAdventure|2\nAnimation|3\nChildren's|4\nComedy|5\nCrime|6\nDocumentary|7\n" \
         "Drama|8\nFantasy|9\nFilm-Noir|10\nHorror|11\nMusical|12\nMystery|13\nRomance|14\nSci-Fi|15\n" \
         "Thriller|16\nWar|17\nWestern|18\n"


def _uitem_line(item: int, title: str, flags: list[int]) -> str:
    bits = [0] * 19
    for f in flags:
        bits[f] = 1
    return f"{item}|{title}|01-Jan-1995||http://x|" + "|".join(map(str, bits)) + "\n"


def test_movielens_100k_layout(tmp_path: Path) -> None:
    d = tmp_path / "ml"
    write(d / "u.data", "1\t10\t5\t100\n2\t10\t3\t101\n1\t20\t4\t102\n")
    write(d / "u.item", _uitem_line(10, "Café (1995)", [3, 5]) + _uitem_line(20, "Heat (1995)", [1])
          + _uitem_line(30, "unknown", [0]), encoding="latin-1")
    write(d / "u.genre", GENRES)
    write(d / "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n")
    for target in (d, d / "u.data"):
        data = read_movielens(target)
        assert entries(data) == {(1, 10): 5.0, (2, 10): 3.0, (1, 20): 4.0}
        assert data.items.ids.tolist() == [10, 20, 30]
        assert data.item_data["title"].tolist() == ["Café", "Heat", "unknown"]
        assert data.item_data["genres"].tolist() == ["Animation|Comedy", "Action", "unknown"]
        assert data.item_data["year"].tolist()[:2] == [1995, 1995]
        assert data.user_data["occupation"].tolist() == ["technician", "other"]
        assert data.user_data["age"].tolist() == [24, 53]


def test_movielens_dat_and_csv_layouts(tmp_path: Path) -> None:
    d1 = tmp_path / "ml-1m"
    write(d1 / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n")
    write(d1 / "movies.dat", "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James (1996)::Animation|Musical\n",
          encoding="latin-1")
    write(d1 / "users.dat", "1::F::1::10::48067\n")
    a = read_movielens(d1)
    assert entries(a) == {(1, 1193): 5.0, (1, 661): 3.0}
    assert a.item_data["genres"].tolist() == ["Drama", "Animation|Musical"]
    assert a.item_data["year"].tolist() == [1975, 1996]
    assert a.user_data["gender"].tolist() == ["F"]
    d2 = tmp_path / "latest"
    write(d2 / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n")
    write(d2 / "movies.csv", 'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n'
          '3,"Grumpier Old Men, The (1995)",Comedy|Romance\n')
    b = read(d2)
    assert entries(b) == {(1, 1): 4.0, (1, 3): 4.5}
    assert b.item_data["title"].tolist() == ["Toy Story", "Grumpier Old Men, The"]


# ---------------------------------------------------------------------- JStarCraft
def test_jstarcraft_score_and_trust(tmp_path: Path) -> None:
    d = tmp_path / "ft"
    write(d / "score.txt", "1 5 3 2\n2 5 1 3.5\n1 6 2 4\n")
    write(d / "trust.txt", "2 1 1\n9 2 1\n")
    data = read_jstarcraft(d)
    assert entries(data) == {(1, 5): 2.0, (2, 5): 3.5, (1, 6): 4.0}
    assert data.users.ids.tolist() == [1, 2, 9]  # 9 only trusts: appended
    assert data.timestamps.tolist() == [3.0, 2.0, 1.0]
    t = data.trust.toarray()
    assert t.shape == (3, 3)
    assert t[1, 0] == 1 and t[2, 1] == 1 and t.sum() == 2
    assert data.meta["trust_source"].endswith("trust.txt")


def test_jstarcraft_review_comments_aligned(tmp_path: Path) -> None:
    f = write(tmp_path / "reviews.txt", "1,2,0:1:2,5.0\n0,2,,4.0\n1,1,3:4,3.0\n0,2,9,2.0\n")
    data = read_jstarcraft(f)
    assert data.timestamps is None
    comments = data.meta["comments"]
    assert comments.shape == (data.nnz,)
    u, i, v, _ = data.to_coo()
    got = {(data.users.id(a), data.items.id(b)): (float(x), str(c)) for a, b, x, c in zip(u, i, v, comments, strict=True)}
    # (0, 2) appears twice: "last" keeps the later line's score and comment
    assert got == {(1, 2): (5.0, "0:1:2"), (0, 2): (2.0, "9"), (1, 1): (3.0, "3:4")}
    first = read_jstarcraft(f, duplicates="first")
    idx = first.matrix[[first.users.index(0)]].indices.tolist().index(first.items.index(2))
    row = first.matrix.indptr[first.users.index(0)] + idx
    assert str(first.meta["comments"][row]) == "" and first.matrix.data[row] == 4.0


def test_jstarcraft_user_item_score_string_ids(tmp_path: Path) -> None:
    f = write(tmp_path / "scores.txt", "A3KX,0439504147,3.0\nA3KX,B00006B8G0,5.0\nB1,0439504147,1\n")
    data = read_jstarcraft(f)
    assert data.items.ids.dtype.kind == "U"
    assert data.items.ids.tolist() == ["0439504147", "B00006B8G0"]  # leading zero kept
    assert entries(data)[("B1", "0439504147")] == 1.0


@needs_shared
def test_jstarcraft_filmtrust() -> None:
    data = read_jstarcraft(SHARED / "jstarcraft" / "filmtrust" / "score.txt")
    # 35,497 lines, 5 of them repeat a (user, item) pair; 1,508 raters + 134 users only in trust.txt
    assert data.nnz == 35_492 and data.n_items == 2071
    assert len(np.unique(data.user_index())) == 1508 and data.n_users == 1642
    assert data.trust.nnz == 1853 and data.trust.shape == (1642, 1642)
    assert data.trust[data.users.index(2), data.users.index(966)] == 1
    assert set(np.unique(data.matrix.data)) == {0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0}


@needs_shared
def test_jstarcraft_real_review_files() -> None:
    root = SHARED / "jstarcraft"
    mi = read_jstarcraft(root / "musical_instruments.txt")
    assert mi.nnz == 10_261 and mi.meta["comments"].shape == (mi.nnz,)
    row = mi.matrix.indptr[mi.users.index(0)]  # line 1: 0,0,0:1:2:...:11,5.0
    assert str(mi.meta["comments"][row]).startswith("0:1:2:3:4:5:6:7:0:8")
    dc = read_jstarcraft(root / "dc_dense.txt")
    assert dc.nnz == 7752
    words = {w for c in dc.meta["comments"] for w in str(c).split(" ")}
    assert {"性价比:1", "拍照:1", "镜头:-1"} <= words
    prod = read(root / "product" / "scores.txt")
    assert prod.nnz == 65_582 and "0439504147" in prod.items


# ---------------------------------------------------------------------- tables
def _frame() -> pd.DataFrame:
    return pd.DataFrame({"user_id": ["u1", "u2", "u1", "u3"], "item_id": [5, 6, 7, 5],
                         "score": [1.0, 2.0, 3.0, 4.5], "time": [10, 20, 30, 40]})


def test_table_csv_tsv_parquet_agree(tmp_path: Path) -> None:
    df = _frame()
    df.to_csv(tmp_path / "a.csv", index=False)
    df.to_csv(tmp_path / "a.tsv", sep="\t", index=False)
    df.to_parquet(tmp_path / "a.parquet")
    df.to_csv(tmp_path / "a.txt", sep=";", index=False)
    expected = {("u1", 5): 1.0, ("u2", 6): 2.0, ("u1", 7): 3.0, ("u3", 5): 4.5}
    for name in ("a.csv", "a.tsv", "a.parquet", "a.txt"):
        data = read_table(tmp_path / name)
        assert entries(data) == expected, name
        assert sorted(data.timestamps.tolist()) == [10, 20, 30, 40]
    assert entries(read(tmp_path / "a.parquet", format="parquet")) == expected


def test_table_mapping_positions_and_implicit(tmp_path: Path) -> None:
    f = write(tmp_path / "b.csv", "x,1,a,0.5\ny,2,b,1.5\n")
    data = read_table(f, header=False, columns={"user": 2, "item": 1, "rating": 3, "timestamp": None})
    assert entries(data) == {("a", 1): 0.5, ("b", 2): 1.5}
    implicit = read_table(f, header=False, columns={"user": 0, "item": 1, "rating": None, "timestamp": None})
    assert set(entries(implicit).values()) == {1.0} and implicit.timestamps is None
    g = write(tmp_path / "c.csv", "who,what\n1,2\n")
    assert entries(read_table(g, columns={"user": "who", "item": "what"})) == {(1, 2): 1.0}


def test_table_bom_and_crlf(tmp_path: Path) -> None:
    f = tmp_path / "w.csv"
    f.write_bytes("\ufeffuser,item,rating\r\n1,2,3\r\n4,5,1.5\r\n".encode())
    assert entries(read_table(f)) == {(1, 2): 3.0, (4, 5): 1.5}
    g = tmp_path / "u.data"
    g.write_bytes(b"1\t2\t3\t4\r\n1\t3\tx\t5\r\n")
    with pytest.raises(DataError, match=r"line 2: rating 'x' \(column 3\)"):
        read_movielens(g)


def test_table_parquet_datetime_timestamps(tmp_path: Path) -> None:
    df = pd.DataFrame({"user": [1, 2], "item": [3, 4],
                       "timestamp": pd.to_datetime(["1970-01-01 00:00:10", "2001-09-09 01:46:40"])})
    df.to_parquet(tmp_path / "d.parquet")
    data = read_table(tmp_path / "d.parquet")
    assert sorted(data.timestamps.tolist()) == [10.0, 1e9]


# ---------------------------------------------------------------------- duplicates
@pytest.mark.parametrize(
    ("policy", "value", "time"),
    [("last", 2.0, 30.0), ("first", 4.0, 10.0), ("mean", 3.0, 30.0), ("sum", 9.0, 30.0), ("max", 4.0, 30.0)],
)
def test_duplicate_policies(tmp_path: Path, policy: str, value: float, time: float) -> None:
    # the latest record (t=30) is in the middle of the file: "last" means latest in time
    f = write(tmp_path / "dup.csv", "user,item,rating,timestamp\n1,1,4,10\n1,1,2,30\n1,1,3,20\n2,1,1,5\n")
    data = read_table(f, duplicates=policy)
    assert data.nnz == 2
    row = data.matrix.indptr[data.users.index(1)]
    assert data.matrix.data[row] == value and data.timestamps[row] == time


def test_bad_duplicates_policy(tmp_path: Path) -> None:
    f = write(tmp_path / "dup.csv", "user,item\n1,1\n")
    with pytest.raises(ParameterError, match="duplicates must be one of"):
        read_table(f, duplicates="newest")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.sampled_from(["a", "b", "007", "7"]),
                          st.integers(1, 5)), min_size=1, max_size=30))
def test_table_roundtrip_keeps_last(tmp_path_factory, records) -> None:
    path = tmp_path_factory.mktemp("rt") / "r.csv"
    path.write_text("user,item,rating\n" + "".join(f"{u},{i},{r}\n" for u, i, r in records))
    data = read_table(path)
    expected = {}
    for u, i, r in records:
        expected[(str(u), i)] = float(r)
    assert {(str(u), str(i)): v for (u, i), v in entries(data).items()} == expected
    # ids become integers only when every id of the column is a canonical integer
    assert data.items.ids.dtype.kind == ("i" if {i for _, i, _ in records} <= {"7"} else "U")
    assert data.nnz == len(expected)


# ---------------------------------------------------------------------- errors
def test_error_missing_path(tmp_path: Path) -> None:
    for reader in (read_recbole, read_movielens, read_jstarcraft, read_table, read):
        with pytest.raises(DataError, match="no such file or directory"):
            reader(tmp_path / "nope.csv")


def test_error_empty_file(tmp_path: Path) -> None:
    empty = write(tmp_path / "e.csv", "")
    for reader in (read_jstarcraft, read_table, read_movielens):
        with pytest.raises(DataError, match=r"e\.csv: file is empty"):
            reader(empty)
    header_only = write(tmp_path / "h.csv", "user,item,rating\n")
    with pytest.raises(DataError, match=r"h\.csv: has no records"):
        read_table(header_only)


def test_error_missing_column_lists_found(tmp_path: Path) -> None:
    f = write(tmp_path / "m.csv", "person,thing,rating\n1,2,3\n")
    with pytest.raises(DataError, match=r"m\.csv: missing user column .*columns found: person, thing, rating"):
        read_table(f)
    with pytest.raises(DataError, match=r"missing rating column 'stars' \(columns found: person, thing, rating\)"):
        read_table(f, columns={"user": "person", "item": "thing", "rating": "stars"})


def test_error_non_numeric_value_names_line(tmp_path: Path) -> None:
    f = write(tmp_path / "u.data", "1\t2\t3\t100\n\n1\t3\tfive\t101\n")
    with pytest.raises(DataError, match=r"u\.data, line 3: rating 'five' \(column 3\) is not a number"):
        read_movielens(f)
    g = write(tmp_path / "score.txt", "1 2 3 4\n1 3 x 4\n")
    with pytest.raises(DataError, match=r"score\.txt, line 2: instant 'x' \(column 3\) is not a number"):
        read_jstarcraft(g)
    h = write(tmp_path / "t.csv", "user,item,rating,timestamp\n1,2,3,4\n1,2,3,NaN\n")
    with pytest.raises(DataError, match=r"t\.csv, line 3: timestamp 'NaN' \(column 4\) is not a number"):
        read_table(h)
    p = tmp_path / "bad.parquet"
    pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": ["4", "good"]}).to_parquet(p)
    with pytest.raises(DataError, match=r"bad\.parquet, row 2: rating 'good' is not a number"):
        read_table(p)


def test_error_wrong_field_count_names_line(tmp_path: Path) -> None:
    f = write(tmp_path / "x.inter", "user_id:token\titem_id:token\trating:float\n1\t2\t3\n4\t5\t6\t7\n")
    with pytest.raises(DataError, match=r"x\.inter, line 3: expected 3 fields separated by tabs, found 4"):
        read_recbole(f)
    g = write(tmp_path / "score.txt", "1 2 3 4\n1 2 3 4\n1 2 3\n")
    with pytest.raises(DataError, match=r"score\.txt, line 3: expected 4 fields separated by spaces, found 3"):
        read_jstarcraft(g)
    h = write(tmp_path / "ratings.dat", "1::2::3::4\n1::2::3\n")
    with pytest.raises(DataError, match=r"ratings\.dat, line 2: expected 4 fields separated by '::', found 3"):
        read_movielens(h)


def test_error_empty_id(tmp_path: Path) -> None:
    f = write(tmp_path / "i.csv", "user,item\n1,2\n,3\n")
    with pytest.raises(DataError, match=r"i\.csv, line 3: user id \(column 1\) is empty"):
        read_table(f)


def test_error_unknown_format_and_option(tmp_path: Path) -> None:
    f = write(tmp_path / "a.csv", "user,item\n1,2\n")
    with pytest.raises(DataError, match="unknown format 'xls'; expected one of recbole, movielens"):
        read(f, format="xls")
    with pytest.raises(DataError, match="cannot tell the format"):
        read(write(tmp_path / "a.bin", "x"))
    with pytest.raises(ParameterError, match="option 'sep' does not apply to format 'jstarcraft'"):
        read(f, format="jstarcraft", sep=",")


def test_errors_are_one_sentence(tmp_path: Path) -> None:
    f = write(tmp_path / "u.data", "1\t2\t3\t100\n1\t3\tfive\t101\n")
    with pytest.raises(DataError) as info:
        read_movielens(f)
    assert "\n" not in str(info.value)


def test_guess_format(tmp_path: Path, recbole_dir: Path) -> None:
    assert readers.guess_format(recbole_dir) == "recbole"
    assert readers.guess_format(recbole_dir / "toy") == "recbole"
    assert readers.guess_format(write(tmp_path / "ml" / "u.data", "1\t2\t3\t4\n").parent) == "movielens"
    assert readers.guess_format(write(tmp_path / "ft" / "score.txt", "1 2 3 4\n").parent) == "jstarcraft"
    assert readers.guess_format(tmp_path / "ft" / "score.txt") == "jstarcraft"


# ---------------------------------------------------------------------- parsers, gzip
def _same(a, b) -> None:
    assert np.array_equal(a.users.ids, b.users.ids) and a.users.ids.dtype == b.users.ids.dtype
    assert np.array_equal(a.items.ids, b.items.ids) and a.items.ids.dtype == b.items.ids.dtype
    assert (a.matrix != b.matrix).nnz == 0 and np.array_equal(a.matrix.indptr, b.matrix.indptr)
    assert (a.timestamps is None) == (b.timestamps is None)
    if a.timestamps is not None:
        assert np.array_equal(a.timestamps, b.timestamps)
    if a.item_data is not None:
        pd.testing.assert_frame_equal(a.item_data, b.item_data)


def test_both_parsers_read_real_files_alike(monkeypatch, parser) -> None:
    if SHARED is None:
        pytest.fail("this check needs the shared data sets (../shared/data or RECSEEK_TEST_DATA)")
    root = SHARED / "jstarcraft"
    for fn in (lambda: read_recbole(SHARED / "ml-100k"),
               lambda: read_jstarcraft(root / "filmtrust" / "score.txt"),
               lambda: read_jstarcraft(root / "musical_instruments.txt")):
        here = fn()
        with monkeypatch.context() as m:
            m.setattr(_text, "has_pyarrow", lambda: parser == "pandas")  # the other parser
            other = fn()
        _same(here, other)


def test_pandas_parser_quoted_csv(tmp_path: Path) -> None:
    f = write(tmp_path / "q.csv", 'user,item,rating\n"a,1",x,4\n"b",y,2.5\n')
    data = read_table(f)
    assert entries(data) == {("a,1", "x"): 4.0, ("b", "y"): 2.5}


def test_short_line_named_even_when_the_missing_field_is_unused(tmp_path: Path) -> None:
    # an empty trailing field is allowed; a missing one is not (pandas alone would pad it)
    ok = write(tmp_path / "ok.csv", "user,item,rating,note\n1,2,3,\n4,5,6,x\n")
    assert read_table(ok).nnz == 2
    bad = write(tmp_path / "bad.csv", "user,item,rating,note\n1,2,3,\n1,3,4\n")
    with pytest.raises(DataError, match=r"bad\.csv, line 3: expected 4 fields separated by commas, found 3"):
        read_table(bad)
    tabs = write(tmp_path / "u.data", "1\t2\t3\t100\n1\t3\t4\n")
    with pytest.raises(DataError, match=r"u\.data, line 2: expected 4 fields separated by tabs, found 3"):
        read_movielens(tabs)


def test_gzip_files_read_transparently(tmp_path: Path) -> None:
    import gzip

    text = "user,item,rating,timestamp\n1,2,3,10\n1,3,4,11\n2,2,5,12\n"
    plain = read_table(write(tmp_path / "r.csv", text))
    for name in ("r.csv.gz", "r.csv"):  # by extension and by content
        gz = tmp_path / "gz" / name
        gz.parent.mkdir(exist_ok=True)
        gz.write_bytes(gzip.compress(text.encode()))
        _same(plain, read(gz))
        _same(plain, read_table(gz))
    tsv = tmp_path / "r.tsv.gz"
    tsv.write_bytes(gzip.compress(text.replace(",", "\t").encode()))
    assert readers.guess_format(tsv) == "tsv"
    _same(plain, read(tsv))


def test_gzip_bad_line_named_in_text(tmp_path: Path) -> None:
    import gzip

    gz = tmp_path / "r.csv.gz"
    gz.write_bytes(gzip.compress(b"user,item,rating\n1,2,3\n1,3,lots\n"))
    with pytest.raises(DataError, match=r"r\.csv\.gz, line 3: rating 'lots' \(column 3\) is not a number"):
        read(gz)
    broken = tmp_path / "cut.csv.gz"
    broken.write_bytes(gzip.compress(b"user,item,rating\n1,2,3\n" * 50)[:30])
    with pytest.raises(DataError, match=r"cut\.csv\.gz: damaged gzip file"):
        read(broken)


def test_missing_column_hint_in_toml_form(tmp_path: Path) -> None:
    from recseek._interface import calling_from

    f = write(tmp_path / "m.csv", "person,thing\n1,2\n")
    with pytest.raises(DataError, match=r"columns=\{'user': \.\.\.\}"):
        read_table(f)
    with calling_from("toml"), pytest.raises(DataError, match=r'options = \{ columns = \{ user = "\.\.\." \} \}'):
        read_table(f)


def test_id_array_keeps_non_canonical_ids() -> None:
    assert _text.id_array(np.array(["42", "7", "-3"], dtype=object)).dtype == np.int64
    for ids in (["42", "007"], ["1", "+2"], ["1", "2.0"], ["1", "-0"], ["9" * 30, "1"], ["1", " 2"]):
        out = _text.id_array(np.array(ids, dtype=object))
        assert out.dtype.kind == "U" and out.tolist() == ids
