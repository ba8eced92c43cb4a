"""The `lambda-features` command."""
