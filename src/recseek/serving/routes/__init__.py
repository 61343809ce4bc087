"""The routers of the HTTP API, one per concern: inference, management (DJL), OIP (KServe v2),
feedback, and health with metrics."""

from __future__ import annotations

from . import feedback, health, inference, management, oip

__all__ = ["feedback", "health", "inference", "management", "oip"]
