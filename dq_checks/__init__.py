"""Data-quality checks, stream against batch. Not built yet (issue 5)."""
