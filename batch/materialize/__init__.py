"""`velox materialize`: every selected user x every item → a top-N score table (Spark job).

Table format: docs/score_tables.md (feature_store/score_tables/ writes and reads it).
"""
