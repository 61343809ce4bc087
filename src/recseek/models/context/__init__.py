"""Context-aware recommenders: models that read when or where an interaction happened
(timestamps, item locations) besides the user x item matrix."""
