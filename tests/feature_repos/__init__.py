"""Feature repositories the tests deploy (docs/features.md describes the format)."""
