"""The durable side of the job queue: one SQLite table, ``Settings.home / "jobs.db"``.

A job is written (``synchronous = FULL``) before the server answers the request that made it,
marked ``running`` with one more attempt before the engine sees it, and given its final state
(done with its result summary, failed or cancelled with its error) when it ends. When a server
starts, it claims the ``queued`` and ``running`` rows whose server process is gone and runs them
again, in their original order; a row that already used every attempt (its run killed the
server each time) ends ``failed`` instead. Finished rows answer ``GET /api/jobs/{id}`` after a
restart. The connection comes from the history module (WAL, busy timeout), so several servers
may share one home: each only claims rows whose owner is dead.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gambarkan.errors import GambarkanError

log = logging.getLogger("gambarkan.server")

DB_NAME = "jobs.db"
KEEP_FINISHED = 5000  # finished rows kept for GET /api/jobs/{id}; older ones are pruned at start

_SCHEMA = """CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    preview_every INTEGER NOT NULL DEFAULT 0,
    request TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    images_total INTEGER NOT NULL DEFAULT 0,
    images_done INTEGER NOT NULL DEFAULT 0,
    steps INTEGER NOT NULL DEFAULT 0,
    summary TEXT,
    error TEXT,
    pid INTEGER,
    pid_started REAL
)"""


class JobStoreError(GambarkanError):
    """The job database cannot be written, so a job cannot be accepted durably."""

    http_status = 503
    code = "queue_unavailable"


class StoredError(GambarkanError):
    """An error read back from the job database: answers with the JSON it was saved as."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(str(data.get("message") or "the job failed"), None)
        self.data = data
        self.code = str(data.get("code") or "internal_error")
        self.params = dict(data.get("params") or {})
        self.http_status = int(data.get("status") or 500)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


@dataclass
class StoredJob:
    """One row: what is needed to run the job again or to show how it ended."""

    id: str
    source: str
    preview_every: int
    request: dict[str, Any]
    status: str
    attempts: int
    created: float
    started: float | None
    finished: float | None
    images_total: int
    images_done: int
    steps: int
    summary: dict[str, Any] | None
    error: dict[str, Any] | None


def _loads(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _row(row: sqlite3.Row) -> StoredJob:
    return StoredJob(
        id=row["id"],
        source=row["source"],
        preview_every=row["preview_every"],
        request=_loads(row["request"]) or {},
        status=row["status"],
        attempts=row["attempts"],
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
        images_total=row["images_total"],
        images_done=row["images_done"],
        steps=row["steps"],
        summary=_loads(row["summary"]),
        error=_loads(row["error"]),
    )


class JobStore:
    """The ``jobs`` table of one server home; thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path | str) -> None:
        from gambarkan.outputs.history import HistoryError, _process_started, connect

        self.path = Path(path)
        try:
            self.conn = connect(self.path)
        except HistoryError as exc:
            raise JobStoreError(f"cannot open the job database {self.path}", exc.hint) from None
        try:
            # Accepting a job is a promise: commit it to the disk, not only to the OS.
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute(_SCHEMA)
            self.conn.execute("CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status)")
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise JobStoreError(
                f"the job database {self.path} is damaged ({exc})", "move it away; the server starts a new one"
            ) from None
        self.pid = os.getpid()
        self.pid_started = _process_started(self.pid)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._lock:
            return self.conn.execute(sql, params).rowcount

    # -- writing ---------------------------------------------------------------------------
    def add(self, job: Any) -> None:
        """Record a newly accepted job (``queued``); JobStoreError (503) if it cannot be written."""
        try:
            self._write(
                "INSERT INTO jobs (id, source, preview_every, request, status, attempts, created, pid, pid_started)"
                " VALUES (?, ?, ?, ?, 'queued', 0, ?, ?, ?)",
                (
                    job.id, job.source, job.preview_every, json.dumps(job.request.model_dump(mode="json", context={"pixels": True}), ensure_ascii=False),
                    job.created, self.pid, self.pid_started,
                ),
            )  # fmt: skip
        except sqlite3.Error as exc:
            raise JobStoreError(
                f"cannot record the job ({exc})", "check that the server's home folder is writable"
            ) from None

    def mark_running(self, job: Any) -> None:
        """The job leaves the queue: one more attempt, committed before the engine runs it."""
        self._safe(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, started = ? WHERE id = ?",
            (job.started, job.id),
        )

    def finish(self, job: Any) -> None:
        """Record how the job ended: status, result summary (no pixels) or error."""
        self._safe(
            "UPDATE jobs SET status = ?, finished = ?, images_total = ?, images_done = ?, steps = ?, summary = ?, error = ?"
            " WHERE id = ?",
            (
                job.status, job.finished, job.images_total, job.images_done, job.steps,
                json.dumps(job.summary, ensure_ascii=False) if job.summary is not None else None,
                json.dumps(job.error.to_dict(), ensure_ascii=False) if job.error is not None else None, job.id,
            ),
        )  # fmt: skip

    def _safe(self, sql: str, params: tuple[Any, ...]) -> None:
        try:
            self._write(sql, params)
        except sqlite3.Error as exc:  # the job itself goes on; only its durable record lags
            log.warning("gambarkan: warning: job database not updated: %s", exc)

    # -- reading ---------------------------------------------------------------------------
    def get(self, job_id: str) -> StoredJob | None:
        """The row of ``job_id``, or None."""
        with self._lock:
            row = self.conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row(row) if row is not None else None

    def claim_orphans(self, max_attempts: int) -> tuple[list[StoredJob], list[StoredJob]]:
        """Take over unfinished rows whose server is gone; returns (to run again, given up).

        Rows that used ``max_attempts`` attempts are marked ``failed`` here. In one write
        transaction, so two servers starting on one home never both take a row.
        """
        from gambarkan.outputs.history import _process_alive

        again: list[StoredJob] = []
        given_up: list[StoredJob] = []
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                rows = self.conn.execute(
                    "SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY seq"
                ).fetchall()
                for row in rows:
                    if row["pid"] == self.pid or (
                        row["pid"] is not None and _process_alive(row["pid"], row["pid_started"])
                    ):
                        continue  # ours already, or another live server's
                    job = _row(row)
                    if job.attempts >= max_attempts:
                        job.status, job.finished = "failed", time.time()
                        job.error = {
                            "code": "job_crashed",
                            "message": f"the job stopped the server {job.attempts} times and is not run again"
                            " (change the request, or see the server log)",
                            "hint": "change the request, or see the server log",
                            "status": 500,
                        }
                        self.conn.execute(
                            "UPDATE jobs SET status = 'failed', finished = ?, error = ?, pid = ?, pid_started = ? WHERE id = ?",
                            (job.finished, json.dumps(job.error), self.pid, self.pid_started, job.id),
                        )
                        given_up.append(job)
                    else:
                        job.status = "queued"
                        self.conn.execute(
                            "UPDATE jobs SET status = 'queued', pid = ?, pid_started = ? WHERE id = ?",
                            (self.pid, self.pid_started, job.id),
                        )
                        again.append(job)
                self.conn.execute(
                    "DELETE FROM jobs WHERE status NOT IN ('queued', 'running') AND seq <= "
                    "(SELECT seq FROM jobs WHERE status NOT IN ('queued', 'running') ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                    (KEEP_FINISHED,),
                )
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        return again, given_up
