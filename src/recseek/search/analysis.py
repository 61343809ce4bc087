"""Text analysis for search: tokenizing, lowercasing, stopwords, stemming, n-grams, CJK.

An :class:`Analyzer` turns text into a list of terms. The same analyzer (saved with an
index through :meth:`Analyzer.to_dict`) analyses documents and queries, so both always
agree on what a term is.

Pipeline, in order:

1. tokenize on Unicode word characters (``\\w+``); runs of CJK characters are split
   off from surrounding letters and digits;
2. lowercase (``lowercase=True``);
3. drop stopwords (compared case-insensitively);
4. Snowball-stem (PyStemmer) every non-CJK token;
5. CJK runs become overlapping character bigrams (``cjk="bigram"``; a one-character run
   stays a unigram), single characters (``cjk="unigram"``) or stay whole (``cjk=None``);
6. with ``ngrams=n > 1``, word n-grams of 2..n consecutive terms (joined by a space)
   are appended after the unigrams.

Every distinct token is analysed once and cached, so analysing a large batch costs one
regular-expression pass and one dictionary lookup per token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import ParameterError

__all__ = ["Analyzer", "ENGLISH_STOPWORDS", "TermIds"]

#: English stopwords: articles, pronouns, auxiliaries, prepositions, conjunctions and
#: other function words (lowercase).
ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against all am an and any are aren't as at be because been
    before being below between both but by can cannot could couldn't did didn't do does
    doesn't doing don't down during each few for from further had hadn't has hasn't have
    haven't having he he'd he'll he's her here here's hers herself him himself his how how's
    i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my
    myself no nor not of off on once only or other ought our ours ourselves out over own
    same shan't she she'd she'll she's should shouldn't so some such than that that's the
    their theirs them themselves then there there's these they they'd they'll they're
    they've this those through to too under until up very was wasn't we we'd we'll we're
    we've were weren't what what's when when's where where's which while who who's whom why
    why's with won't would wouldn't you you'd you'll you're you've your yours yourself
    yourselves also just will shall may might must upon within without via yet whether
    either neither per among s t d ll m o re ve y don didn doesn hadn hasn haven isn
    mightn mustn needn shan shouldn wasn weren won wouldn aren couldn
    """.split()
)

_CJK = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2fdf"  # CJK radicals
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3100-\u312f"  # Bopomofo
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u31f0-\u31ff"  # Katakana extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # half-width Katakana
    "\U00020000-\U0002ffff"  # CJK extensions B..
)
_CJK_RUN = re.compile(f"[{_CJK}]+")
# a CJK run, or a run of word characters that are not CJK
_TOKEN = re.compile(f"[{_CJK}]+|(?:(?![{_CJK}])\\w)+")
_TOKEN_PLAIN = re.compile(r"\w+")
_HAS_CJK = re.compile(f"[{_CJK}]")

_CJK_MODES = ("bigram", "unigram", None)


class _Cache(dict):
    """token -> tuple of terms, computed on first sight."""

    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def __missing__(self, key: str) -> tuple[str, ...]:
        value = self.fn(key)
        self[key] = value
        return value


class Analyzer:
    """Turns text into terms; saved with an index so queries are analysed the same way.

    Parameters
    ----------
    lowercase : bool
        Lowercase tokens before everything else.
    stopwords : "english", None or iterable of str
        Words dropped (case-insensitive). ``"english"`` is :data:`ENGLISH_STOPWORDS`.
    stemmer : str or None
        A Snowball algorithm name known to PyStemmer (``"english"``, ``"french"``, ...,
        ``"porter"``), or None for no stemming.
    ngrams : int
        Largest word n-gram; 1 means single terms only.
    cjk : "bigram", "unigram" or None
        What runs of Chinese/Japanese/Korean characters become.
    """

    def __init__(
        self,
        lowercase: bool = True,
        stopwords: str | Iterable[str] | None = "english",
        stemmer: str | None = "english",
        ngrams: int = 1,
        cjk: str | None = "bigram",
    ) -> None:
        if not isinstance(lowercase, bool):
            raise ParameterError(f"Analyzer: lowercase must be true or false, got {lowercase!r}")
        if isinstance(ngrams, bool) or not isinstance(ngrams, int) or ngrams < 1:
            raise ParameterError(f"Analyzer: ngrams must be an integer of at least 1, got {ngrams!r}")
        if cjk not in _CJK_MODES:
            raise ParameterError(f"Analyzer: cjk must be 'bigram', 'unigram' or None, got {cjk!r}")
        if isinstance(stopwords, str):
            if stopwords != "english":
                raise ParameterError(
                    f"Analyzer: stopwords must be 'english', None or a list of words, got {stopwords!r}"
                )
            stop: frozenset[str] = ENGLISH_STOPWORDS
        elif stopwords is None:
            stop = frozenset()
        else:
            try:
                words = list(stopwords)
            except TypeError:
                raise ParameterError(
                    f"Analyzer: stopwords must be 'english', None or a list of words, got {stopwords!r}"
                ) from None
            if not all(isinstance(w, str) for w in words):
                raise ParameterError("Analyzer: every stopword must be a string")
            stop = frozenset(w.lower() for w in words)
        self._stemmer_obj = None
        if stemmer is not None:
            from .._optional import require

            Stemmer = require("Stemmer", purpose="stemming", python="pass stemmer=None", cli="pass --stemmer none")
            if stemmer not in Stemmer.algorithms():
                raise ParameterError(
                    f"Analyzer: unknown stemmer {stemmer!r}; known: {', '.join(Stemmer.algorithms())}"
                )
            self._stemmer_obj = Stemmer.Stemmer(stemmer)
        self.lowercase = lowercase
        self.stopwords = stopwords if isinstance(stopwords, str) or stopwords is None else sorted(stop)
        self.stemmer = stemmer
        self.ngrams = ngrams
        self.cjk = cjk
        self._stop = stop
        self._cache = _Cache(self._analyze_token)

    # ------------------------------------------------------------------ settings
    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings; :meth:`from_dict` rebuilds an identical analyzer."""
        return {
            "lowercase": self.lowercase,
            "stopwords": self.stopwords,
            "stemmer": self.stemmer,
            "ngrams": self.ngrams,
            "cjk": self.cjk,
        }

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> Analyzer:
        known = {"lowercase", "stopwords", "stemmer", "ngrams", "cjk"}
        unknown = set(settings) - known
        if unknown:
            raise ParameterError(f"Analyzer: unknown setting {sorted(unknown)[0]!r}; known: {', '.join(sorted(known))}")
        return cls(**settings)

    def __repr__(self) -> str:
        stop = self.stopwords if not isinstance(self.stopwords, list) else f"<{len(self.stopwords)} words>"
        return (
            f"Analyzer(lowercase={self.lowercase}, stopwords={stop!r}, stemmer={self.stemmer!r}, "
            f"ngrams={self.ngrams}, cjk={self.cjk!r})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Analyzer) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------------ analysis
    def _analyze_token(self, token: str) -> tuple[str, ...]:
        """Terms of one (already lowercased if asked) token."""
        if _HAS_CJK.match(token):
            if self.cjk is None or len(token) == 1:
                return (token,)
            if self.cjk == "unigram":
                return tuple(token)
            return tuple(token[i : i + 2] for i in range(len(token) - 1))
        if (token.lower() if not self.lowercase else token) in self._stop:
            return ()
        if self._stemmer_obj is not None:
            return (self._stemmer_obj.stemWord(token),)
        return (token,)

    def _tokens(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        if text.isascii() or _HAS_CJK.search(text) is None:
            return _TOKEN_PLAIN.findall(text)
        return _TOKEN.findall(text)

    def analyze(self, text: str) -> list[str]:
        """Terms of one text, in order (with n-grams appended when ``ngrams > 1``)."""
        if not isinstance(text, str):
            raise ParameterError(f"Analyzer: text must be a string, got {type(text).__name__}")
        cache = self._cache
        terms: list[str] = []
        for tok in self._tokens(text):
            terms.extend(cache[tok])
        if self.ngrams > 1:
            terms = _with_ngrams(terms, self.ngrams)
        return terms

    __call__ = analyze

    def analyze_batch(self, texts: Sequence[str]) -> list[list[str]]:
        """Terms of many texts."""
        return [self.analyze(t) for t in texts]

    def term_ids(self, vocab: dict[str, int]) -> TermIds:
        """A memo ``token -> term ids`` that grows ``vocab``; pass it to :meth:`encode`."""
        return TermIds(self, vocab)

    def encode(
        self,
        texts: Sequence[str],
        vocab: dict[str, int],
        *,
        grow: bool = True,
        memo: TermIds | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Analyse ``texts`` straight into term ids.

        Parameters
        ----------
        texts : sequence of str
        vocab : dict term -> id
            Updated in place with new terms (ids ``len(vocab)``, ...) when ``grow``;
            otherwise unknown terms get id ``-1``.
        memo : TermIds, optional
            From :meth:`term_ids` on the same ``vocab``; reusing it across calls skips
            analysing tokens seen before (only used when ``grow``).

        Returns
        -------
        lengths : ndarray of int64, shape (n_texts,)
            Number of terms of each text (unknown terms included, so lengths do not
            depend on the vocabulary).
        ids : ndarray of int64, shape (lengths.sum(),)
            Concatenated term ids of all texts.
        """
        for text in texts:
            if not isinstance(text, str):
                raise ParameterError(f"Analyzer: text must be a string, got {type(text).__name__}")
        n = len(texts)
        if grow and self.ngrams == 1:
            if memo is None or memo.vocab is not vocab:
                memo = TermIds(self, vocab)
            get = memo.__getitem__
            tokens = self._tokens
            flat: list[int] = []
            raw_len = np.empty(n, dtype=np.int64)
            for i, text in enumerate(texts):
                tl = list(map(get, tokens(text)))
                raw_len[i] = len(tl)
                flat += tl
            arr = np.asarray(flat, dtype=np.int64)
            if memo.multi and (arr <= -2).any():
                # tokens with several terms (CJK n-grams): expand them
                out: list[int] = []
                lengths = np.zeros(n, dtype=np.int64)
                pos = 0
                for i in range(n):
                    for v in flat[pos : pos + raw_len[i]]:
                        if v >= 0:
                            out.append(v)
                            lengths[i] += 1
                        elif v <= -2:
                            t = memo.multi[-2 - v]
                            out.extend(t)
                            lengths[i] += len(t)
                    pos += raw_len[i]
                return lengths, np.asarray(out, dtype=np.int64)
            keep = arr >= 0
            doc = np.repeat(np.arange(n), raw_len)
            return np.bincount(doc[keep], minlength=n).astype(np.int64), arr[keep]
        lengths = np.zeros(n, dtype=np.int64)
        ids: list[int] = []
        for i, text in enumerate(texts):
            terms = self.analyze(text)
            lengths[i] = len(terms)
            if grow:
                for t in terms:
                    j = vocab.get(t)
                    if j is None:
                        j = vocab[t] = len(vocab)
                    ids.append(j)
            else:
                vget = vocab.get
                ids.extend(vget(t, -1) for t in terms)
        return lengths, np.asarray(ids, dtype=np.int64)


class TermIds(dict):
    """Memo ``token -> term id`` bound to one analyzer and one growing vocabulary.

    A value ``>= 0`` is the token's single term id, ``-1`` means no term (stopword) and
    ``-2 - j`` points at ``multi[j]``, the term ids of a token giving several terms.
    """

    def __init__(self, analyzer: Analyzer, vocab: dict[str, int]) -> None:
        super().__init__()
        self.analyzer = analyzer
        self.vocab = vocab
        self.multi: list[tuple[int, ...]] = []

    def __missing__(self, token: str) -> int:
        vocab = self.vocab
        out = []
        for t in self.analyzer._cache[token]:
            i = vocab.get(t)
            if i is None:
                i = vocab[t] = len(vocab)
            out.append(i)
        if len(out) == 1:
            value = out[0]
        elif not out:
            value = -1
        else:
            self.multi.append(tuple(out))
            value = -1 - len(self.multi)
        self[token] = value
        return value


def _with_ngrams(terms: list[str], n: int) -> list[str]:
    out = list(terms)
    for size in range(2, n + 1):
        out.extend(" ".join(terms[i : i + size]) for i in range(len(terms) - size + 1))
    return out
