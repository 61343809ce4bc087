"""Search: lexical (BM25 family, TF-IDF), dense and hybrid retrieval."""

from .base import Document, Hits, Retriever

__all__ = ["Document", "Hits", "Retriever"]
