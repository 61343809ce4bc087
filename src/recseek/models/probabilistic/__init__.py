"""Probabilistic and topic models (graphical models over users, items and ratings)."""
