"""The classes features are declared with, the canonical event, and feature repositories
(the shipped one: features/ecommerce.py)."""

from features.definitions import Feature
from features.repository import FeatureRepository

__all__ = ["Feature", "FeatureRepository"]
