"""Shared fixtures: tiny models saved to disk once per session, an isolated GAMBARKAN_HOME per test."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


_SIGINT_SEEN = threading.Event()


def _on_sigint(signum: int, frame: object) -> None:
    _SIGINT_SEEN.set()
    raise KeyboardInterrupt


@pytest.fixture(autouse=True, scope="session")
def ctrl_c_stops_in_process_cli():
    """Ctrl-C during an in-process CLI test stops pytest.

    The CLI turns Ctrl-C into "interrupted" and exit 130 (and click's CliRunner keeps the exit),
    so the test run would go on; a Ctrl-C seen during ``CliRunner.invoke`` is raised again after it.
    """
    from click.testing import CliRunner

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_sigint)
    original = CliRunner.invoke

    def invoke(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if _SIGINT_SEEN.is_set():
            raise KeyboardInterrupt
        return result

    CliRunner.invoke = invoke
    try:
        yield _SIGINT_SEEN
    finally:
        CliRunner.invoke = original
        signal.signal(signal.SIGINT, previous)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own GAMBARKAN_HOME so history, outputs and configs never leak."""
    home = tmp_path / "gambarkan-home"
    monkeypatch.setenv("GAMBARKAN_HOME", str(home))
    monkeypatch.delenv("GAMBARKAN_OUTPUT_DIR", raising=False)
    monkeypatch.delenv("GAMBARKAN_MODEL", raising=False)
    monkeypatch.setenv("GAMBARKAN_LANG", "en")  # CLI messages in English whatever the machine's locale
    return home


@pytest.fixture(scope="session")
def tiny_sd15_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SD 1.x diffusers folder on disk (random weights)."""
    from gambarkan.testing import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-sd15", "sd15")


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SDXL diffusers folder on disk (random weights)."""
    from gambarkan.testing import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-sdxl", "sdxl")


@pytest.fixture
def engine():
    """A fresh Engine reading the isolated settings."""
    from gambarkan.engine.generate import Engine

    return Engine()


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 240):
    """Run the real ``gambarkan`` CLI in a subprocess; returns CompletedProcess (text)."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "gambarkan", *args], capture_output=True, text=True, env=full_env, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def tiny_controlnet_dir(tiny_sd15_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random ControlNet matching the tiny SD 1.x model, as a diffusers folder."""
    from gambarkan.testing import save_tiny_controlnet

    return save_tiny_controlnet(tmp_path_factory.mktemp("models") / "tiny-controlnet", tiny_sd15_dir)


@pytest.fixture(scope="session")
def tiny_ip_adapter_dir(tiny_sd15_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random IP-Adapter (weights + image encoder) matching the tiny SD 1.x model."""
    from gambarkan.testing import save_tiny_ip_adapter

    return save_tiny_ip_adapter(tmp_path_factory.mktemp("models") / "tiny-ip-adapter", tiny_sd15_dir)
