"""User-facing errors: one clear message, no stack trace."""


class PlatformError(Exception):
    """An error the user can fix; the CLI prints the message and exits non-zero."""

    def __init__(self, what: str, fix: str | None = None) -> None:
        self.what = what
        self.fix = fix
        super().__init__(what if not fix else f"{what}\n  fix: {fix}")


def engine_message(e: BaseException) -> str:
    """An engine's error (Flink, Spark) without its stack trace: the first lines saying what is wrong."""
    lines = [ln.strip() for ln in str(e).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("at ", "...", "JVM stacktrace"))]
    return " ".join(lines[:3])[:600]
