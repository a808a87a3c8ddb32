"""Issue 20: Indonesian as people type it — normaliser, unknown words, comparatives, booru tags,
regional senses, and ``auto`` downloading Marian through a fake Hub (or saying once that it can't)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from gambarkan.prompt import translate as tr
from gambarkan.prompt.backends.glossary import degree
from gambarkan.prompt.normalize import Normalizer, booru_tags, normalize
from gambarkan.prompt.syntax import replace_text_segments, text_segments
from gambarkan.prompt.translate import translate_prompt


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    tr.reset_backends()
    yield
    tr.reset_backends()


def en(text: str) -> str:
    return translate_prompt(text, "glossary").english


# --------------------------------------------------------------------------- normaliser, per class

@pytest.mark.parametrize(
    ("written", "standard", "kind"),
    [
        ("menara yg tinggi bgt", "menara yang tinggi banget", "abbr"),
        ("ga ada awan", "tidak ada awan", "neg"),
        ("nggak pake sepatu", "tidak pakai sepatu", "neg"),
        ("gue di pantai", "aku di pantai", "slang"),
        ("jendela2 kaca", "jendela-jendela kaca", "redup"),
        ("main hujan2an", "main hujan-hujanan", "redup"),
        ("harimau cantiiik", "harimau cantik", "repeat"),
        ("nenek nyapu halaman", "nenek menyapu halaman", "affix"),
        ("nenek lagi ngegambar", "nenek lagi menggambar", "affix"),
        ("harimua di hutan", "harimau di hutan", "typo"),
        ("kucimg tidur", "kucing tidur", "typo"),
        ("burung diatas rumah", "burung di atas rumah", "split"),
    ],
)
def test_normaliser_classes(written: str, standard: str, kind: str) -> None:
    result = normalize(written)
    assert result.text == standard
    assert kind in {c.kind for c in result.changes}


def test_typo_repair_only_when_one_known_word_is_close() -> None:
    assert Normalizer()._near("bangu") == {"bangau", "bangku"}
    assert normalize("rumah bangu").text == "rumah bangu"  # two candidates (heron, bench): kept, not guessed
    assert normalize("gadis bermabut").text == "gadis bermabut"  # berkabut (foggy) or berambut (with hair): kept
    assert normalize("kucizg tidur").text == "kucizg tidur"  # z is not next to n: more likely another word than a typo
    assert normalize("harimua").text == "harimua"  # no Indonesian word around it: not repaired
    assert normalize("portrait, ethereal glow", typos=True).text == "portrait, ethereal glow"


def test_english_words_that_are_also_slang_need_indonesian_neighbours() -> None:
    assert normalize("baju item").text == "baju hitam"
    assert normalize("hoodie item").text == "hoodie item"


# --------------------------------------------------------------------------- unknown words

def test_unknown_word_stays_in_place_and_is_reported() -> None:
    t = translate_prompt("kucing xyzzyq hitam, pohon besar", "glossary")
    assert t.english == "cat xyzzyq black, big tree"  # nothing reordered around the unknown word
    assert t.untranslated == ["xyzzyq"]
    assert t.details[0]["untranslated"] == ["xyzzyq"] and t.details[1]["untranslated"] == []
    assert any(n == "kept as written (not in the glossary): xyzzyq" for n in t.notes)


def test_names_after_title_words_are_not_unknown() -> None:
    t = translate_prompt("danau qwerty di pagi hari", "glossary")
    assert t.english.startswith("Lake Qwerty") and t.untranslated == []


# --------------------------------------------------------------------------- grammar

@pytest.mark.parametrize(
    ("source", "english"),
    [
        ("gedung pencakar langit", "skyscraper"),  # longest match first
        ("rumah di kaki bukit", "house at the foot of a hill"),
        ("kamar mandi", "bathroom"),
        ("anak harimau", "tiger cub"),
        ("anak kambing", "kid goat"),
        ("anak ayam", "chick"),
    ],
)
def test_multiword_expressions_longest_first_and_young_animals(source: str, english: str) -> None:
    assert en(source) == english


@pytest.mark.parametrize(
    ("source", "english"),
    [
        ("menara yang lebih tinggi dari pohon", "tower taller than a tree"),
        ("kucing yang jauh lebih kecil dari tikus", "cat much smaller than a mouse"),
        ("gadis paling cantik", "the most beautiful girl"),
        ("rumah terbesar", "the biggest house"),
        ("pemandangan terbaik", "the best scenery"),
        ("jalan yang lebih buruk", "worse street"),
        ("langit lebih cerah dari biasanya", "sky brighter than usual"),
    ],
)
def test_comparatives_and_superlatives(source: str, english: str) -> None:
    assert en(source) == english


def test_english_degrees() -> None:
    assert [degree(a, "cmp") for a in ("tall", "big", "busy", "large", "beautiful", "good", "light blue")] == [
        "taller", "bigger", "busier", "larger", "more beautiful", "better", "more light blue"]
    assert [degree(a, "sup") for a in ("hot", "ugly", "bad", "delicious")] == ["hottest", "ugliest", "worst", "most delicious"]


def test_me_plus_colour_is_turning() -> None:
    assert en("daun menguning") == "leaves turning yellow" or en("daun menguning") == "leaf turning yellow"


# --------------------------------------------------------------------------- booru tags and regional lines

@pytest.mark.parametrize("tag", ["solo", "v", "1girl", "looking at viewer", "cat ears", "upper body", "no humans"])
def test_booru_tags_are_never_translated(tag: str) -> None:
    prompt = f"{tag}, kucing hitam"
    assert translate_prompt(prompt, "glossary").english == f"{tag}, black cat"


def test_regional_senses_apply_only_on_regional_lines() -> None:
    assert en("kembang abang lan wit gedhe") == "red flower and big tree"  # Javanese: abang = red
    assert en("abang tukang bakso") != en("kembang abang lan wit gedhe")
    su = translate_prompt("budak leutik ulin di buruan", "glossary")
    assert su.english == "small child playing in a yard" and su.segments[0][1] == "su"


# --------------------------------------------------------------------------- nothing English or syntactic changes

_TAGS = sorted(booru_tags())


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(_TAGS), min_size=1, max_size=5), st.sampled_from(["{}", "({}:1.2)", "[{}]", "{} BREAK", "<lora:a_b:0.5> {}"]))
def test_english_prompts_are_untouched(tags: list[str], wrap: str) -> None:
    prompt = wrap.format(", ".join(tags))
    assert translate_prompt(prompt, "glossary").english == prompt


_CASUAL = ["kucing oren tdr", "cewek cakep bgt", "rumah2 tua", "gk ada orang", "lampu2 kota", "anak bebek", "xyzzyq hitam"]


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(_CASUAL), min_size=1, max_size=4), st.sampled_from(["{}", "({}:1.3)", "[{}:{}:5]", "[{}|{}]", "(({}))", "{} AND {}"]))
def test_syntax_is_kept_byte_for_byte(phrases: list[str], wrap: str) -> None:
    body = ", ".join(phrases)
    prompt = wrap.format(body, phrases[0]) if wrap.count("{}") == 2 else wrap.format(body)
    out = translate_prompt(prompt, "glossary").english
    skeleton = lambda t: replace_text_segments(t, ["_"] * len(text_segments(t)))
    assert skeleton(out) == skeleton(prompt)


# --------------------------------------------------------------------------- auto: download once online, one note offline

def test_auto_offline_says_so_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    first = translate_prompt("kucing hitam", "auto")
    second = translate_prompt("anjing putih", "auto")
    assert first.backend == second.backend == "glossary"
    assert sum("auto: using the offline glossary" in n for n in first.notes) == 1
    assert not any("auto:" in n for n in second.notes)


_store = importlib.util.spec_from_file_location("gambarkan_fake_hub_tr", Path(__file__).resolve().parents[1] / "models" / "test_store.py")
fake = importlib.util.module_from_spec(_store)
assert _store.loader is not None
_store.loader.exec_module(fake)


def test_auto_downloads_marian_through_the_hub_once_and_uses_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentencepiece")
    import huggingface_hub.constants as c

    from gambarkan.prompt.backends import marian
    from gambarkan.testing import save_tiny_marian

    snap = save_tiny_marian(tmp_path / "built")
    monkeypatch.setattr(fake, "REPO", marian.MODEL_ID)
    hub = fake.FakeHub(snap)
    try:
        cache = tmp_path / "cache"
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(cache))
        monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
        monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        assert not marian.weights_available()
        t = translate_prompt("kucing hitam, rumah xyzzyq", "auto")
        assert marian.weights_available()
        assert any(n.startswith("auto: downloaded marian") for n in t.notes)
        assert [d["backend"] for d in t.details] == ["glossary", "marian"]
        gets = [p for m, p, _ in hub.log if m == "GET" and "/resolve/" in p]
        assert any(p.endswith("model.safetensors") for p in gets)
        t2 = translate_prompt("anjing xyzzyq", "auto")  # weights are local now: no second download
        assert [p for m, p, _ in hub.log if m == "GET" and "/resolve/" in p] == gets
        assert t2.details[0]["backend"] == "marian"
    finally:
        hub.close()


@pytest.mark.parametrize(
    "prompt",
    ["mama bear and baby bear", "girl wearing a headset", "the pass between two mountains, misty", "item shop interior, rpg game",
     "lo-fi anime girl studying at night", "a cat sleeping on a laptop", "solo, v, cat ears, looking at viewer"],
)
def test_english_prompts_with_words_indonesian_chat_also_uses_stay_english(prompt: str) -> None:
    assert translate_prompt(prompt, "glossary").english == prompt


def test_a_culture_gloss_is_said_once_per_prompt() -> None:
    t = translate_prompt("angkot kuning, angkot biru dan angkot merah", "glossary")
    assert t.english == "yellow angkot minibus, blue angkot and red angkot"
    alone = translate_prompt("angkot biru", "glossary")
    assert alone.english == "blue angkot minibus"  # the cache keeps each phrase's full translation
