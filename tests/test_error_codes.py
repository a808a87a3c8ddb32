"""Every error code has an English and an Indonesian text, and each surface renders it in its language."""

from __future__ import annotations

import importlib
import pkgutil
import re
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

import gambarkan
from gambarkan import errors, i18n
from gambarkan.errors import GambarkanError, InvalidRequestError

SRC = Path(gambarkan.__file__).parent


def _placeholders(text: str | None) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text or "") if name}


def _subclasses(cls: type[GambarkanError]) -> Iterator[type[GambarkanError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _all_error_classes() -> list[type[GambarkanError]]:
    for module in pkgutil.walk_packages(gambarkan.__path__, "gambarkan."):
        importlib.import_module(module.name)  # every module, so every error class is known
    return [GambarkanError, *_subclasses(GambarkanError)]


def _codes_in_source() -> set[str]:
    """Every ``code="..."`` given at a raise site in the package."""
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        found |= set(re.findall(r'\bcode="([a-z0-9_]+)"', path.read_text(encoding="utf-8")))
    return found


def test_every_error_class_has_a_sentence_for_its_kind_in_both_languages() -> None:
    kinds = {cls.code for cls in _all_error_classes()}
    missing = sorted(kind for kind in kinds if kind not in i18n.KINDS)
    assert not missing, f"no kind sentence for: {missing}"
    for kind, entry in i18n.KINDS.items():
        assert set(entry) == {"id", "en"} and entry["id"] != entry["en"], kind


def test_every_code_has_an_english_and_an_indonesian_text_with_the_same_placeholders() -> None:
    kinds = {cls.code for cls in _all_error_classes()}
    assert not set(errors.MESSAGES) & kinds, "a specific code must not reuse a class code (old errors carry those)"
    for code, (message, hint) in errors.MESSAGES.items():
        assert code in i18n.ID, f"no Indonesian text for {code}"
        id_message, id_hint = i18n.ID[code]
        assert _placeholders(message) == _placeholders(id_message), code
        assert _placeholders(hint) == _placeholders(id_hint), code
        assert (hint is None) == (id_hint is None), code
    assert set(i18n.ID) == set(errors.MESSAGES) | errors.EXPLICIT_CODES, "Indonesian texts without an English one"
    used = _codes_in_source() - kinds - {"internal_error", "job_not_restored", "server_restarted", "job_crashed"}
    missing = sorted(code for code in used if code not in i18n.ID)
    assert not missing, f"codes raised without an Indonesian text: {missing}"
    unset = sorted(code for code in used if code not in errors.MESSAGES and code not in errors.EXPLICIT_CODES)
    assert not unset, f"codes raised without an English text: {unset}"


def test_every_template_fills_from_its_params_in_both_languages() -> None:
    for code in errors.MESSAGES:
        names = _placeholders(" ".join(filter(None, errors.MESSAGES[code]))) - {"did_you_mean"}
        params = {name: f"<{name}>" for name in names}
        error = InvalidRequestError(code=code, params=params)
        for lang in ("id", "en"):
            line = i18n.render(error, lang)
            assert "{" not in line and "}" not in line, (code, lang, line)
            assert all(f"<{name}>" in line for name in names if name != "field"), (code, lang, line)


def test_a_request_error_reads_in_each_surfaces_language() -> None:
    from gambarkan.request import GenerationRequest

    with pytest.raises(InvalidRequestError) as caught:
        GenerationRequest(prompt="x", width=70)
    error = caught.value
    assert (error.code, error.kind, error.params) == ("size_not_multiple_of_8", "invalid_request", {"field": "width", "value": 70, "suggestion": 72})
    assert i18n.error_line(error, "id") == "gambarkan: galat: lebar 70 bukan kelipatan 8 (coba 72)"
    assert i18n.error_line(error, "en") == "gambarkan: error: width 70 is not a multiple of 8 (try 72)"
    body = error.to_dict()  # the HTTP APIs: English message, plus the code and params
    assert body["message"] == "width 70 is not a multiple of 8 (try 72)" and body["code"] == "size_not_multiple_of_8"
    assert body["params"] == {"field": "width", "value": 70, "suggestion": 72} and body["kind"] == "invalid_request"


def test_old_style_errors_still_work_and_keep_their_english_line() -> None:
    old = errors.ModelLoadError("tiny.safetensors is truncated (3 bytes)", "download the file again")
    assert (old.code, old.kind, old.params) == ("model_load_failed", "model_load_failed", {})
    assert i18n.render(old, "id") == i18n.render(old, "en") == "tiny.safetensors is truncated (3 bytes) (download the file again)"
    assert "params" not in old.to_dict() and "kind" not in old.to_dict()
    assert i18n.kind_sentence(old, "id").startswith("Model tidak bisa dimuat")


def test_suggestions_are_said_in_each_language() -> None:
    from gambarkan.engine.samplers import get_sampler

    with pytest.raises(InvalidRequestError) as caught:
        get_sampler("Eulr a")
    assert "maksud Anda 'Euler a'" in i18n.render(caught.value, "id")
    assert "did you mean 'Euler a'" in i18n.render(caught.value, "en")
    with pytest.raises(InvalidRequestError) as nothing_close:
        get_sampler("zzzzzzzz")
    assert i18n.render(nothing_close.value, "id") == "sampler 'zzzzzzzz' tidak dikenal (lihat: gambarkan samplers)"


@pytest.mark.parametrize(
    "environ, lang",
    [
        ({"GAMBARKAN_LANG": "id"}, "id"),
        ({"GAMBARKAN_LANG": "en", "LANG": "id_ID.UTF-8"}, "en"),
        ({"LANG": "id_ID.UTF-8"}, "id"),
        ({"LC_ALL": "en_US.UTF-8", "LANG": "id_ID.UTF-8"}, "en"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({}, "en"),
    ],
)
def test_cli_language_follows_gambarkan_lang_then_the_locale(environ: dict[str, str], lang: str) -> None:
    assert i18n.cli_language(environ) == lang


def test_the_cli_says_a_bad_width_in_indonesian_when_asked(cli) -> None:
    run = cli("generate", "kucing", "-W", "70", env={"GAMBARKAN_LANG": "id"})
    assert run.returncode == 2
    assert run.stderr.strip() == "gambarkan: galat: lebar 70 bukan kelipatan 8 (coba 72)"
    english = cli("generate", "kucing", "-W", "70", env={"GAMBARKAN_LANG": "en"})
    assert english.stderr.strip() == "gambarkan: error: width 70 is not a multiple of 8 (try 72)"
