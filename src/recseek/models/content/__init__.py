"""Content-based and hybrid models that read item side data (text, features)."""
