"""feature_store package."""
