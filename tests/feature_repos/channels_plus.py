"""The channels repository with one feature added before the others: web_clicks_1h. Nothing else
changes, so a redeploy must restore every other stream feature's state."""

from tests.feature_repos import channels
from tests.feature_repos.channels_v2 import WEB_CLICKS_1H

EVENT_ATTRIBUTES = channels.EVENT_ATTRIBUTES
FEATURES = (WEB_CLICKS_1H, *channels.FEATURES)
