"""Text analysis (recseek.search.analysis) and metadata filters (recseek.search.filters)."""

from __future__ import annotations

import numpy as np
import pytest

from recseek.errors import DataError, ParameterError
from recseek.search.analysis import ENGLISH_STOPWORDS, Analyzer
from recseek.search.filters import MetadataStore

# ---------------------------------------------------------------- analyzer


def test_default_pipeline_lowercases_drops_stopwords_and_stems():
    a = Analyzer()
    assert a.analyze("The Running Dogs were RUNNING quickly.") == ["run", "dog", "run", "quick"]


def test_stopword_list_is_of_usual_size():
    assert 150 <= len(ENGLISH_STOPWORDS) <= 260
    assert {"the", "and", "of", "is"} <= ENGLISH_STOPWORDS
    assert "aircraft" not in ENGLISH_STOPWORDS


def test_no_stemming_no_stopwords_keeps_tokens():
    a = Analyzer(stopwords=None, stemmer=None)
    assert a.analyze("The dogs, the CATS!") == ["the", "dogs", "the", "cats"]


def test_user_stopwords_are_case_insensitive():
    a = Analyzer(stopwords=["Dog"], stemmer=None, lowercase=False)
    assert a.analyze("dog DOG Cat") == ["Cat"]


def test_unicode_words_and_digits():
    a = Analyzer(stopwords=None, stemmer=None)
    assert a.analyze("Café naïve 3.5 x_y") == ["café", "naïve", "3", "5", "x_y"]


def test_word_ngrams_are_appended():
    a = Analyzer(stopwords=None, stemmer=None, ngrams=3)
    assert a.analyze("a b c") == ["a", "b", "c", "a b", "b c", "a b c"]


def test_cjk_runs_become_bigrams_and_are_split_from_latin():
    a = Analyzer(stemmer=None)
    assert a.analyze("東京大学abc日本") == ["東京", "京大", "大学", "abc", "日本"]
    assert a.analyze("中") == ["中"]
    assert Analyzer(cjk="unigram").analyze("東京") == ["東", "京"]
    assert Analyzer(cjk=None).analyze("東京大学") == ["東京大学"]


def test_empty_and_stopword_only_texts_give_no_terms():
    a = Analyzer()
    assert a.analyze("") == []
    assert a.analyze("the of and, to!") == []


def test_round_trip_settings():
    a = Analyzer(stopwords=["foo", "bar"], stemmer="french", ngrams=2, cjk="unigram", lowercase=False)
    b = Analyzer.from_dict(a.to_dict())
    assert a == b
    assert b.analyze("foo Chevaux") == a.analyze("foo Chevaux")


def test_encode_matches_analyze_and_grows_vocab():
    a = Analyzer()
    texts = ["Running dogs", "the dog runs", ""]
    vocab: dict[str, int] = {}
    lengths, ids = a.encode(texts, vocab)
    assert lengths.tolist() == [2, 2, 0]
    inv = {i: t for t, i in vocab.items()}
    assert [inv[i] for i in ids.tolist()] == a.analyze(texts[0]) + a.analyze(texts[1])
    lengths, ids = a.encode(["dog cats"], vocab, grow=False)
    assert lengths.tolist() == [2] and ids.tolist() == [vocab["dog"], -1]


def test_encode_expands_multi_term_tokens():
    a = Analyzer(stemmer=None)
    texts = ["東京大学 the tokyo", "x 日本", "中"]
    vocab: dict[str, int] = {}
    memo = a.term_ids(vocab)
    lengths, ids = a.encode(texts, vocab, memo=memo)
    inv = {i: t for t, i in vocab.items()}
    assert [inv[i] for i in ids.tolist()] == [t for x in texts for t in a.analyze(x)]
    assert lengths.tolist() == [len(a.analyze(x)) for x in texts]
    lengths2, ids2 = a.encode(texts, vocab, memo=memo)  # memo reused
    assert ids2.tolist() == ids.tolist() and lengths2.tolist() == lengths.tolist()


@pytest.mark.parametrize(
    "kwargs",
    [{"stopwords": "klingon"}, {"stemmer": "klingon"}, {"ngrams": 0}, {"cjk": "trigram"}, {"lowercase": "yes"}],
)
def test_bad_settings_raise_parameter_error(kwargs):
    with pytest.raises(ParameterError):
        Analyzer(**kwargs)


def test_non_string_text_raises():
    with pytest.raises(ParameterError):
        Analyzer().analyze(3)  # type: ignore[arg-type]


# ---------------------------------------------------------------- metadata filters


@pytest.fixture
def store() -> MetadataStore:
    s = MetadataStore()
    s.append([{"lang": "en", "year": 1999}, {"lang": "de", "year": 2003}, None])
    s.append([{"year": 2005, "flag": True}, {"lang": "en"}])
    return s


def test_equality_membership_and_ranges(store):
    assert store.mask({"lang": "en"}).tolist() == [True, False, False, False, True]
    assert store.mask({"lang": {"in": ["en", "de"]}}).tolist() == [True, True, False, False, True]
    assert store.mask({"lang": ["de"]}).tolist() == [False, True, False, False, False]
    assert store.mask({"year": {"gte": 1999, "lt": 2005}}).tolist() == [True, True, False, False, False]
    assert store.mask({"year": {"gt": 1999, "lte": 2005}}).tolist() == [False, True, False, True, False]
    assert store.mask({"year": {"eq": 2003}}).tolist() == [False, True, False, False, False]
    # absent values never match, not even "ne"
    assert store.mask({"year": {"ne": 1999}}).tolist() == [False, True, False, True, False]
    assert store.mask({"lang": "en", "year": 1999}).tolist() == [True, False, False, False, False]
    assert store.mask({"flag": 1}).tolist() == [False, False, False, True, False]
    assert store.mask({"lang": {"in": []}}).tolist() == [False] * 5


def test_deleted_rows_never_match(store):
    store.mark_deleted([0, 2])
    assert store.mask(None).tolist() == [False, True, False, True, True]
    assert store.mask({"lang": "en"}).tolist() == [False, False, False, False, True]


def test_unknown_field_names_it_and_lists_known(store):
    with pytest.raises(ParameterError, match=r"'colour'.*flag, lang, year"):
        store.mask({"colour": "red"})


@pytest.mark.parametrize(
    "flt",
    [{"year": "1999"}, {"lang": 3}, {"year": {"between": [1, 2]}}, {"year": {}}, {"lang": {"in": "en"}}],
)
def test_bad_conditions_raise(store, flt):
    with pytest.raises(ParameterError):
        store.mask(flt)


def test_type_conflicts_and_bad_values_raise_data_error(store):
    with pytest.raises(DataError, match="'year'"):
        store.append([{"year": "late"}])
    with pytest.raises(DataError, match="'tags'"):
        store.append([{"tags": ["a", "b"]}])
    assert len(store) == 5  # nothing half-appended


def test_take_and_array_round_trip(store):
    store.mark_deleted([1])
    arrays, info = store.to_arrays("m")
    assert all(a.dtype != object for a in arrays.values())
    back = MetadataStore.from_arrays(arrays, info, "m")
    for flt in (None, {"lang": "en"}, {"year": {"gte": 2000}}):
        np.testing.assert_array_equal(back.mask(flt), store.mask(flt))
    sub = store.take(np.array([4, 0]))
    assert sub.mask({"lang": "en"}).tolist() == [True, True]
    assert sub.get(1) == {"lang": "en", "year": 1999}


def test_long_strings_widen_column():
    s = MetadataStore()
    s.append([{"k": "a"}])
    s.append([{"k": "a much longer value"}])
    assert s.mask({"k": "a much longer value"}).tolist() == [False, True]
