"""Shared plumbing: settings, store clients and the local services the platform starts."""
