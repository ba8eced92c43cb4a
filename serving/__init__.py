"""The online feature API: each user's stream and batch features from the Redis hashes, over HTTP."""
