"""The catalogue database's client (PyMySQL): a user's MySQL or MariaDB when
CATALOG__URL is set, else the platform's local MariaDB, started here when it is not running."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from common.errors import PlatformError
from common.settings import Settings

TABLE = "items"
ITEMS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "item_id BIGINT NOT NULL PRIMARY KEY, category_id BIGINT NULL, brand VARCHAR(255) NULL, "
    "price DECIMAL(12, 2) NULL, title VARCHAR(1024) NULL, "
    "updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3))"
)


@dataclass(frozen=True)
class Target:
    """Where the catalogue lives."""

    host: str
    port: int
    user: str
    password: str
    database: str

    def connection_settings(self) -> dict:
        """As PyMySQL and mysql-replication take them."""
        return {"host": self.host, "port": self.port, "user": self.user, "password": self.password}


def target(settings: Settings) -> Target:
    c = settings.catalog
    if not c.url:
        return Target("127.0.0.1", c.local_port, "lambda", "", c.database)
    u = urlparse(c.url)
    db = u.path.lstrip("/")
    if u.scheme not in ("mysql", "mariadb") or not u.hostname or not re.fullmatch(r"[A-Za-z0-9_]+", db):
        raise PlatformError(
            "LAMBDA_FEATURES_CATALOG__URL must look like mysql://user:password@host:3306/database",
            "fix it, or unset it to use the platform's local MariaDB",
        )
    return Target(u.hostname, u.port or 3306, unquote(u.username or "root"), unquote(u.password or ""), db)


def where(settings: Settings) -> str:
    """The catalogue's address without credentials, for messages."""
    t = target(settings)
    return f"mysql://{t.host}:{t.port}/{t.database}"


def connect(settings: Settings, autocommit: bool = False):  # -> pymysql.connections.Connection
    """A connection to the catalogue database, with the items table created if missing; times in UTC."""
    import pymysql

    if not settings.catalog.url:
        from common.services import ensure_running, mariadb_service

        ensure_running(mariadb_service(settings))
    t = target(settings)
    try:
        conn = pymysql.connect(
            **t.connection_settings(),
            database=t.database,
            autocommit=autocommit,
            connect_timeout=5,
            init_command="SET time_zone = '+00:00'",
        )
    except pymysql.MySQLError as e:
        raise PlatformError(
            f"cannot reach the catalogue database at {where(settings)}: {e.args[-1]}",
            "check LAMBDA_FEATURES_CATALOG__URL, or unset it to use the platform's local MariaDB",
        ) from None
    with conn.cursor() as cur:
        cur.execute(ITEMS_DDL)
    return conn
