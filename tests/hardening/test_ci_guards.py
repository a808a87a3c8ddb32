"""CI cannot pass by skipping: with ``CI=true`` a missing browser fails the browser test (issue 17)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_missing_chromium_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("playwright")
    browser = importlib.import_module("tests.ui.test_browser")
    def outcome(in_ci: bool) -> BaseException | None:
        """What ``missing`` raises (caught here, so a skip cannot turn this test into a skip)."""
        monkeypatch.setattr(browser, "IN_CI", in_ci)
        try:
            browser.missing("no chromium at /usr/bin/chromium")
        except BaseException as exc:  # noqa: BLE001 - pytest's outcomes are BaseExceptions
            return exc
        return None

    in_ci = outcome(True)
    assert type(in_ci) is pytest.fail.Exception and "CI=true" in str(in_ci), repr(in_ci)
    assert type(outcome(False)) is pytest.skip.Exception
    assert "missing(f\"no chromium at" in Path(browser.__file__).read_text(encoding="utf-8")  # the page fixture uses it


def test_ci_script_does_not_swallow_a_failed_browser_install():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "export CI=true" in script
    assert "browser test will be skipped" not in script and "exit 1" in script
