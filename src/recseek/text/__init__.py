"""Text embeddings of items and queries for recommendation (cold start, text queries)."""

from .encoder import DEFAULT_TEXT_COLUMNS, ENCODERS, HashingEncoder, TextEncoder, item_texts, resolve_columns

__all__ = ["DEFAULT_TEXT_COLUMNS", "ENCODERS", "HashingEncoder", "TextEncoder", "item_texts", "resolve_columns"]
