"""Ctrl-C during the test suite stops it, even inside an in-process CLI test (it was once swallowed).

The real check (``tests/interrupt_inner.py``) sends SIGINT to its own process, so it runs in a
fresh pytest process: after Ray and other native libraries ran in the suite's process, a SIGINT
there can crash it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

INNER = Path(__file__).with_name("interrupt_inner.py")


def test_ctrl_c_inside_cli_runner_reaches_pytest_in_a_fresh_process() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(INNER)],
        capture_output=True, text=True, timeout=180, env={**os.environ}, cwd=INNER.parents[1],
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "1 passed" in run.stdout
