"""The batch manifest: an append-only JSONL file next to a batch's outputs, one line per finished row.

Each line is written with one ``write`` on a file opened for appending and fsynced before
the next row starts, so a kill at any moment leaves every earlier line whole; a line cut by
the kill (no newline at the end) is ignored when read and closed off before the next append.
The last line for a row key wins, so a failed row redone later reads as done.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gambarkan.outputs.png import _fsync_dir, _storage_error

MANIFEST_NAME = "batch-manifest.jsonl"


class Manifest:
    """Read and append the manifest at ``path``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @classmethod
    def in_folder(cls, folder: Path | str) -> Manifest:
        return cls(Path(folder) / MANIFEST_NAME)

    def entries(self) -> list[dict[str, Any]]:
        """Every whole line, in order (a torn last line is skipped)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise _storage_error(exc, self.path.parent) from None
        out: list[dict[str, Any]] = []
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue  # cut by a kill mid-write: that row counts as not done
            if isinstance(entry, dict) and "key" in entry:
                out.append(entry)
        return out

    def latest(self) -> dict[str, dict[str, Any]]:
        """key -> the last entry written for it."""
        return {entry["key"]: entry for entry in self.entries()}

    def done(self) -> dict[str, dict[str, Any]]:
        """key -> entry of rows that finished and whose images are all still on disk."""
        return {key: e for key, e in self.latest().items() if e.get("status") == "done" and all(Path(p).is_file() for p in e.get("images", []))}

    def append(self, entry: dict[str, Any]) -> None:
        """Add one line (with ``finished_at``), fsynced; a full disk is one DiskFullError."""
        entry = {**entry, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        line = json.dumps(entry, ensure_ascii=False, default=str).encode("utf-8") + b"\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if not new and _ends_without_newline(self.path):
                    line = b"\n" + line  # close off a line torn by an earlier kill
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            if new:
                _fsync_dir(self.path.parent)
        except OSError as exc:
            raise _storage_error(exc, self.path.parent) from None


def _ends_without_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"
