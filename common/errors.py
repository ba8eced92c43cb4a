"""User-facing errors: one clear message, no stack trace."""

import re


class PlatformError(Exception):
    """An error the user can fix; the CLI prints the message and exits non-zero."""

    def __init__(self, what: str, fix: str | None = None) -> None:
        self.what = what
        self.fix = fix
        super().__init__(what if not fix else f"{what}\n  fix: {fix}")


def engine_message(e: BaseException) -> str:
    """An engine's error (Flink, Spark) without its stack trace, py4j's preamble or the echoed
    query: the first lines saying what is wrong."""
    text = re.sub(r"An error occurred while calling o\d+\.\w+\.\s*:\s*", "", str(e)).split("== SQL ==")[0]
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("at ", "...", "JVM stacktrace", "Caused by"))]
    return " ".join(lines[:3])[:600]
