"""SQLite history of every generation: one row per run, searchable, exportable, re-runnable.

The database is ``Settings.home / "history.db"`` in WAL mode with a busy timeout, so several
processes (two CLI runs, CLI and server) write at once without "database is locked". A run
adds a ``running`` row when it starts and completes it (done / failed / cancelled) when it
ends, in one transaction; a ``running`` row whose process is gone is marked ``interrupted``.
Rows only name image files that were fully written (PNGs are saved atomically first).
The schema is versioned: ``MIGRATIONS`` holds forward-only steps, one per version.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import socket
import sqlite3
import sys
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gambarkan.errors import CancelledError, GambarkanError

log = logging.getLogger("gambarkan.history")

DB_NAME = "history.db"
BUSY_TIMEOUT_S = 30.0
STATUSES = ("running", "done", "failed", "cancelled", "interrupted")
STALE_AFTER_S = 24 * 3600  # a "running" row from another machine older than this is interrupted
EXPORT_FORMATS = ("jsonl", "csv")

# Step N (1-based) brings the schema from version N-1 to N. Never edit a released step;
# append a new one.
MIGRATIONS: list[tuple[str, ...]] = [
    (  # 1: the first schema
        """CREATE TABLE generations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            error TEXT,
            request TEXT NOT NULL,
            original_prompt TEXT NOT NULL DEFAULT '',
            prompt TEXT NOT NULL DEFAULT '',
            original_negative_prompt TEXT NOT NULL DEFAULT '',
            negative_prompt TEXT NOT NULL DEFAULT '',
            translator TEXT,
            model TEXT,
            model_hash TEXT,
            preset TEXT,
            sampler TEXT,
            steps INTEGER,
            cfg REAL,
            width INTEGER,
            height INTEGER,
            clip_skip INTEGER,
            seed INTEGER,
            seeds TEXT NOT NULL DEFAULT '[]',
            paths TEXT NOT NULL DEFAULT '[]',
            timings TEXT NOT NULL DEFAULT '{}',
            out_dir TEXT,
            pid INTEGER,
            host TEXT
        )""",
        "CREATE INDEX generations_status ON generations(status)",
    ),
    (  # 2: which surface made the run; process start time so a reused pid is not taken as alive
        "ALTER TABLE generations ADD COLUMN surface TEXT",
        "ALTER TABLE generations ADD COLUMN pid_started REAL",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)

COLUMNS = (
    "id", "created_at", "finished_at", "status", "error", "surface", "original_prompt", "prompt",
    "original_negative_prompt", "negative_prompt", "translator", "model", "model_hash", "preset",
    "sampler", "steps", "cfg", "width", "height", "clip_skip", "seed", "seeds", "paths", "timings",
    "request", "out_dir", "pid", "host",
)  # fmt: skip
_JSON_COLUMNS = {"seeds": [], "paths": [], "timings": {}, "request": {}}


class HistoryError(GambarkanError):
    """The history database cannot be opened or written."""

    http_status = 409
    code = "history_unavailable"


class HistoryNotFoundError(HistoryError):
    """No history row has the requested id."""

    http_status = 404
    code = "not_found"


def pause_point(name: str) -> None:
    """Test hook: with ``GAMBARKAN_TEST_PAUSE_AT=name`` print a marker on stderr and sleep.

    Crash-safety tests SIGKILL the process while it sleeps here. Points: ``sample`` (first
    denoising step), ``write`` (after the first PNG of a run is saved), ``history`` (inside
    the transaction that completes the row, before COMMIT); ``write:N`` stops after the Nth PNG.
    Unset in normal use: a no-op.
    """
    wanted, _, nth = os.environ.get("GAMBARKAN_TEST_PAUSE_AT", "").partition(":")  # "write:3" = the 3rd time
    if wanted == name:
        _PAUSE_HITS[name] = _PAUSE_HITS.get(name, 0) + 1
        if _PAUSE_HITS[name] == int(nth or 1):
            sys.stderr.write(f"gambarkan-test-paused-at {name}\n")
            sys.stderr.flush()
            time.sleep(120)


_PAUSE_HITS: dict[str, int] = {}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _process_started(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _process_alive(pid: int, started: float | None) -> bool:
    """True if ``pid`` still runs and is the same process (start time matches)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _error_text(error: BaseException) -> str:
    if isinstance(error, GambarkanError):
        return str(error)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted by the user"
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _status_of(error: BaseException | None) -> str:
    if error is None:
        return "done"
    if isinstance(error, (CancelledError, KeyboardInterrupt)):
        return "cancelled"
    return "failed"


def migrate(conn: sqlite3.Connection, target: int | None = None) -> int:
    """Bring the schema up to ``target`` (default: latest) with the forward-only steps; returns it.

    Steps run in one write transaction, so two processes opening a new database at once
    apply them exactly once.
    """
    target = SCHEMA_VERSION if target is None else target
    current = schema_version(conn)
    if current == target:
        return current
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        current = schema_version(conn)
        if current > SCHEMA_VERSION:
            raise HistoryError(
                f"the history database was made by a newer gambarkan (schema {current}, this version knows {SCHEMA_VERSION})",
                "upgrade gambarkan, or move history.db away to start a new history",
            )
        for version in range(current + 1, target + 1):
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, _now()))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return max(current, target)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version of an open database (0 for a new one)."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if not exists:
        return 0
    return conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]


def connect(path: Path | str) -> sqlite3.Connection:
    """An autocommit connection in WAL mode with a busy timeout (schema not touched)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise HistoryError(
            f"cannot open the history database {path}: {exc}", "check that the folder is writable"
        ) from None
    conn.row_factory = sqlite3.Row
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        # Switching to WAL needs a moment alone with the file; retry while another process has it.
        for attempt in range(50):
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                time.sleep(0.05 * (attempt + 1))
        conn.execute("PRAGMA synchronous = NORMAL")  # safe in WAL: a killed process loses nothing committed
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise database_error(path, exc) from None
    return conn


def _read_only(exc: sqlite3.Error) -> bool:
    """SQLite refused a write because the file, its folder or the disk is read-only."""
    return getattr(exc, "sqlite_errorname", "") == "SQLITE_READONLY" or "readonly" in str(exc).replace("-", "").replace(" ", "")


def database_error(path: Path, exc: sqlite3.Error) -> HistoryError:
    """The true reason a history database could not be used: read-only, or damaged."""
    if _read_only(exc):
        return HistoryError(
            f"the history database {path} is read-only ({exc})",
            "make it and its folder writable, or set GAMBARKAN_HOME to a folder you can write to",
        )
    return HistoryError(
        f"the history database {path} is damaged or not a database ({exc})", "move it away and gambarkan starts a new one"
    )


class History:
    """The generation history in one SQLite file; open per use (cheap) and close, or use ``with``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.conn = connect(self.path)
        try:
            migrate(self.conn)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise database_error(self.path, exc) from None
        except BaseException:
            self.conn.close()
            raise

    @classmethod
    def open(cls, settings: Any = None) -> History:
        """The history of ``settings`` (default: from the environment): ``home/history.db``."""
        if settings is None:
            from gambarkan.config import Settings

            settings = Settings.from_env()
        return cls(Path(settings.home) / DB_NAME)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> History:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def start(self, request: Any, *, surface: str | None = None, out_dir: Path | str | None = None) -> int:
        """Add a ``running`` row for ``request`` made by this process; returns its id."""
        pid = os.getpid()
        cur = self.conn.execute(
            "INSERT INTO generations (created_at, status, request, original_prompt, original_negative_prompt, model, preset,"
            " sampler, steps, cfg, width, height, clip_skip, seed, out_dir, pid, pid_started, host, surface)"
            " VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _now(), json.dumps(request.model_dump(), ensure_ascii=False), request.prompt, request.negative_prompt,
                request.model, request.preset, request.sampler, request.steps, request.cfg, request.width, request.height,
                request.clip_skip, request.seed if request.seed >= 0 else None, str(out_dir) if out_dir else None,
                pid, _process_started(pid), socket.gethostname(), surface,
            ),
        )  # fmt: skip
        return int(cur.lastrowid)

    def finish(self, row_id: int, result: Any = None, error: BaseException | None = None) -> None:
        """Complete row ``row_id`` with ``result`` (done) or ``error`` (failed / cancelled)."""
        values: dict[str, Any] = {
            "finished_at": _now(),
            "status": _status_of(error),
            "error": _error_text(error) if error else None,
        }
        if result is not None:
            values.update(
                original_prompt=result.original_prompt, prompt=result.prompt, original_negative_prompt=result.original_negative_prompt,
                negative_prompt=result.negative_prompt, translator=result.translator, model=result.model,
                model_hash=result.model_hash, preset=result.preset, sampler=result.sampler, steps=result.steps, cfg=result.cfg,
                width=result.width, height=result.height, clip_skip=result.clip_skip, seed=result.seed,
                seeds=json.dumps(result.seeds), paths=json.dumps([str(p) for p in result.paths if p]),
                timings=json.dumps({k: round(v, 4) for k, v in result.timings.items()}),
            )  # fmt: skip
        assignments = ", ".join(f"{name} = ?" for name in values)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(f"UPDATE generations SET {assignments} WHERE id = ?", (*values.values(), row_id))
            pause_point("history")
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def add_image(self, row_id: int, path: Path | str, seed: int) -> None:
        """Name one finished image in a ``running`` row, so it is listed even if the process dies next."""
        self.conn.execute(
            "UPDATE generations SET paths = json_insert(paths, '$[#]', ?), seeds = json_insert(seeds, '$[#]', ?)"
            " WHERE id = ? AND status = 'running'",
            (str(path), int(seed), row_id),
        )

    def interrupted_runs(self, request: Any) -> list[dict[str, Any]]:
        """Interrupted rows of exactly ``request``, newest first (a batch re-run adopts their images)."""
        rows = self.conn.execute(
            "SELECT * FROM generations WHERE status = 'interrupted' AND request = ? ORDER BY id DESC",
            (json.dumps(request.model_dump(), ensure_ascii=False),),
        ).fetchall()
        return [_decode(row) for row in rows]

    def mark_done(self, row_id: int) -> None:
        """An interrupted row whose images were all saved is done after all (batch adoption)."""
        self.conn.execute(
            "UPDATE generations SET status = 'done', error = NULL, finished_at = ?,"
            " seed = COALESCE(seed, json_extract(seeds, '$[0]')) WHERE id = ? AND status = 'interrupted'",
            (_now(), row_id),
        )

    def reap(self) -> int:
        """Mark ``running`` rows whose process is gone ``interrupted``; returns how many.

        On this machine the pid (and its start time) is checked and the run's leftover
        temporary image files (``.gambarkan-<pid>-*.tmp``) are removed. Rows from another
        machine (a shared or synced home, a new Colab VM) are taken as gone after a day.
        """
        host = socket.gethostname()
        stale = datetime.fromtimestamp(time.time() - STALE_AFTER_S, timezone.utc).isoformat(timespec="seconds")
        rows = self.conn.execute(
            "SELECT id, pid, pid_started, out_dir, host, created_at FROM generations WHERE status = 'running'"
        ).fetchall()
        reaped = 0
        for row in rows:
            if row["host"] == host:
                if row["pid"] is None or _process_alive(row["pid"], row["pid_started"]):
                    continue
            elif row["created_at"] > stale:
                continue
            cur = self.conn.execute(
                "UPDATE generations SET status = 'interrupted', error = ? WHERE id = ? AND status = 'running'",
                (
                    f"interrupted: the process (pid {row['pid']} on {row['host']}) stopped before the run finished",
                    row["id"],
                ),
            )
            reaped += cur.rowcount
            if row["out_dir"] and row["host"] == host:
                for leftover in Path(row["out_dir"]).glob(f".gambarkan-{row['pid']}-*.tmp"):
                    leftover.unlink(missing_ok=True)
        return reaped

    def delete(self, row_ids: Iterable[int], files: bool = False) -> list[Path]:
        """Delete rows (and with ``files`` their images); returns the files removed.

        Rows go first so a crash in between leaves a stray file, never a row naming a missing one.
        """
        records = [self.get(row_id) for row_id in row_ids]
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.executemany("DELETE FROM generations WHERE id = ?", [(r["id"],) for r in records])
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        removed: list[Path] = []
        if files:
            for record in records:
                for name in record["paths"]:
                    path = Path(name)
                    if path.is_file():
                        path.unlink()
                        removed.append(path)
        return removed

    # -- reading ---------------------------------------------------------------------------

    def get(self, row_id: int) -> dict[str, Any]:
        """One row as a dict (JSON columns decoded); HistoryNotFoundError if there is none."""
        self.reap()
        row = self.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM generations WHERE id = ?", (row_id,)).fetchone()
        if row is None:
            raise HistoryNotFoundError(f"no history entry with id {row_id}", "see the ids with: gambarkan history")
        return _decode(row)

    def search(
        self, text: str | None = None, limit: int | None = 20, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Rows newest first; every word of ``text`` must appear in the original or English prompt."""
        self.reap()
        where: list[str] = []
        params: list[Any] = []
        for word in (text or "").split():
            pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(original_prompt LIKE ? ESCAPE '\\' OR prompt LIKE ? ESCAPE '\\')")
            params += [pattern, pattern]
        if status:
            where.append("status = ?")
            params.append(status)
        sql = f"SELECT {', '.join(COLUMNS)} FROM generations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None and limit > 0:
            sql += f" LIMIT {int(limit)}"
        return [_decode(row) for row in self.conn.execute(sql, params)]

    def export(self, fmt: str = "jsonl", text: str | None = None, limit: int | None = None) -> str:
        """The rows (newest first) as JSON Lines or CSV text."""
        return format_records(self.search(text, limit), fmt)


def format_records(records: list[dict[str, Any]], fmt: str = "jsonl") -> str:
    """Rows as JSON Lines (one object a line) or CSV (a header, list/dict columns as JSON)."""
    if fmt not in EXPORT_FORMATS:
        from gambarkan.errors import InvalidRequestError

        raise InvalidRequestError(f"unknown export format '{fmt}'", f"use one of: {', '.join(EXPORT_FORMATS)}")
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: json.dumps(v, ensure_ascii=False) if k in _JSON_COLUMNS else v for k, v in record.items()})
    return buffer.getvalue()


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    for name, empty in _JSON_COLUMNS.items():
        try:
            record[name] = json.loads(record[name]) if record[name] else empty
        except json.JSONDecodeError:
            record[name] = empty
    return record


def rerun_fields(record: dict[str, Any]) -> dict[str, Any]:
    """GenerationRequest fields that make the run ``record`` again: its request with the seed used."""
    from gambarkan.request import GenerationRequest

    fields = {k: v for k, v in record["request"].items() if k in GenerationRequest.model_fields}
    if record.get("seed") is not None:
        fields["seed"] = record["seed"]
    return fields


# -- the engine's hooks: history trouble never costs the user an image ------------------------


def record_start(settings: Any, request: Any, *, surface: str | None = None, out_dir: Path | None = None) -> int | None:
    """Add a ``running`` row for ``request``; returns its id, or None (with a warning) on failure."""
    try:
        with History.open(settings) as history:
            history.reap()
            return history.start(request, surface=surface, out_dir=out_dir)
    except (GambarkanError, sqlite3.Error, OSError) as exc:
        log.warning("gambarkan: warning: not saved in the history: %s", exc)
        return None


def record_image(settings: Any, row_id: int | None, path: Path | str | None, seed: int) -> None:
    """Add one saved image to the run's row right away (a crash later does not lose it)."""
    if row_id is None or path is None:
        return
    try:
        with History.open(settings) as history:
            history.add_image(row_id, path, seed)
    except (GambarkanError, sqlite3.Error, OSError) as exc:
        log.warning("gambarkan: warning: not saved in the history: %s", exc)


def record_finish(
    settings: Any,
    row_id: int | None,
    request: Any,
    result: Any = None,
    error: BaseException | None = None,
    *,
    surface: str | None = None,
) -> None:
    """Complete row ``row_id`` (or add a whole row when the start was not recorded)."""
    try:
        with History.open(settings) as history:
            if row_id is None:
                row_id = history.start(request, surface=surface)
            history.finish(row_id, result, error)
    except (GambarkanError, sqlite3.Error, OSError) as exc:
        log.warning("gambarkan: warning: not saved in the history: %s", exc)
