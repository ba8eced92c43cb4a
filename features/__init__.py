"""The one definition of every feature and of the canonical event."""

from features.definitions import FEATURES, STREAM_FEATURES, Feature, feature

__all__ = ["FEATURES", "STREAM_FEATURES", "Feature", "feature"]
