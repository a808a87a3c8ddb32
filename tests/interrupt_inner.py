"""Run by tests/test_cli_interrupt.py in a fresh pytest process: Ctrl-C inside an in-process CLI test stops pytest."""

from __future__ import annotations

import os
import signal
import threading
import time

import click
import pytest
from click.testing import CliRunner

from gambarkan.cli.common import handle_errors


@click.command()
@handle_errors
def waits() -> None:
    time.sleep(10)


def test_ctrl_c_inside_cli_runner_reaches_pytest(ctrl_c_stops_in_process_cli: threading.Event) -> None:
    def on_sigint(signum: int, frame: object) -> None:  # the conftest handler, as the session installed it
        ctrl_c_stops_in_process_cli.set()
        raise KeyboardInterrupt

    # Libraries used earlier in the session (Ray's core, uvicorn) may have put their own handler
    # in place; this test is about CliRunner passing the interrupt on, so it starts from ours.
    previous = signal.signal(signal.SIGINT, on_sigint)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            CliRunner().invoke(waits, [])
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - started < 5  # stopped at once, not after the command's 10 s
    ctrl_c_stops_in_process_cli.clear()  # the run goes on: this Ctrl-C was the test's own
