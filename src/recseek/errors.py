"""Exceptions raised for user mistakes.

Every error a user can cause by bad input derives from :class:`RecseekError`; its
message is one sentence naming what is wrong and where.  The command line prints that
sentence and exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations


class RecseekError(ValueError):
    """Base class of every error caused by bad input (data, parameters, files)."""


class DataError(RecseekError):
    """A data file or array cannot be read or has invalid content."""


class ParameterError(RecseekError):
    """A hyperparameter or argument is unknown or out of range."""


class NotFittedError(RecseekError):
    """A model was used before ``fit`` was called."""


class TrainingError(RecseekError):
    """Training diverged (NaN or infinite values) or cannot proceed."""


class UnsupportedError(RecseekError):
    """The model cannot do what was asked (e.g. a ranking model asked for ratings)."""


class ModelFileError(RecseekError):
    """A saved model or index is missing, corrupt or from an unknown format version."""
