"""The ClickHouse HTTP interface, translated to chDB calls: a request (URL parameters and
body) becomes a `Call`, which an `Engine` runs on a pool of chDB connections to one path."""

from __future__ import annotations

import email.parser
import email.policy
import os
import re
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

# URL parameters that steer the HTTP transport; every other non-param_ one is a setting.
TRANSPORT_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "user",
        "password",
        "quota_key",
        "role",
        "buffer_size",
        "wait_end_of_query",
        "compress",
        "decompress",
        "client_protocol_version",  # Native with block info: not offered, clients fall back
        "enable_http_compression",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
    }
)
_INSERT_WITH_DATA = re.compile(r"^\s*INSERT\s+INTO\s.*\bFORMAT\s+(\w+)\s*$", re.IGNORECASE | re.DOTALL)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_CODE = re.compile(r"Code: (\d+)")
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# ClickHouse's own mapping for the common codes (HTTPHandler's exceptionCodeToHTTPStatus).
_HTTP_STATUS = {6: 400, 26: 400, 27: 400, 36: 400, 53: 400, 62: 400, 117: 400}
_HTTP_STATUS |= dict.fromkeys((46, 47, 50, 60, 73, 81, 115), 404)


class ClickHouseError(Exception):
    """An error with ClickHouse's code and text, as a server reports it."""

    def __init__(self, message: str, code: int | None = None) -> None:
        start = message.find("Code: ")
        self.message = message[start:].strip() if start >= 0 else message.strip()
        found = _CODE.search(self.message)
        self.code = code if code is not None else int(found.group(1)) if found else 1001
        if not found:
            self.message = f"Code: {self.code}. DB::Exception: {self.message}"
        super().__init__(self.message)

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS.get(self.code, 500)


def bad_request(text: str) -> ClickHouseError:
    return ClickHouseError(f"Code: 36. DB::Exception: {text}. (BAD_ARGUMENTS)", 36)


@dataclass
class Call:
    """One statement to run: SQL, the insert data that follows it, and its context."""

    sql: str
    data: bytes | None = None
    params: dict[str, str] = field(default_factory=dict)  # query parameters, without "param_"
    settings: dict[str, str] = field(default_factory=dict)
    database: str | None = None
    default_format: str = "TabSeparated"
    query_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def _form_fields(body: bytes, content_type: str) -> dict[str, str]:
    """The text fields of a multipart/form-data body (query and param_* when sent as a form)."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    out: dict[str, str] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename():
            raise bad_request("external data tables are not supported by the local chDB service")
        if name:
            out[str(name)] = part.get_payload(decode=True).decode()
    return out


def parse_call(query_string: str, body: bytes, content_type: str = "") -> Call:
    """Read a request the way ClickHouse does: the `query` parameter, then the body as the
    rest of the query, or as the data of an `INSERT ... FORMAT F`."""
    args = dict(parse_qsl(query_string, keep_blank_values=True))
    if content_type.startswith("multipart/form-data"):
        args |= _form_fields(body, content_type)
        body = b""
    if args.get("decompress") in ("1", "true") or args.get("compress") in ("1", "true"):
        raise bad_request("ClickHouse-compressed bodies are not supported; create the client with compress=False")
    query, data = args.get("query", ""), None
    if query and body and _INSERT_WITH_DATA.match(query):
        data = body
    elif body:
        head, newline, rest = body.partition(b"\n")
        if not query and newline and _INSERT_WITH_DATA.match(head.decode(errors="replace")):
            query, data = head.decode(), rest
        else:
            query = f"{query}\n{body.decode()}" if query else body.decode()
    if not query.strip():
        raise bad_request("Empty query")
    settings = {k: v for k, v in args.items() if k not in TRANSPORT_PARAMS and not k.startswith("param_")}
    for name in settings:
        if not _SETTING_NAME.match(name):
            raise bad_request(f"Invalid setting name {name!r}")
    return Call(
        sql=query,
        data=data,
        params={k.removeprefix("param_"): v for k, v in args.items() if k.startswith("param_")},
        settings=settings,
        database=args.get("database") or None,
        default_format=args.get("default_format") or "TabSeparated",
        query_id=args.get("query_id") or str(uuid.uuid4()),
    )


@dataclass
class Reply:
    body: bytes
    fmt: str | None  # the output format; None for a statement without a result
    summary: dict[str, str]


def _quote(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _summary(result, inserted: bool) -> dict[str, str]:
    rows, size = str(result.rows_read()), str(result.bytes_read())
    out = {"read_rows": rows, "read_bytes": size, "elapsed_ns": str(int(result.elapsed() * 1e9))}
    if inserted:
        out |= {"written_rows": rows, "written_bytes": size}
    return out


class _Connection:
    """A chDB connection with the database and settings its last call left on it, so a call
    only sends the SET/USE statements that differ (clients repeat the same settings)."""

    def __init__(self, path: str) -> None:
        import chdb

        self.conn = chdb.connect(path)
        self.database = "default"
        self.settings: dict[str, str] = {}

    def query(self, sql: str, fmt: str, params: dict[str, str] | None = None):
        try:
            return self.conn.query(sql, fmt, params=params or {})
        except Exception as e:  # chDB raises ChdbError/RuntimeError carrying ClickHouse's text
            raise ClickHouseError(str(e)) from None

    def prepare(self, database: str | None, settings: dict[str, str]) -> None:
        if (database or "default") != self.database:
            self.query(f"USE `{(database or 'default').replace('`', '``')}`", "TabSeparated")
            self.database = database or "default"
        for name in [n for n in self.settings if n not in settings]:
            self.query(f"SET {name} = DEFAULT", "TabSeparated")
            del self.settings[name]
        for name, value in settings.items():
            if self.settings.get(name) != value:
                self.query(f"SET {name} = {_quote(value)}", "TabSeparated")
                self.settings[name] = value

    def close(self) -> None:
        self.conn.close()


class Engine:
    """chDB on one data path, shared by any number of threads: chDB runs queries of
    different connections in parallel, so each concurrent call borrows its own."""

    def __init__(self, path: Path, max_idle: int = 8) -> None:
        self.path = str(path)
        self.max_idle = max_idle
        self._idle: list[_Connection] = [_Connection(self.path)]  # fails here if the path is taken
        self._lock = threading.Lock()
        self._closed = False
        self.timezone = self.run(Call("SELECT timezone()")).body.decode().strip()
        spool = Path("/dev/shm")
        self.spool_dir = str(spool) if spool.is_dir() and os.access(spool, os.W_OK) else tempfile.gettempdir()

    def _borrow(self) -> _Connection:
        with self._lock:
            if self._closed:
                raise ClickHouseError("Code: 1002. DB::Exception: the local chDB service is stopping")
            if self._idle:
                return self._idle.pop()
        return _Connection(self.path)

    def _give_back(self, conn: _Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def run(self, call: Call) -> Reply:
        conn = self._borrow()
        try:
            conn.prepare(call.database, call.settings)
            if call.data is not None:
                return self._insert(conn, call)
            fmt = _TRAILING_FORMAT.search(call.sql)
            if fmt or call.default_format not in ("TabSeparated", "TSV"):
                result = conn.query(call.sql, call.default_format, call.params)
                body = result.bytes() or b""
                out = fmt.group(1) if fmt else call.default_format if body else None
                return Reply(body, out, _summary(result, False))
            # A statement with a result prints at least its names line; DDL, INSERT ... SELECT
            # and the like print nothing. Clients tell the two apart by X-ClickHouse-Format.
            result = conn.query(call.sql, "TabSeparatedWithNames", call.params)
            body = result.bytes() or b""
            if not body:
                return Reply(b"", None, _summary(result, call.sql.lstrip()[:6].upper() == "INSERT"))
            return Reply(body.partition(b"\n")[2], "TabSeparated", _summary(result, False))
        finally:
            self._give_back(conn)

    def _insert(self, conn: _Connection, call: Call) -> Reply:
        """`INSERT ... FORMAT F` with the request body as its data, read through INFILE
        (about twice as fast as inlining the data in the query text)."""
        fd, spool = tempfile.mkstemp(prefix="chdb-insert-", suffix=".data", dir=self.spool_dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(call.data or b"")
            m = _TRAILING_FORMAT.search(call.sql)
            assert m, "parse_call only sets data for INSERT ... FORMAT F"
            sql = f"{call.sql[: m.start()]} FROM INFILE {_quote(spool)} {call.sql[m.start() :]}"
            return Reply(b"", None, _summary(conn.query(sql, "TabSeparated", call.params), True))
        finally:
            os.unlink(spool)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
