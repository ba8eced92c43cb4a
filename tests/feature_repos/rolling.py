"""The shipped 30-day features beside the vocabulary's, which has every other 30-day measure
(tests/integration/test_features_30d.py: daily partials merged over days equal a rescan of
the days' events)."""

from features.ecommerce import BATCH_FEATURES
from tests.feature_repos import vocabulary

EVENT_ATTRIBUTES = vocabulary.EVENT_ATTRIBUTES
FEATURES = (*BATCH_FEATURES, *(f for f in vocabulary.FEATURES if f.layer == "batch"))
