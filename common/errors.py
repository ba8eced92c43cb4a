"""User-facing errors: one clear message, no stack trace."""


class PlatformError(Exception):
    """An error the user can fix; the CLI prints the message and exits non-zero."""

    def __init__(self, what: str, fix: str | None = None) -> None:
        self.what = what
        self.fix = fix
        super().__init__(what if not fix else f"{what}\n  fix: {fix}")
