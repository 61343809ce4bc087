"""Item text encoder (recseek.text): hashing / TF-IDF embeddings re-derived by hand,
item texts from item_data, the sentence model with its on-disk cache (slow)."""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from recseek.errors import DataError, ParameterError
from recseek.testing.fixtures import synthetic
from recseek.text import HashingEncoder, TextEncoder, item_texts
from recseek.text.encoder import HASHING_DIM, sentence_model_key


def _by_hand(text: str, dim: int = HASHING_DIM, idf: np.ndarray | None = None) -> np.ndarray:
    """Signed hashing of lower-cased words with 1 + log(tf), written out word by word."""
    v = np.zeros(dim)
    counts: dict[str, int] = {}
    for w in text.lower().replace(",", " ").replace(".", " ").split():
        counts[w] = counts.get(w, 0) + 1
    for w, tf in counts.items():
        h = zlib.crc32(w.encode())
        v[h % dim] += (1.0 if (h >> 16) & 1 else -1.0) * (1.0 + np.log(tf))
    if idf is not None:
        v *= idf
    n = np.linalg.norm(v)
    return v / n if n else v


def test_hashing_matches_hand_derivation() -> None:
    texts = ["Toy Story. Animation, Comedy", "comedy comedy drama", "GoldenEye. Action", ""]
    got = HashingEncoder().encode(texts)
    for t, row in zip(texts, got, strict=True):
        np.testing.assert_allclose(row, _by_hand(t), rtol=1e-5, atol=1e-6)
    assert got.dtype == np.float32 and not got[3].any()
    # a second encoder (a new process would be the same: CRC-32, not Python's salted hash)
    np.testing.assert_array_equal(HashingEncoder().encode(texts), got)


def test_hashing_adds_colliding_words() -> None:
    """Distinct words hashed to one bucket each add their own signed 1 + log(tf), with
    the same sign or opposite ones (a per-bucket count would merge or drop them)."""
    seen: dict[int, list[str]] = {}
    same = opposite = None
    for j in range(20_000):
        w = f"w{j}"
        h = zlib.crc32(w.encode())
        for other in seen.get(h % HASHING_DIM, []):
            same_sign = ((zlib.crc32(other.encode()) >> 16) & 1) == ((h >> 16) & 1)
            if same_sign and same is None:
                same = (other, w)
            if not same_sign and opposite is None:
                opposite = (other, w)
        seen.setdefault(h % HASHING_DIM, []).append(w)
        if same and opposite:
            break
    texts = [f"{same[0]} {same[1]} {same[1]}", f"{opposite[0]} {opposite[0]} {opposite[1]} zebra",
             f"{same[0]} {opposite[1]}"]
    enc = HashingEncoder()
    for t, row in zip(texts, enc.encode(texts), strict=True):
        np.testing.assert_allclose(row, _by_hand(t), rtol=1e-5, atol=1e-6)
    idf = enc.fit_idf(texts)
    bucket = zlib.crc32(same[0].encode()) % HASHING_DIM
    assert idf[bucket] == pytest.approx(np.log(4 / 3) + 1, rel=1e-6)  # in texts 0 and 2: df = 2


def test_tfidf_idf_formula() -> None:
    corpus = ["space rocket", "space love", "love wedding"]
    enc = TextEncoder("tfidf").fit(corpus)
    idf = enc.idf
    n = len(corpus)
    for word, df in (("space", 2), ("rocket", 1), ("wedding", 1)):
        b = zlib.crc32(word.encode()) % HASHING_DIM
        assert idf[b] == pytest.approx(np.log((1 + n) / (1 + df)) + 1, rel=1e-6)
    got = enc.encode(["space rocket"])[0]
    np.testing.assert_allclose(got, _by_hand("space rocket", idf=idf), rtol=1e-5, atol=1e-6)
    # rarer words weigh more: "rocket" (df 1) outweighs "space" (df 2)
    assert abs(got[zlib.crc32(b"rocket") % HASHING_DIM]) > abs(got[zlib.crc32(b"space") % HASHING_DIM])


def test_unfitted_tfidf_and_bad_settings() -> None:
    with pytest.raises(ParameterError, match="fitted"):
        TextEncoder("tfidf").encode(["x"])
    with pytest.raises(ParameterError, match="encoder must be one of"):
        TextEncoder("bag")
    with pytest.raises(ParameterError, match="only with encoder='sentence'"):
        TextEncoder("hashing", model="some/model")


def test_item_texts_from_item_data() -> None:
    data = synthetic(n_users=10, n_items=4, seed=1)
    frame = pd.DataFrame({"title": ["A", "B", None, "D"], "genres": ["x|y", ["p", "q"], "z", np.nan],
                          "year": pd.array([1995, None, 2001, 1990], dtype="Int64")})
    data = replace(data, item_data=frame)
    assert item_texts(data, None) == ["A. 1995. x, y", "B. p, q", "2001. z", "D. 1990"]
    assert item_texts(data, "genres") == ["x, y", "p, q", "z", ""]
    with pytest.raises(DataError, match="'plot', which item_data lacks"):
        item_texts(data, ["title", "plot"])
    with pytest.raises(DataError, match="no item_data"):
        item_texts(synthetic(), None, "ItemTextKNN")
    with pytest.raises(DataError, match="none of the text columns"):
        item_texts(replace(data, item_data=pd.DataFrame({"price": [1, 2, 3, 4]})), None)


@pytest.mark.slow
def test_sentence_model_cache_and_meaning(tmp_path, monkeypatch) -> None:
    """The default offline MiniLM model: similar titles are close, and a second encoding
    comes from the on-disk cache without running the model."""
    pytest.importorskip("sentence_transformers")
    enc = TextEncoder("sentence", cache_dir=tmp_path)
    texts = ["A light romantic comedy", "A funny romantic film", "Nuclear submarine war thriller", ""]
    e = enc.encode(texts)
    assert e.shape == (4, 384) and not e[3].any()
    np.testing.assert_allclose(np.linalg.norm(e[:3], axis=1), 1.0, rtol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2
    assert list(tmp_path.rglob("*.emb.npy")), "nothing was written to the embedding cache"
    again = TextEncoder("sentence", cache_dir=tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded although every text was cached")

    # the cache key needs no model: a fully cached encoding never loads it
    monkeypatch.setattr(TextEncoder, "_retriever", refuse)
    np.testing.assert_allclose(again.encode(texts), e, rtol=1e-6, atol=1e-7)
    assert not again.model_loaded
    # queries are not cached, and a new text misses: both need the model
    with pytest.raises(AssertionError, match="was loaded"):
        again.encode(["A light romantic comedy"], query=True)
    with pytest.raises(AssertionError, match="was loaded"):
        again.encode(["A text nobody embedded before", texts[0]])
    monkeypatch.undo()
    mixed = again.encode(["A text nobody embedded before", texts[0]])
    np.testing.assert_allclose(mixed[1], e[0], rtol=1e-6, atol=1e-7)
    assert again.model_loaded


def test_model_key_follows_the_files_not_a_loaded_model(tmp_path) -> None:
    """The cache key of a model folder changes with any config or weights file and with
    the folder, and is computed without sentence-transformers loading anything."""
    folder = tmp_path / "m"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden": 8}')
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 256}')
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    (folder / "1_Pooling" / "config.json").write_text('{"mean": true}')
    (folder / "README.md").write_text("notes")
    key = sentence_model_key(folder)
    assert key == sentence_model_key(str(folder)) and len(key) == 16
    (folder / "README.md").write_text("other notes")  # not part of the model
    assert sentence_model_key(folder) == key
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    k2 = sentence_model_key(folder)
    assert k2 != key
    (folder / "model.safetensors").write_bytes(b"\x01" * 64)
    k3 = sentence_model_key(folder)
    assert k3 not in (key, k2)
    (folder / "1_Pooling" / "config.json").write_text('{"mean": false}')
    assert sentence_model_key(folder) not in (key, k2, k3)
    # a hub name is named by itself (and the library version), never resolved by loading
    assert sentence_model_key("org/some-model") != sentence_model_key("org/other-model")
