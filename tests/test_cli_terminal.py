"""What a person sees on a terminal: a step line while the model loads, ids never cut at 80 columns."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")


def on_a_terminal(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal (stdout piped); return its exit code and stderr."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "gambarkan", *args], stdin=follower, stdout=subprocess.PIPE, stderr=follower,
                            env={**os.environ, **env})
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=240), b"".join(chunks).decode("utf-8", "replace")


def test_generate_says_it_is_loading_the_model_in_the_clis_language(tiny_sd15_dir: Path, tmp_path: Path) -> None:
    args = ("generate", "kucing", "-m", str(tiny_sd15_dir), "--steps", "2", "-W", "64", "-H", "64", "-o", str(tmp_path))
    code, shown = on_a_terminal(*args, env={"GAMBARKAN_LANG": "id", "OMP_NUM_THREADS": "1"})
    assert code == 0, shown
    assert "Memuat model…" in shown and "2/2" in shown


def test_models_list_never_cuts_a_name_at_80_columns(cli) -> None:
    from gambarkan.models.catalog import builtin_packages

    listing = cli("models", "list", env={"COLUMNS": "80"})
    assert listing.returncode == 0, listing.stderr
    first_column = {line.split("│")[1].strip().removesuffix(" *") for line in listing.stdout.splitlines() if line.startswith("│")}
    assert set(builtin_packages()) <= first_column, listing.stdout
    assert all(len(line) <= 80 for line in listing.stdout.splitlines())
