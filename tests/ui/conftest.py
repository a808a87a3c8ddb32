"""Fixtures for the web UI tests: tiny-model packages and a running UI server."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="the web UI tests need the ui extra: pip install 'gambarkan[ui]'")

TINY_PACKAGES = ("umum", "anime", "cepat")


def tiny_settings(tiny_dir: Path):
    """Settings of the isolated home where the packages above are the tiny model at 64x64, 2 steps."""
    from gambarkan.config import Settings
    from gambarkan.models.catalog import add_user_package

    settings = Settings.from_env()
    for name in TINY_PACKAGES:
        add_user_package(settings, name, str(tiny_dir), width=64, height=64, steps=2)
    return settings


@pytest.fixture
def ui_settings(tiny_sd15_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GAMBARKAN_TRANSLATOR", "glossary")
    monkeypatch.setenv("GAMBARKAN_OFFLINE", "1")
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    return tiny_settings(tiny_sd15_dir)
