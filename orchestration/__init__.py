"""Dagster definitions. Not built yet (issue 4)."""
