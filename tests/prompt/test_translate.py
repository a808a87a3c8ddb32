"""translate_prompt: syntax kept, English untouched, backends, auto fallback, cache, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gambarkan.config import Settings
from gambarkan.errors import DependencyMissingError, GambarkanError, InvalidRequestError, NetworkError
from gambarkan.prompt import translate as tr
from gambarkan.prompt.translate import TranslationCache, translate_pair, translate_prompt


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Marian weights in this HF cache: auto must pick the glossary."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tr.reset_backends()


def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"GAMBARKAN_HOME": str(tmp_path / "home")})


@pytest.mark.parametrize(
    ("prompt", "english"),
    [
        ("(kucing hitam:1.3), <lora:x:0.6>", "(black cat:1.3), <lora:x:0.6>"),
        ("[kabut], hutan gelap, (cahaya tipis:0.8)", "[fog], dark forest, (faint light:0.8)"),
        ("((mata hijau)), rambut pirang", "((green eyes)), blonde hair"),
        ("langit malam BREAK gunung berapi", "night sky BREAK volcano"),
        ("kucing hitam AND anjing putih", "black cat AND white dog"),
        ("[kucing:anjing:10], taman bunga", "[cat:dog:10], flower garden"),
        ("<lora:batik_style:0.7>, kucing oranye gemuk, soft lighting, bokeh", "<lora:batik_style:0.7>, fat orange cat, soft lighting, bokeh"),
        ("  kucing hitam ,  8k  ", "  black cat ,  8k  "),
    ],
)
def test_syntax_is_kept(prompt: str, english: str) -> None:
    t = translate_prompt(prompt, "glossary")
    assert t.english == english
    assert t.backend == "glossary"


@pytest.mark.parametrize(
    "prompt",
    ["cyberpunk city at night, 8k, highly detailed", "masterpiece, best quality, 1girl", "(portrait of a man:1.2), <lora:y:1>", ""],
)
def test_english_is_left_exactly_as_written(prompt: str) -> None:
    t = translate_prompt(prompt, "glossary")
    assert t.english == prompt
    assert t.backend == "none" and not t.changed


def test_mixed_prompt_translates_only_indonesian_phrases() -> None:
    t = translate_prompt("gadis berkebaya merah di sawah saat matahari terbenam, (masterpiece:1.2), Cinematic Lighting", "glossary")
    assert t.english == "girl wearing a red kebaya blouse in a rice field at sunset, (masterpiece:1.2), Cinematic Lighting"
    assert [s[1] for s in t.segments] == ["id", "en", "en"]
    assert any(n.startswith("kebaya:") for n in t.notes)


def test_none_backend_and_unknown_name() -> None:
    assert translate_prompt("kucing hitam", "none").english == "kucing hitam"
    with pytest.raises(InvalidRequestError, match="did you mean 'marian'"):
        translate_prompt("kucing", "marin")


def test_auto_uses_glossary_and_says_so_when_marian_is_not_downloaded() -> None:
    t = translate_prompt("kucing hitam", "auto")
    assert t.english == "black cat" and t.backend == "glossary"
    assert any("auto: using the offline glossary" in n for n in t.notes)


def test_explicit_marian_without_weights_is_one_clear_error() -> None:
    with pytest.raises(GambarkanError) as info:
        translate_prompt("kucing hitam", "marian", offline=True)
    assert isinstance(info.value, NetworkError)
    assert "\n" not in str(info.value) and "--translator glossary" in str(info.value)


def test_nllb_shows_its_licence_even_when_it_fails() -> None:
    with pytest.raises(GambarkanError, match="nllb") as failed:
        translate_prompt("omah gedhe", "nllb", offline=True)
    assert "CC-BY-NC 4.0: non-commercial use only" in str(failed.value)
    t = translate_prompt("omah gedhe ing alas", "glossary")
    assert any("nllb" in n for n in t.notes)  # regional phrase: suggests nllb


def test_google_falls_back_to_glossary_and_reports_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from gambarkan.prompt.backends import google

    def broken(self: object, texts: list[str], langs: list[str] | None = None) -> list[str]:
        raise NetworkError("google translate did not answer within 5s")

    monkeypatch.setattr(google.GoogleBackend, "translate", broken)
    t = translate_prompt("kucing hitam", "google")
    assert t.english == "black cat" and t.backend == "glossary"
    assert any("google unavailable" in n for n in t.notes)


def test_google_offline_is_refused() -> None:
    from gambarkan.prompt.backends.google import GoogleBackend

    with pytest.raises(NetworkError, match="offline"):
        GoogleBackend(offline=True).check()
    with pytest.raises((NetworkError, DependencyMissingError)):
        GoogleBackend(offline=True).translate(["kucing"])


def test_cache_hit_skips_the_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    s = settings(tmp_path)
    first = translate_prompt("kucing hitam besar, rumah kayu", "glossary", s)
    calls = []
    backend = tr.get_backend("glossary")
    monkeypatch.setattr(backend, "translate", lambda texts, langs=None: calls.append(texts) or ["X"] * len(texts))
    again = translate_prompt("kucing hitam besar, rumah kayu", "glossary", s)
    assert again.english == first.english == "big black cat, wooden house"
    assert calls == []
    translate_prompt("kucing hitam besar, anjing", "glossary", s)
    assert calls == [["anjing"]]  # only the new phrase reaches the backend


def test_disk_cache_for_slow_backends(tmp_path: Path) -> None:
    path = tmp_path / "c" / "translations.sqlite"
    TranslationCache(path=path).put("marian", "kucing", "cat")
    fresh = TranslationCache(path=path)
    assert fresh.get("marian", "kucing") == "cat" and fresh.hits == 1
    assert fresh.get("glossary", "kucing") is None
    small = TranslationCache(maxsize=2)
    for w in "abc":
        small.put("glossary", w, w.upper())
    assert small.get("glossary", "a") is None and small.get("glossary", "c") == "C"


def test_pair_and_engine_hook(tmp_path: Path) -> None:
    p, n = translate_pair("kucing lucu", "buram, resolusi rendah", "glossary")
    assert (p.english, n.english) == ("cute cat", "blurry, low resolution")
    from gambarkan.engine.generate import _translate
    from gambarkan.request import GenerationRequest

    req = GenerationRequest(prompt="kucing lucu", negative_prompt="buram", translator="glossary")
    t = _translate(req.prompt, req.negative_prompt, req, settings(tmp_path))
    assert (t.prompt, t.negative_prompt, t.original_prompt, t.translator) == ("cute cat", "blurry", "kucing lucu", "glossary")
    same = _translate("a cat", "", req, settings(tmp_path))
    assert same.translator is None and same.prompt == "a cat"


def test_cli_translate(tmp_path: Path) -> None:
    from gambarkan.cli import main

    env = {"GAMBARKAN_HOME": str(tmp_path / "home")}
    runner = CliRunner()
    res = runner.invoke(main, ["translate", "(kucing hitam:1.3), <lora:x:0.6>, 8k"], env=env)
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().splitlines()[0] == "(black cat:1.3), <lora:x:0.6>, 8k"
    res = runner.invoke(main, ["translate", "dua ekor kucing, 8k", "--json", "-t", "glossary"], env=env)
    data = json.loads(res.stdout)
    assert data["english"] == "two cats, 8k" and data["backend"] == "glossary"
    assert data["segments"] == [
        {"text": "dua ekor kucing", "lang": "id", "english": "two cats", "normalized": "dua ekor kucing", "changes": [],
         "backend": "glossary", "untranslated": []},
        {"text": "8k", "lang": "und", "english": "8k", "normalized": "8k", "changes": [], "backend": "none", "untranslated": []},
    ]
    assert data["untranslated"] == []
    res = runner.invoke(main, ["translate", "kucing oren tdr, gajah xyzzyq", "--json", "-t", "glossary"], env=env)
    data = json.loads(res.stdout)
    assert data["english"] == "orange cat sleeping, elephant xyzzyq"
    assert data["segments"][0]["normalized"] == "kucing oren tidur"
    assert data["segments"][0]["changes"] == [{"written": "tdr", "standard": "tidur", "kind": "abbr"}]
    assert data["segments"][1]["untranslated"] == ["xyzzyq"] and data["untranslated"] == ["xyzzyq"]
    res = runner.invoke(main, ["translate", "gajah xyzzyq", "-t", "glossary"], env=env)
    assert res.stdout.strip() == "elephant xyzzyq"
    assert [line for line in res.stderr.splitlines() if "xyzzyq" in line] == [
        "catatan: tidak diterjemahkan (tidak ada di glosarium; periksa ejaannya atau pakai --translator marian): xyzzyq"]
    res = runner.invoke(main, ["translate", "kucing", "-t", "marin"], env=env)
    assert res.exit_code == 2
    assert "gambarkan: error: unknown translator 'marin'" in res.stderr
    assert "Traceback" not in res.output


def test_cli_generate_shows_the_translation_on_stderr_and_keeps_both_prompts(tiny_sd15_dir: Path, tmp_path: Path) -> None:
    from gambarkan.cli import main
    from gambarkan.outputs.png import read_parameters

    env = {"GAMBARKAN_HOME": str(tmp_path / "home")}
    args = ["generate", "(kucing oranye:1.2) tidur di sofa, 8k", "--model", str(tiny_sd15_dir), "--steps", "1",
            "--width", "64", "--height", "64", "--seed", "1", "--out", str(tmp_path), "-t", "glossary"]
    res = CliRunner().invoke(main, args, env=env)
    assert res.exit_code == 0, res.output
    assert "Terjemahan (glossary): (orange cat:1.2) sleeping on a sofa, 8k" in res.stderr
    assert "Terjemahan" not in res.stdout
    params = read_parameters(Path(res.stdout.strip().splitlines()[-1]))
    assert params["prompt"] == "(orange cat:1.2) sleeping on a sofa, 8k"
    assert params["Original prompt"] == "(kucing oranye:1.2) tidur di sofa, 8k"

    res = CliRunner().invoke(main, [*args, "--no-translate"], env=env)
    assert res.exit_code == 0, res.output
    assert "Terjemahan" not in res.stderr
    assert read_parameters(Path(res.stdout.strip().splitlines()[-1]))["prompt"] == "(kucing oranye:1.2) tidur di sofa, 8k"
