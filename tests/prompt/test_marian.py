"""The marian backend through the real transformers code path, with a tiny model built offline.

A sentencepiece vocabulary is trained here, a random-weight MarianMTModel is saved in the
Hugging Face cache layout under Helsinki-NLP/opus-mt-id-en, and the same loading code
users hit (``auto`` finding the weights, ``from_pretrained``, ``generate``) runs on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("sentencepiece")
pytest.importorskip("transformers")

from gambarkan.prompt import translate as tr  # noqa: E402
from gambarkan.prompt.backends import marian  # noqa: E402

CORPUS = [
    "kucing hitam besar tidur di atas kasur", "rumah adat jawa di tengah sawah", "dua ekor kucing bermain",
    "gadis berkebaya merah di sawah saat matahari terbenam", "pemandangan pantai saat senja",
    "big black cat sleeping on a bed", "traditional javanese house", "two cats playing", "beach at dusk",
    "seorang nenek sedang duduk di atas batu", "an old woman sitting on a rock", "langit malam penuh bintang",
]


def _build_tiny_marian(root: Path) -> Path:
    """Save a tiny Marian tokenizer + model as an HF cache snapshot; return the snapshot folder."""
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    work = root / "work"
    work.mkdir(parents=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 20), model_prefix=str(work / "sp"), vocab_size=80,
        character_coverage=1.0, model_type="unigram", bos_id=-1, eos_id=1, unk_id=0, pad_id=-1,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=str(work / "sp.model"))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    vocab = {"<unk>": 0, "</s>": 1}
    for p in pieces:
        vocab.setdefault(p, len(vocab))
    vocab["<pad>"] = len(vocab)
    (work / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")

    repo = root / "hf" / "models--Helsinki-NLP--opus-mt-id-en"
    snap = repo / "snapshots" / ("0" * 40)
    tok = MarianTokenizer(str(work / "sp.model"), str(work / "sp.model"), str(work / "vocab.json"), source_lang="id", target_lang="en")
    tok.save_pretrained(snap)
    config = MarianConfig(
        vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=128,
        pad_token_id=vocab["<pad>"], eos_token_id=vocab["</s>"], decoder_start_token_id=vocab["<pad>"],
        forced_eos_token_id=vocab["</s>"],
    )
    torch.manual_seed(0)
    MarianMTModel(config).save_pretrained(snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    return snap


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


def test_auto_picks_marian_and_keeps_syntax(hf_cache: Path, tiny_marian: Path) -> None:
    prompt = "(kucing hitam besar:1.3), <lora:x:0.6>, 8k, rumah adat jawa, cinematic lighting"
    t = tr.translate_prompt(prompt, "auto")
    assert t.backend == "marian"
    assert any("auto: using marian" in n for n in t.notes)
    expected = _reference(tiny_marian, ["kucing hitam besar", "rumah adat jawa"])
    assert [s[2] for s in t.segments] == [expected[0], "8k", expected[1], "cinematic lighting"]
    assert t.english.startswith("(") and ":1.3), <lora:x:0.6>, 8k, " in t.english
    assert t.english.endswith(", cinematic lighting")


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
    assert t.backend == "glossary" and t.english == "black cat"
    assert any("marian unavailable" in n for n in t.notes)
    tr.reset_backends()
    from gambarkan.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="cannot load the marian translator"):
        tr.translate_prompt("kucing hitam", "marian", offline=True)
    tr.reset_backends()
