"""Search: lexical (BM25 family, TF-IDF), dense and hybrid retrieval."""

from .analysis import Analyzer
from .base import Document, Hits, Retriever
from .filters import MetadataStore
from .lexical import BM25, TFIDF, LexicalRetriever

__all__ = ["Document", "Hits", "Retriever"]
__all__ += ["Analyzer", "MetadataStore", "BM25", "TFIDF", "LexicalRetriever"]
