"""Tiny FLUX and Lightning-style SDXL folders, written once per session through the user-facing command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_flux_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m gambarkan.testing tiny-model DIR --arch flux``: the command users and docs name."""
    target = tmp_path_factory.mktemp("models") / "tiny-flux"
    done = subprocess.run([sys.executable, "-m", "gambarkan.testing", "tiny-model", str(target), "--arch", "flux"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(target)
    return target


@pytest.fixture(scope="session")
def tiny_lightning_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gambarkan.testing import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-lightning", "lightning")
