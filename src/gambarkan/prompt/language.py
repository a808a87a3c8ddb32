"""Which parts of a prompt are Indonesian: word lists first, a statistical detector second.

Word lists decide almost every prompt segment: Indonesian words come from the glossary,
English words from the glossary's English side plus ``data/words_en.txt``. The detector
(lingua-language-detector) is only asked when no listed word decides, because on short
prompts it often answers Malay or even English for plain Indonesian ("kucing hitam").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from gambarkan.prompt.backends.glossary import DATA_DIR, Lexicon, analyze_word, english_words
from gambarkan.prompt.normalize import booru_tags

ID, EN, MIXED, UNKNOWN = "id", "en", "mixed", "und"
REGIONAL = {"jv": "Javanese", "su": "Sundanese", "ban": "Balinese", "min": "Minangkabau"}
WORD_RE = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
# Words both lists know ("model", "panda", "sofa") decide nothing.


@dataclass(frozen=True)
class Detection:
    """The language of one segment and the evidence for it."""

    lang: str  # id | en | mixed | und | jv | su | ban | min
    indonesian: tuple[str, ...] = ()
    english: tuple[str, ...] = ()
    method: str = "words"  # words | detector | empty

    @property
    def needs_translation(self) -> bool:
        return self.lang not in (EN, UNKNOWN)


def words(text: str) -> list[str]:
    return WORD_RE.findall(text)


@lru_cache(maxsize=1)
def _regional_words() -> dict[str, str]:
    lex = Lexicon.default()
    out: dict[str, str] = {}
    path = DATA_DIR / "words_regional.tsv"
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        word, code = line.split("\t")
        if word not in _indonesian_words(lex):
            out.setdefault(word, code)
    return out


def _indonesian_words(lex: Lexicon) -> set[str]:
    """Words the glossary knows as Indonesian: all of it but its basic regional words (regional.tsv)."""
    if lex is Lexicon.default():
        return _default_indonesian_words()
    return _words_outside_regional(lex)


@lru_cache(maxsize=1)
def _default_indonesian_words() -> set[str]:
    return _words_outside_regional(Lexicon.default())


def _words_outside_regional(lex: Lexicon) -> set[str]:
    out: set[str] = set()
    for e in lex.entries:
        if e.area != "regional":
            out.add(e.source)
            out.update(re.findall(r"[^\W\d_]+", e.source))
    return out


def is_indonesian_word(word: str, lex: Lexicon | None = None) -> bool:
    """True when ``word`` is Indonesian and not also an ordinary English word."""
    lex = lex or Lexicon.default()
    low = word.lower()
    if _is_english(low, lex):
        return False
    if low in _indonesian_words(lex) or low in lex.source_words and low not in _regional_words():
        return True
    return low not in lex.by_source and analyze_word(low, lex) is not None


def _is_english(low: str, lex: Lexicon) -> bool:
    return low in english_words() or low in lex.english_words


def _classify(word: str, lex: Lexicon) -> str:
    low = word.lower()
    ind = low in _indonesian_words(lex) or low in lex.source_words and low not in _regional_words()
    eng = _is_english(low, lex)
    if ind and eng:
        return "both"
    if ind:
        return ID
    if eng:
        return EN
    if low not in lex.by_source and analyze_word(low, lex) is not None:
        return ID
    return UNKNOWN


def detect(text: str, lex: Lexicon | None = None) -> Detection:
    """Detect the language of one plain-text segment (no A1111 syntax inside)."""
    lex = lex or Lexicon.default()
    ws = words(text)
    if not ws:
        return Detection(UNKNOWN, method="empty")
    if text.strip().lower().replace("_", " ") in booru_tags():
        return Detection(EN, (), tuple(ws), "booru")  # "solo", "v", "cat ears": tags, never Indonesian
    ind: list[str] = []
    eng: list[str] = []
    unknown: list[str] = []
    both = 0
    for w in ws:
        kind = _classify(w, lex)
        if kind == "both":
            both += 1
        elif kind == ID:
            ind.append(w)
        elif kind == EN:
            eng.append(w)
        elif kind == UNKNOWN:
            unknown.append(w)
    regional = _regional(unknown)
    if regional and (len(regional[1]) > len(ind) or len(regional[1]) >= 2):
        return Detection(regional[0], tuple(ind), tuple(eng), "words")
    if ind and eng:
        return Detection(MIXED, tuple(ind), tuple(eng))
    if ind:
        return Detection(ID, tuple(ind), ())
    if eng:
        return Detection(EN, (), tuple(eng))
    if len(unknown) >= 2 or both:
        # nothing listed decides ("motif batik parang" uses words English shares): ask lingua
        guess = detector_language(text)
        if guess == ID:
            return Detection(ID, tuple(unknown), (), "detector")
    return Detection(UNKNOWN)


def _regional(unknown: list[str]) -> tuple[str, list[str]] | None:
    table = _regional_words()
    hits: dict[str, list[str]] = {}
    for w in unknown:
        code = table.get(w.lower())
        if code:
            hits.setdefault(code, []).append(w)
    if not hits:
        return None
    code = max(hits, key=lambda c: len(hits[c]))
    return code, hits[code]


@lru_cache(maxsize=1)
def _detector():  # type: ignore[no-untyped-def]
    try:
        from lingua import Language, LanguageDetectorBuilder
    except ImportError:
        return None
    return LanguageDetectorBuilder.from_languages(
        Language.ENGLISH, Language.INDONESIAN, Language.MALAY
    ).build()


def detector_language(text: str) -> str | None:
    """lingua's guess, folded to our codes: Indonesian or Malay -> "id", English -> "en".

    Returns None when lingua is not installed or undecided.
    """
    det = _detector()
    if det is None:
        return None
    lang = det.detect_language_of(text)
    if lang is None:
        return None
    name = lang.name
    if name in ("INDONESIAN", "MALAY"):
        return ID
    if name == "ENGLISH":
        return EN
    return None


def indonesian_leftovers(text: str, keep: set[str] | None = None) -> list[str]:
    """Indonesian words still present in an English output (for the leftover metric and warnings).

    ``keep`` holds words that are meant to stay (names, culture words like "batik").
    """
    lex = Lexicon.default()
    keep = keep or kept_words()
    out = []
    for w in words(text):
        low = w.lower()
        if low in keep or w[:1].isupper():
            continue
        if is_indonesian_word(low, lex) or _unknown_affixed(low, lex):
            out.append(w)
    return out


def _unknown_affixed(low: str, lex: Lexicon) -> bool:
    """An unknown word shaped like an affixed Indonesian verb ("menghancurkan", "dibajak").

    Stricter than the glossary's guess, so English words ("memorial", "terrace") never count.
    """
    return bool(_AFFIXED.match(low)) and low not in lex.english_words and low not in english_words()


_AFFIXED = re.compile(r"(?:meng|meny)[a-z]{3,}$|(?:mem|men|ber|di|ter|per)[a-z]{3,}(?:kan|nya)$")


@lru_cache(maxsize=1)
def kept_words() -> frozenset[str]:
    """Indonesian words the glossary deliberately keeps in English output (kebaya, batik, Bali ...)."""
    lex = Lexicon.default()
    keep: set[str] = set()
    for e in lex.entries:
        eng = {w.lower() for w in words(e.english + " " + (e.get("mod") or ""))}
        for w in words(e.source):
            if w.lower() in eng:
                keep.add(w.lower())
    return frozenset(keep)
