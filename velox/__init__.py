"""Velox core: per-user Bayesian linear heads over shared features, exploration, filters."""
