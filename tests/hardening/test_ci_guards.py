"""CI cannot pass by skipping: with ``CI=true`` a missing browser fails the browser test (issue 17)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_missing_chromium_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("playwright")
    browser = importlib.import_module("tests.ui.test_browser")
    monkeypatch.setattr(browser, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        browser.missing("no chromium at /usr/bin/chromium")
    monkeypatch.setattr(browser, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception):
        browser.missing("no chromium at /usr/bin/chromium")
    assert "missing(f\"no chromium at" in Path(browser.__file__).read_text(encoding="utf-8")  # the page fixture uses it


def test_ci_script_does_not_swallow_a_failed_browser_install():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "export CI=true" in script
    assert "browser test will be skipped" not in script and "exit 1" in script
