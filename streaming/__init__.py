"""The speed layer: PyFlink jobs that turn canonical events into fresh features."""
