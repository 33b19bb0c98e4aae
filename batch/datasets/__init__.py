"""Datasets the training job reads: built-in ones (synthetic, movielens-100k) and user events."""
