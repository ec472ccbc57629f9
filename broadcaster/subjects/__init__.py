"""Data-subject requests (PDP Law, docs/domain.md §1.2): export everything held about a person, or erase it."""
