"""Per-segment language detection: word lists first, lingua only when they cannot decide."""

from __future__ import annotations

import pytest

from gambarkan.prompt.language import detect, detector_language, indonesian_leftovers, is_indonesian_word


@pytest.mark.parametrize(
    "text",
    ["kucing hitam", "kucing", "rumah adat jawa", "pantai saat senja", "sapi", "gadis berkebaya merah di sawah", "buram"],
)
def test_short_indonesian_prompts_are_indonesian(text: str) -> None:
    assert detect(text).lang == "id"


def test_lingua_alone_misreads_short_indonesian_prompts() -> None:
    """Why the word lists come first: lingua calls these Malay (or English), we say Indonesian."""
    lingua = pytest.importorskip("lingua")
    det = lingua.LanguageDetectorBuilder.from_languages(
        lingua.Language.ENGLISH, lingua.Language.INDONESIAN, lingua.Language.MALAY
    ).build()
    misread = [t for t in ("kucing hitam", "rumah adat jawa", "kucing") if det.detect_language_of(t) != lingua.Language.INDONESIAN]
    assert misread, "lingua got every short prompt right; the word lists are no longer needed for these"
    for text in misread:
        assert detect(text).lang == "id"
    # and it calls a plain English prompt Malay too (lingua 2.x); the word lists say English
    assert det.detect_language_of("cyberpunk city at night") == lingua.Language.MALAY
    assert detect("cyberpunk city at night").lang == "en"


@pytest.mark.parametrize(
    "text",
    ["cyberpunk city at night", "8k, highly detailed", "masterpiece", "best quality", "portrait of a man", "cinematic lighting", "soft lighting, bokeh"],
)
def test_english_segments_are_english(text: str) -> None:
    assert detect(text).lang == "en"


def test_mixed_segment() -> None:
    d = detect("gadis anime memakai seragam sekolah, soft lighting")
    assert d.lang == "mixed"
    assert "memakai" in d.indonesian and "soft" in d.english


def test_unknown_words_are_left_alone() -> None:
    assert detect("xyzzy").lang == "und"
    assert not detect("").needs_translation
    assert not detect("xyzzy").needs_translation


def test_regional_language_is_noticed() -> None:
    assert detect("omah gedhe ing alas, wong lanang mlaku").lang == "jv"
    assert detect("budak geulis keur diuk").lang == "su"
    # the glossary translates some basic regional words; they still count as regional
    assert detect("cah ayu nganggo jarik").lang == "jv"
    assert detect("awewe geulis").lang == "su"


def test_words_shared_by_both_languages_fall_back_to_the_detector() -> None:
    pytest.importorskip("lingua")
    assert detector_language("motif batik parang") == "id"
    assert detect("motif batik parang").lang == "id"


def test_leftovers_ignore_names_and_kept_culture_words() -> None:
    assert indonesian_leftovers("black cat sleeping on a kasur") == ["kasur"]
    assert indonesian_leftovers("woman in a red kebaya blouse near Borobudur, batik pattern") == []
    assert is_indonesian_word("memakai") and not is_indonesian_word("cat")


def test_leftovers_count_unknown_affixed_verbs_but_not_english_lookalikes() -> None:
    assert indonesian_leftovers("giant robot menghancurkan tall buildings, dibersihkan") == ["menghancurkan", "dibersihkan"]
    assert indonesian_leftovers("mermaid at a memorial, mentor on a terrace, beret, dinosaur, digital art") == []
