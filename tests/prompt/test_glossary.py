"""The glossary backend: data quality and the Indonesian grammar that matters for prompts."""

from __future__ import annotations

from pathlib import Path

import pytest

from gambarkan.prompt.backends.glossary import (
    GLOSSARY_DIR,
    GlossaryFormatError,
    GlossaryTranslator,
    Lexicon,
    load_entries,
    parse_line,
    pluralize,
)


@pytest.fixture(scope="module")
def g() -> GlossaryTranslator:
    return GlossaryTranslator()


def test_glossary_is_large_reviewed_and_licensed() -> None:
    entries = load_entries()
    assert len(entries) >= 3000
    readme = (GLOSSARY_DIR.parent / "README.md").read_text(encoding="utf-8")
    assert "MIT" in readme and "source" in readme.lower()
    for path in sorted(GLOSSARY_DIR.glob("*.tsv")):
        assert "MIT" in path.read_text(encoding="utf-8").splitlines()[0] + path.read_text(encoding="utf-8").splitlines()[1]
    # no entry listed twice with the same part of speech
    seen: dict[tuple[str, str], str] = {}
    dupes = []
    for e in entries:
        key = (e.source, e.pos)
        if key in seen and seen[key] != e.english:
            dupes.append((e.source, seen[key], e.english))
        seen[key] = e.english
    assert not dupes, dupes[:10]
    areas = {p.stem for p in GLOSSARY_DIR.glob("*.tsv")}
    assert {"animals", "people", "clothing", "colours", "nature", "weather", "places", "art", "food", "culture", "verbs"} <= areas


def test_bad_lines_are_reported_with_their_place(tmp_path: Path) -> None:
    with pytest.raises(GlossaryFormatError, match="x.tsv:3"):
        parse_line("kucing\tcat\tnoun", "x.tsv:3")
    with pytest.raises(GlossaryFormatError, match="columns"):
        parse_line("kucing cat", "x.tsv:1")
    assert parse_line("# comment", "x") is None
    bad = tmp_path / "bad.tsv"
    bad.write_text("kucing\tcat\tn\nanjing\tdog\n", encoding="utf-8")
    with pytest.raises(GlossaryFormatError, match="bad.tsv:2"):
        load_entries([bad])


@pytest.mark.parametrize(
    ("source", "english"),
    [
        # head-modifier order, English adjective order
        ("kucing hitam besar", "big black cat"),
        ("rumah adat jawa", "traditional javanese house"),
        ("kota tua eropa", "old european city"),
        ("langit malam", "night sky"),
        ("pantai pasir putih", "white sand beach"),
        ("rumah kayu kecil", "small wooden house"),
        # reduplication plurals
        ("kucing-kucing", "cats"),
        ("burung-burung terbang", "birds flying"),
        # numbers and classifiers
        ("dua ekor kucing", "two cats"),
        ("tiga orang anak", "three children"),
        ("dua orang", "two people"),
        ("5 kuda putih", "5 white horses"),
        ("seekor panda makan bambu", "a panda eating bamboo"),
        ("seorang astronot", "an astronaut"),
        # prepositions and verbs
        ("sedang duduk di atas batu", "sitting on a rock"),
        ("kucing putih tidur di sofa", "white cat sleeping on a sofa"),
        ("serigala melolong di bawah bulan", "wolf howling under the moon"),
        ("pemandangan pantai saat senja", "beach scenery at dusk"),
        ("kota tua saat musim dingin", "old city in winter"),
        ("di pagi hari", "in the morning"),
        # affixes
        ("gadis berambut merah muda", "girl with pink hair"),
        ("wanita berkebaya hijau", "woman wearing a green kebaya blouse"),
        ("ksatria berbaju zirah perak", "knight wearing silver armor"),
        ("kastil yang ditutupi tanaman merambat", "castle covered in vines"),
        ("pria memakai topi", "man wearing a hat"),
        ("rambutnya panjang", "long hair"),
        ("melompat-lompat", "jumping"),
        # stop-words and intensifiers
        ("kucing yang sangat lucu", "very cute cat"),
        ("pemandangan indah sekali", "very beautiful scenery"),
        # of-complements
        ("foto realistis seorang petani di sawah", "realistic photo of a farmer in a rice field"),
        ("lukisan cat air perahu nelayan", "watercolor painting of a fishing boat"),
        ("secangkir kopi", "a cup of coffee"),
        ("patung marmer seorang dewi", "marble statue of a goddess"),
        # a set phrase ("di bawah pohon" = "under a tree") gives way to a longer noun phrase
        ("di bawah pohon, pagi hari", "under a tree, morning"),
        ("duduk di bawah pohon beringin tua", "sitting under an old banyan tree"),
        ("berdiri di bawah pohon sakura yang sedang mekar", "standing under a blooming cherry blossom tree"),
        ("di bawah langit biru", "under the blue sky"),
        # "penuh" before a noun is "full of" + plural, alone it is "full"
        ("langit malam penuh bintang", "night sky full of stars"),
        ("perahu penuh buah-buahan", "boat full of fruits"),
        ("gelas penuh", "full glass"),
        # an unknown me-/ber-/di- word stays where it was instead of scrambling the phrase
        ("robot raksasa menggebuki gedung tinggi", "giant robot menggebuki a tall building"),
        ("robot raksasa menghancurkan gedung-gedung tinggi", "giant robot destroying tall buildings"),
        # "di atas": "on" for what rests on a surface, "above"/"over" for what flies or hangs in the sky
        ("kucing tidur di atas sofa", "cat sleeping on a sofa"),
        ("kastil di atas bukit", "castle on a hill"),
        ("burung elang terbang tinggi di atas lembah", "eagle flying high above a valley"),
        ("bulan di atas gunung", "moon above a mountain"),
        ("jembatan di atas sungai", "bridge over a river"),
        ("pesawat, kucing di atas meja", "airplane, cat on a table"),
        ("mobil melaju cepat di jalan raya", "car speeding fast on a main road"),
    ],
)
def test_grammar(g: GlossaryTranslator, source: str, english: str) -> None:
    assert g.translate_text(source) == english


@pytest.mark.parametrize(
    ("source", "english"),
    [
        # body parts after a person or animal describe it ("with ... and ...")
        ("cewek anime rambut biru panjang mata merah", "anime girl with long blue hair and red eyes"),
        ("cowok keren rambut hitam pendek", "cool guy with short black hair"),
        ("cewek kucing telinga kucing ekor", "cat girl with cat ears and a tail"),
        ("kucing mata biru", "cat with blue eyes"),
        ("jaket kulit", "leather jacket"),
        # ber- + body part + adjective: the adjective belongs to the body part
        ("laki-laki tua berjenggot putih", "old man with a white beard"),
        ("peri kecil bersayap transparan", "small fairy with transparent wings"),
        ("gadis berambut merah bermata biru", "girl with red hair and blue eyes"),
        ("pria berjenggot", "bearded man"),
        # a body part after a preposition is definite
        ("tato naga di punggung", "dragon tattoo on the back"),
        # two adjectives joined by "dan"/"atau" both describe the noun
        ("lampu neon pink dan biru", "pink and blue neon lights"),
        ("kucing hitam dan anjing putih", "black cat and white dog"),
        # food sense of a colour word
        ("martabak manis coklat keju", "chocolate cheese sweet martabak pancake"),
        ("rambut coklat", "brown hair"),
        # chat spelling and slang
        ("sate ayam dgn bumbu kacang", "chicken satay with peanut sauce"),
        ("cewek cantik bgt", "very beautiful girl"),
        ("ilustrasi digital estetik banget", "very aesthetic digital illustration"),
        ("bocil lucu main layangan di sawah", "cute kid flying a kite in a rice field"),
        ("kucing oren gendut", "chubby orange cat"),
        ("kota tokyo waktu hujan", "Tokyo city in the rain"),
        # verbs and set phrases that were left untranslated or doubled
        ("robot raksasa bertarung melawan monster", "giant robot fighting a monster"),
        ("pesawat luar angkasa mendarat di planet asing", "spaceship landing on an alien planet"),
        ("kupu-kupu warna warni hinggap di bunga", "colorful butterfly perched on a flower"),
        ("danau tenang dikelilingi gunung", "calm lake surrounded by mountains"),
        ("pohon tua dgn akar menjalar", "old tree with creeping roots"),
        ("rambut panjang berkibar kena angin", "long hair fluttering in the wind"),
        ("tumpeng nasi kuning lengkap dengan lauk", "tumpeng yellow rice cone complete with side dishes"),
        ("gorengan di piring anyaman", "fritters on a woven plate"),
        ("langit berbintang di atas danau", "starry sky above a lake"),
        # negative prompts
        ("jari lebih, tangan tambahan, burik", "extra fingers, extra hands, low quality"),
        ("gambar pecah, over saturasi", "pixelated image, oversaturated"),
        ("poster film horor", "horror movie poster"),
        # basic Javanese and Sundanese words
        ("cah ayu nganggo jarik, mlaku nang sawah", "pretty girl wearing a jarik batik wrap, walking in a rice field"),
        ("wong tuwo lungguh nang ngarep omah", "old person sitting in front of a house"),
        ("budak leutik ulin di walungan", "little kid playing in a river"),
    ],
)
def test_second_audit_prompts(g: GlossaryTranslator, source: str, english: str) -> None:
    assert g.translate_text(source) == english


@pytest.mark.parametrize(
    ("source", "english"),
    [
        ("candi borobudur", "Borobudur temple"),
        ("danau toba", "Lake Toba"),
        ("monas di malam hari", "Monas at night"),
        ("pantai di bali", "beach in Bali"),
        ("pesawat garuda", "Garuda airplane"),
        ("pom bensin pertamina", "Pertamina gas station"),
        ("gunung singgalang", "Mount Singgalang"),  # unknown name after a titled noun
        ("Kampung Naga", "Naga village"),
    ],
)
def test_names_are_kept(g: GlossaryTranslator, source: str, english: str) -> None:
    assert g.translate_text(source) == english


def test_culture_words_kept_and_explained(g: GlossaryTranslator) -> None:
    assert g.translate_text("batik") == "batik pattern"
    assert g.translate_text("kemeja batik biru") == "blue batik shirt"
    assert "rendang" in g.translate_text("rendang")
    assert "wayang kulit" in g.translate_text("wayang kulit")
    assert "angkot" in g.translate_text("angkot kuning")
    assert g.explain("wanita berkebaya") == ["kebaya: traditional Indonesian blouse, often with lace"]


def test_english_words_inside_indonesian_pass_through(g: GlossaryTranslator) -> None:
    assert g.translate_text("gaya pixel art") == "pixel art style"
    assert g.translate_text("anjing golden retriever") == "golden retriever dog"


def test_whitespace_around_phrase_is_kept(g: GlossaryTranslator) -> None:
    assert g.translate_text("  kucing hitam ") == "  black cat "


def test_pluralize() -> None:
    assert [pluralize(w) for w in ("cat", "box", "city", "leaf", "fishing boat", "child", "fish")] == [
        "cats", "boxes", "cities", "leaves", "fishing boats", "children", "fish",
    ]


def test_default_lexicon_is_shared() -> None:
    assert Lexicon.default() is Lexicon.default()
