"""The marian backend through the real transformers code path, with a tiny model built offline.

A sentencepiece vocabulary is trained here, a random-weight MarianMTModel is saved in the
Hugging Face cache layout under Helsinki-NLP/opus-mt-id-en, and the same loading code
users hit (``auto`` finding the weights, ``from_pretrained``, ``generate``) runs on it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("sentencepiece")
pytest.importorskip("transformers")

from gambarkan.prompt import translate as tr  # noqa: E402
from gambarkan.prompt.backends import marian  # noqa: E402

def _build_tiny_marian(root: Path) -> Path:
    """Save a tiny Marian tokenizer + model as an HF cache snapshot; return the snapshot folder."""
    from gambarkan.testing import save_tiny_marian

    return save_tiny_marian(root)


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_tiny_marian(tmp_path_factory.mktemp("marian"))


@pytest.fixture
def hf_cache(tiny_marian: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tiny_marian.parents[2]
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    tr.reset_backends()
    yield cache
    tr.reset_backends()


def _reference(snapshot: Path, texts: list[str]) -> list[str]:
    """What transformers itself produces for these texts with the same settings."""
    import torch
    from transformers import MarianMTModel, MarianTokenizer

    tok = MarianTokenizer.from_pretrained(snapshot)
    model = MarianMTModel.from_pretrained(snapshot).eval()
    batch = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=256)
    with torch.inference_mode():
        out = model.generate(**batch, num_beams=4, max_new_tokens=int(batch["input_ids"].shape[1] * 2 + 8))
    return [marian._clean(t) for t in tok.batch_decode(out, skip_special_tokens=True)]


def test_weights_found_in_the_hf_cache(hf_cache: Path) -> None:
    assert marian.weights_available()
    assert not marian.weights_available("Helsinki-NLP/opus-mt-xx-yy")


def test_auto_routes_only_phrases_with_unknown_words_to_marian(hf_cache: Path, tiny_marian: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prompt = "(kucing hitam besar:1.3), <lora:x:0.6>, 8k, rumah adat jawa xyzzyq, cinematic lighting, anjing plughw tidur"
    backend = tr.get_backend("marian", True)
    asked: list[str] = []
    real = backend.translate

    def recording(texts: list[str], langs: list[str] | None = None) -> list[str]:
        asked.extend(texts)
        return real(texts, langs)

    monkeypatch.setattr(backend, "translate", recording)
    t = tr.translate_prompt(prompt, "auto")
    assert asked == ["rumah adat jawa xyzzyq", "anjing plughw tidur"]  # exactly the phrases with unknown words
    assert t.backend == "glossary+marian"
    assert any("auto: using marian" in n for n in t.notes)
    expected = _reference(tiny_marian, asked)
    assert [s[2] for s in t.segments] == ["big black cat", "8k", expected[0], "cinematic lighting", expected[1]]
    assert [d["backend"] for d in t.details] == ["glossary", "none", "marian", "none", "marian"]
    assert t.untranslated == []  # marian took the unknown words
    assert t.english.startswith("(big black cat:1.3), <lora:x:0.6>, 8k, ")
    assert ", cinematic lighting, " in t.english


def test_marian_results_are_cached(hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = tr.translate_prompt("kucing hitam", "marian")
    backend = tr.get_backend("marian", False)
    monkeypatch.setattr(backend, "_model", None)  # a second model call would now fail
    monkeypatch.setattr(backend, "load", lambda: (_ for _ in ()).throw(AssertionError("not cached")))
    assert tr.translate_prompt("kucing hitam", "marian").english == first.english


def test_broken_weights_fall_back_for_auto_and_fail_clearly_when_chosen(
    tmp_path: Path, tiny_marian: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    cache = tmp_path / "hf"
    shutil.copytree(tiny_marian.parents[2], cache)
    snap = cache / "models--Helsinki-NLP--opus-mt-id-en" / "snapshots" / ("0" * 40)
    (snap / "model.safetensors").write_bytes(b"not a safetensors file")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    tr.reset_backends()
    t = tr.translate_prompt("kucing hitam", "auto")
    assert t.backend == "glossary" and t.english == "black cat"  # fully understood: marian is not even loaded
    t = tr.translate_prompt("kucing hitam xyzzyq", "auto")
    assert t.backend == "glossary" and t.english == "black cat xyzzyq" and t.untranslated == ["xyzzyq"]
    assert any("marian unavailable" in n for n in t.notes)
    tr.reset_backends()
    from gambarkan.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="cannot load the marian translator"):
        tr.translate_prompt("kucing hitam", "marian", offline=True)
    tr.reset_backends()
