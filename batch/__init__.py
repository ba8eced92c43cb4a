"""The batch layer (PySpark): reconcile, 30-day features, backfills. Not built yet (issue 3)."""
