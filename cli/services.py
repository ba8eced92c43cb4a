"""`services start|stop`: the local servers of the embedded defaults."""

from __future__ import annotations

import typer

from cli.console import console, settings

app = typer.Typer(
    no_args_is_help=True,
    help="Local Redis, Kafka, ClickHouse (chDB) and catalogue (MariaDB) services of the embedded defaults.",
)


@app.command("start")
def start() -> None:
    """Start the local Redis, Kafka broker, ClickHouse service and MariaDB (when not configured to external ones)."""
    from common.services import local_services

    for svc in local_services(settings(), catalog=True):
        started = svc.start()
        console.print(
            f"{svc.name}: {'started' if started else 'already running'} on 127.0.0.1:{svc.port} (pid {svc.pid()})"
        )


@app.command("stop")
def stop() -> None:
    """Stop the local services this platform started."""
    from common.services import local_services

    for svc in local_services(settings(), catalog=True):
        svc.stop()
        console.print(f"{svc.name}: stopped")
