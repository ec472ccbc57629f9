"""Database layer: types, models, engine rules and migrations."""
