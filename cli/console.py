"""What every command shares: the console, the settings with logging set up, option parsing."""

from __future__ import annotations

import logging
from datetime import date

from rich.console import Console
from rich.logging import RichHandler

from common.errors import PlatformError
from common.settings import Settings, load_settings

console = Console()


def settings() -> Settings:
    """The platform's settings, after setting up logging for a command."""
    logging.basicConfig(
        level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False, level=logging.INFO)]
    )
    for noisy in ("py4j", "kafka", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return load_settings()


def parse_date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PlatformError(f"{option} {value!r} is not a date", "use YYYY-MM-DD") from None


def size(n: int) -> str:
    return f"{n / 1024 / 1024:,.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:,.1f} KiB"
