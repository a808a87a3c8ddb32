"""Shared fixtures: tiny models saved to disk once per session, an isolated GAMBARKAN_HOME per test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
