"""Search: lexical (BM25 family, TF-IDF), dense and hybrid retrieval."""

from .analysis import Analyzer
from .base import Document, Hits, Retriever
from .filters import MetadataStore
from .lexical import BM25, TFIDF, LexicalRetriever

__all__ = ["Document", "Hits", "Retriever"]
__all__ += ["Analyzer", "MetadataStore", "BM25", "TFIDF", "LexicalRetriever"]
from .dense import DenseRetriever  # noqa: E402
from .hybrid import HybridRetriever, convex, load_retriever, rrf  # noqa: E402
from .passages import PassageRetriever  # noqa: E402
from .personalized import ItemSearch  # noqa: E402

__all__ += ["DenseRetriever", "HybridRetriever", "PassageRetriever", "ItemSearch", "rrf", "convex", "load_retriever"]
