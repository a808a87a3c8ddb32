"""Offline glossary translator: Indonesian prompt vocabulary plus the grammar prompts need.

Always available and fast (pure Python, no weights). It looks words and phrases up in the
reviewed TSV files under ``gambarkan/prompt/data/glossary/`` and handles the Indonesian
grammar that matters for image prompts: modifiers after the head noun ("kucing hitam besar"
-> "big black cat"), reduplication plurals, numbers with classifiers, prepositions, verbs
as "-ing" participles, the affixes me-/ber-/di-/ter-/-kan/-i/-nya and stop-words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
GLOSSARY_DIR = DATA_DIR / "glossary"

POS = {"n", "name", "adj", "v", "prep", "det", "num", "cls", "adv", "conj", "stop", "en"}
# English adjective order: opinion, size, quality, shape, age, colour, origin, material, type.
ADJ_ORDER = {
    "opinion": 1, "size": 2, "quality": 3, "shape": 4, "age": 5,
    "color": 6, "origin": 7, "material": 8, "type": 9,
}
LOCATIVE = {"on", "at", "in"}
# "di atas" is "on" for things resting on a surface, but "above"/"over" after these verbs and heads.
ABOVE_AFTER_VERBS = {"flying", "hovering", "soaring", "gliding", "circling"}
ABOVE_HEADS = {"moon", "full moon", "crescent moon", "sun", "star", "stars", "rainbow", "airplane", "plane", "helicopter",
               "hot air balloon", "balloon", "drone", "kite", "fireworks", "aurora", "cloud", "clouds", "bridge",
               "sky", "night sky", "starry sky", "milky way"}
OVER_HEADS = {"bridge"}
VOWEL_SOUND_EXCEPTIONS_A = ("uni", "use", "usu", "eu", "one", "once", "ukulele", "utop")
VOWEL_SOUND_EXCEPTIONS_AN = ("hour", "honest", "honou", "heir", "8", "11", "18")

UNKNOWN_VERB = re.compile(r"(?:mem|men|meng|meny|ber|di|ter)[a-z]{3,}$")
TOKEN_RE = re.compile(r"[^\W\d_]+(?:[-'][^\W\d_]+)*|\d+(?:[.,]\d+)*[^\W_]*|\S")
NO_SPACE_BEFORE = set(".,;:!?)]}%")
NO_SPACE_AFTER = set("([{")


class GlossaryFormatError(ValueError):
    """A glossary line is malformed (bad column count, unknown part of speech)."""


@dataclass(frozen=True)
class Entry:
    """One reviewed glossary line: Indonesian source, English, part of speech and flags."""

    source: str
    english: str
    pos: str
    cls: str = ""
    flags: frozenset[str] = frozenset()
    values: tuple[tuple[str, str], ...] = ()
    area: str = ""  # the glossary file it comes from ("people", "food"...)

    def get(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.values:
            if k == key:
                return v
        return default

    @property
    def modifier(self) -> str:
        """English form used when this word modifies a noun ("kayu" -> "wooden")."""
        return self.get("mod") or self.english

    @property
    def order(self) -> int:
        if self.pos == "adj":
            return ADJ_ORDER.get(self.cls or "quality", 3)
        if self.pos == "name":
            return ADJ_ORDER["origin"]
        if "material" in self.flags or self.cls == "material":
            return ADJ_ORDER["material"]
        return ADJ_ORDER["type"]


def parse_line(line: str, where: str, area: str = "") -> Entry | None:
    """Parse one TSV line (``id<TAB>en<TAB>pos[<TAB>flags]``); comments and blanks give None."""
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    cols = line.rstrip("\n").split("\t")
    if len(cols) not in (3, 4):
        raise GlossaryFormatError(f"{where}: expected 3 or 4 tab-separated columns, got {len(cols)}")
    source, english, pos_full = (c.strip() for c in cols[:3])
    pos, _, cls = pos_full.partition(":")
    if not source or pos not in POS:
        raise GlossaryFormatError(f"{where}: bad entry {line.strip()!r} (unknown part of speech {pos!r})")
    if pos == "adj" and cls and cls not in ADJ_ORDER:
        raise GlossaryFormatError(f"{where}: unknown adjective class {cls!r}")
    flags: set[str] = set()
    values: list[tuple[str, str]] = []
    if len(cols) == 4 and cols[3].strip():
        for item in cols[3].split(";"):
            item = item.strip()
            if "=" in item:
                k, _, v = item.partition("=")
                values.append((k.strip(), v.strip()))
            elif item:
                flags.add(item)
    english = "" if english == "-" else english
    return Entry(source.lower(), english, pos, cls, frozenset(flags), tuple(values), area)


def load_entries(paths: list[Path] | None = None) -> list[Entry]:
    """Read every glossary TSV (all of ``data/glossary/*.tsv`` by default), in file order."""
    if paths is None:
        paths = sorted(GLOSSARY_DIR.glob("*.tsv"))
    entries: list[Entry] = []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                entry = parse_line(line, f"{path.name}:{lineno}", path.stem)
                if entry is not None:
                    entries.append(entry)
    return entries


class Lexicon:
    """Glossary entries indexed by Indonesian source, with the word sets detection needs."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.by_source: dict[str, list[Entry]] = {}
        for e in entries:
            self.by_source.setdefault(e.source, []).append(e)
        self.max_words = max((len(k.split()) for k in self.by_source), default=1)
        self.source_words = {w for k in self.by_source for w in re.findall(r"[^\W\d_]+", k)}
        self.english_words: set[str] = set()
        for e in entries:
            for text in (e.english, e.get("mod") or "", e.get("pl") or "", e.get("pp") or ""):
                self.english_words.update(w.lower() for w in re.findall(r"[^\W\d_]+", text))

    @classmethod
    def default(cls) -> Lexicon:
        return _default_lexicon()

    @classmethod
    def for_language(cls, lang: str) -> Lexicon:
        """The default lexicon with the sense table of a regional language on top (``jv``, ``su``)."""
        return _regional_lexicon(lang)

    def lookup(self, key: str) -> list[Entry]:
        return self.by_source.get(key.lower(), [])

    def __len__(self) -> int:
        return len(self.entries)


@lru_cache(maxsize=1)
def _default_lexicon() -> Lexicon:
    return Lexicon(load_entries())


REGIONAL_SENSES = DATA_DIR / "regional_senses.tsv"


@lru_cache(maxsize=8)
def _regional_lexicon(lang: str) -> Lexicon:
    """Regional senses first: a word they list loses its Indonesian senses on a line in that language."""
    base = _default_lexicon()
    own: list[Entry] = []
    if REGIONAL_SENSES.exists():
        for lineno, line in enumerate(REGIONAL_SENSES.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            code, _, rest = line.partition("\t")
            if code.strip() == lang:
                entry = parse_line(rest, f"regional_senses.tsv:{lineno}", "regional")
                if entry is not None:
                    own.append(entry)
    if not own:
        return base
    mine = {e.source for e in own}
    return Lexicon(own + [e for e in base.entries if e.source not in mine])


# --------------------------------------------------------------------------- morphology

@dataclass
class Tok:
    """A word or symbol of a segment after lookup."""

    text: str
    kind: str  # lex | en | num | name | unk | punct
    entries: list[Entry] = field(default_factory=list)
    plural: bool = False
    affix: str = ""  # ber | di | ter | me: how the word was derived

    def pick(self, *pos: str) -> Entry | None:
        for p in pos:
            for e in self.entries:
                if e.pos == p:
                    return e
        return None

    @property
    def primary(self) -> Entry | None:
        return self.entries[0] if self.entries else None


def _me_roots(word: str) -> list[str]:
    """Candidate roots of a meN- verb, following the nasal assimilation rules."""
    roots: list[str] = []
    if word.startswith("meny") and len(word) > 5:
        roots += ["s" + word[4:], "ny" + word[4:]]
    if word.startswith("meng") and len(word) > 5:
        roots += [word[4:], "k" + word[4:]]
    if word.startswith("mem") and len(word) > 4:
        roots += [word[3:], "p" + word[3:]]
    if word.startswith("men") and len(word) > 4:
        roots += [word[3:], "t" + word[3:]]
    if word.startswith("me") and len(word) > 3:
        roots.append(word[2:])
    return roots


def _strip_suffixes(word: str) -> list[str]:
    out = [word]
    for suf in ("kan", "i", "an"):
        if word.endswith(suf) and len(word) - len(suf) >= 3:
            out.append(word[: -len(suf)])
    return out


def analyze_word(word: str, lex: Lexicon) -> Tok | None:
    """Find glossary entries for one word: as written, then through reduplication and affixes."""
    low = word.lower()
    if found := lex.lookup(low):
        return Tok(word, "lex", found)
    if "-" in low:
        left, _, right = low.partition("-")
        if left == right or right.startswith(left) or left.endswith(right):
            base = analyze_word(left, lex)
            if base is not None:
                # kucing-kucing -> cats; melompat-lompat -> jumping (verbs stay as they are)
                plural = any(e.pos == "n" for e in base.entries)
                return Tok(word, "lex", base.entries, plural=plural, affix=base.affix)
    for clitic in ("nya", "ku", "mu"):
        if low.endswith(clitic) and len(low) - len(clitic) >= 3:
            base = analyze_word(low[: -len(clitic)], lex)
            if base is not None:
                return Tok(word, "lex", base.entries, plural=base.plural, affix=base.affix)
    candidates: list[tuple[str, str]] = []
    for stem in _strip_suffixes(low):
        if stem.startswith("me"):
            candidates += [("me", r) for r in _me_roots(stem)]
        if stem.startswith("ber") and len(stem) > 4:
            candidates += [("ber", stem[3:])]
        if stem.startswith("be") and len(stem) > 3 and stem[2] == "r":
            candidates += [("ber", stem[2:])]
        if stem.startswith("di") and len(stem) > 4:
            candidates += [("di", stem[2:])]
        if stem.startswith("ter") and len(stem) > 4:
            candidates += [("ter", stem[3:])]
        if stem.startswith("ke") and low.endswith("an") and len(stem) > 4:
            candidates += [("ke", stem[2:])]
    if low.endswith("an") and len(low) > 5:
        candidates.append(("an", low[:-2]))
    for affix, root in candidates:
        colour = [e for e in lex.lookup(root) if e.pos == "adj" and e.cls == "color"]
        if affix == "me" and colour:  # memerah, menguning: turning red, turning yellow
            return Tok(word, "lex", [Entry(word, f"turning {colour[0].english}", "v", area=colour[0].area)], affix="me")
    for affix, root in candidates:
        found = lex.lookup(root)
        if not found:
            continue
        verbs = [e for e in found if e.pos == "v"]
        nouns = [e for e in found if e.pos in ("n", "name")]
        adjs = [e for e in found if e.pos == "adj"]
        if affix in ("me", "ber") and verbs:
            return Tok(word, "lex", verbs, affix=affix)
        if affix in ("di", "ter") and verbs:
            return Tok(word, "lex", [_passive(e) for e in verbs], affix=affix)
        if affix == "ber" and nouns:
            return Tok(word, "lex", nouns, affix="ber")
        if affix in ("ber", "ter") and adjs:
            return Tok(word, "lex", adjs, affix=affix)
        if affix in ("ke", "an") and nouns:
            return Tok(word, "lex", nouns, affix=affix)
    return None


def _passive(e: Entry) -> Entry:
    pp = e.get("pp")
    if not pp:
        return e
    return Entry(e.source, pp, "v", e.cls, e.flags, e.values, e.area)


# --------------------------------------------------------------------------- English helpers

IRREGULAR_PLURALS = {
    "man": "men", "woman": "women", "child": "children", "person": "people", "foot": "feet",
    "tooth": "teeth", "mouse": "mice", "goose": "geese", "leaf": "leaves", "knife": "knives",
    "wolf": "wolves", "life": "lives", "wife": "wives", "half": "halves", "shelf": "shelves",
    "thief": "thieves", "calf": "calves", "loaf": "loaves", "scarf": "scarves", "elf": "elves",
    "fish": "fish", "sheep": "sheep", "deer": "deer", "ox": "oxen", "cactus": "cacti",
    "octopus": "octopuses", "bison": "bison", "moose": "moose", "squid": "squid",
}


def pluralize(phrase: str) -> str:
    """English plural of the last word of ``phrase`` ("fishing boat" -> "fishing boats")."""
    head, _, last = phrase.rpartition(" ")
    low = last.lower()
    if low in IRREGULAR_PLURALS:
        plural = IRREGULAR_PLURALS[low]
    elif low.endswith(("s", "x", "z", "ch", "sh")):
        plural = last + "es"
    elif low.endswith("y") and len(low) > 1 and low[-2] not in "aeiou":
        plural = last[:-1] + "ies"
    elif low.endswith("o") and low in {"tomato", "potato", "hero", "mango", "volcano", "buffalo", "echo"}:
        plural = last + "es"
    else:
        plural = last + "s"
    return f"{head} {plural}" if head else plural


IRREGULAR_DEGREES = {
    "good": ("better", "best"), "bad": ("worse", "worst"), "far": ("farther", "farthest"),
    "many": ("more", "most"), "much": ("more", "most"), "few": ("fewer", "fewest"), "little": ("less", "least"),
    "kind": ("kinder", "kindest"), "fun": ("more fun", "most fun"),
}
YOUNG_ANIMALS = {
    "cat": "kitten", "dog": "puppy", "chicken": "chick", "duck": "duckling", "goose": "gosling",
    "swan": "cygnet", "horse": "foal", "cow": "calf", "water buffalo": "water buffalo calf", "goat": "kid goat",
    "sheep": "lamb", "pig": "piglet", "deer": "fawn", "lion": "lion cub", "tiger": "tiger cub", "bear": "bear cub",
    "fox": "fox cub", "wolf": "wolf pup", "owl": "owlet", "eagle": "eaglet", "rabbit": "baby rabbit",
    "kangaroo": "joey", "elephant": "baby elephant", "frog": "froglet", "fish": "fry", "seal": "seal pup",
    "panda": "panda cub", "monkey": "baby monkey", "bird": "baby bird",
}


RIDEABLE = {
    "horse", "pony", "donkey", "camel", "elephant", "dragon", "unicorn", "tiger", "buffalo", "motorbike", "motorcycle",
    "scooter", "bicycle", "bike", "car", "bus", "minibus", "train", "tram", "boat", "ship", "canoe", "raft", "plane",
    "airplane", "helicopter", "pedicab", "rickshaw", "taxi", "truck", "skateboard", "surfboard", "sled", "carriage",
    "cart", "spaceship", "rocket", "balloon", "escalator", "elevator", "ferry", "yacht", "jeep", "vespa",
}


def degree(adjective: str, kind: str, entry: Entry | None = None) -> str:
    """English comparative (kind "cmp": "taller") or superlative ("sup": "tallest") of an adjective."""
    if entry is not None and entry.get(kind):
        return entry.get(kind) or adjective
    words = adjective.split()
    if len(words) != 1:
        return ("more " if kind == "cmp" else "most ") + adjective
    w = adjective.lower()
    if w in IRREGULAR_DEGREES:
        return IRREGULAR_DEGREES[w][0 if kind == "cmp" else 1]
    suffix = "er" if kind == "cmp" else "est"
    syllables = len(re.findall(r"[aeiouy]+", w.rstrip("e") or w))
    if w.endswith("y") and len(w) > 2 and w[-2] not in "aeiou" and syllables <= 2:
        return w[:-1] + "i" + suffix
    if syllables > 1 or w.endswith(("ed", "ing", "ful", "ous", "ive", "al", "ic")):
        return ("more " if kind == "cmp" else "most ") + adjective
    if w.endswith("e"):
        return w + suffix[1:]
    if re.fullmatch(r"[^aeiou]*[aeiou][^aeiouwxy]", w):
        return w + w[-1] + suffix  # big -> bigger, hot -> hottest
    return w + suffix


def _graded(e: Entry, english: str, pos: str, kind: str) -> Entry:
    return Entry(e.source, english, pos, e.cls, e.flags | {kind}, tuple(v for v in e.values if v[0] != "after_verb"), e.area)


def indefinite_article(word: str) -> str:
    low = word.lower()
    if low.startswith(VOWEL_SOUND_EXCEPTIONS_AN):
        return "an"
    if low.startswith(VOWEL_SOUND_EXCEPTIONS_A):
        return "a"
    return "an" if low[:1] in set("aeiou") else "a"


# --------------------------------------------------------------------------- grammar

@dataclass
class NP:
    """A noun phrase being built: determiner, modifiers, head; rendered in English order."""

    det: str = ""
    plural: bool = False
    head: str | None = None
    head_entry: Entry | None = None
    head_kind: str = ""
    mods: list[tuple[int, int, str]] = field(default_factory=list)
    pending_adv: str = ""
    article: bool = False
    cls_noun: str = ""
    position: int = 0
    title: str = ""  # "Lake {}" waiting for its name
    joiner: str = ""  # "and"/"or" joining the next adjective to the last one
    after_prep: bool = False  # a body part after a preposition is definite: "on the back"

    @property
    def empty(self) -> bool:
        return self.head is None and not self.mods and not self.det and not self.cls_noun

    def add_mod(self, order: int, text: str) -> None:
        if self.pending_adv:
            text = f"{self.pending_adv} {text}"
            self.pending_adv = ""
        self.position += 1
        self.mods.append((order, self.position, text))

    def render(self) -> str:
        head = self.head
        entry = self.head_entry
        flags = entry.flags if entry else frozenset()
        if head is None and self.cls_noun:
            head = self.cls_noun
        if head is not None and self.plural and self.head_kind == "lex" and not (flags & {"mass", "plural"}):
            head = (entry.get("pl") if entry else None) or pluralize(head)
        mods = [t for _, _, t in sorted(self.mods, key=lambda m: (m[0], -m[1]))]
        words = [*mods, head] if head is not None else mods
        if self.pending_adv:
            words.append(self.pending_adv)
        text = " ".join(w for w in words if w)
        det = self.det
        if not det and self.article and text and head is not None and self.head_kind == "lex" and entry is not None:
            if "the" in flags or self.after_prep and "body" in flags:
                det = "the"
            elif entry.pos == "n" and not self.plural and not (flags & {"mass", "plural"}):
                det = indefinite_article(text)
        return f"{det} {text}".strip() if det else text


class GlossaryTranslator:
    """Translate Indonesian prompt text with the glossary; English words pass through."""

    name = "glossary"

    def __init__(self, lexicon: Lexicon | None = None) -> None:
        self.lex = lexicon or Lexicon.default()
        self._regional: dict[str, GlossaryTranslator] = {}
        self._glosses: dict[str, str] | None = None

    # -- public
    def translate(self, texts: list[str], langs: list[str] | None = None) -> list[str]:
        langs = langs or ["id"] * len(texts)
        return [self._for(lang).translate_text(t) for t, lang in zip(texts, langs)]

    def _for(self, lang: str) -> GlossaryTranslator:
        """This translator with a regional language's senses (the same one for Indonesian)."""
        if lang in ("id", "mixed", "en", "und") or self.lex is not Lexicon.default():
            return self
        regional = Lexicon.for_language(lang)
        if regional is self.lex:
            return self
        cached = self._regional.get(lang)
        if cached is None:
            cached = self._regional[lang] = GlossaryTranslator(regional)
        return cached

    def translate_text(self, text: str) -> str:
        """Translate one plain text phrase (no A1111 syntax inside)."""
        lead = text[: len(text) - len(text.lstrip())]
        trail = text[len(text.rstrip()):]
        core = text.strip()
        if not core:
            return text
        toks = self.lex_tokens(core)
        return lead + self.render(toks) + trail

    def unknown_words(self, text: str, lang: str = "id") -> list[str]:
        """Words of ``text`` the glossary does not know: kept in place and reported (never reordered)."""
        return [t.text for t in self._for(lang).lex_tokens(text.strip()) if t.kind == "unk"]

    def glosses(self) -> dict[str, str]:
        """Culture words with an English head noun: "angkot minibus" -> "angkot" (gloss budgeting)."""
        if self._glosses is None:
            self._glosses = {
                e.english: e.source for e in self.lex.entries
                if e.get("note") and e.english.lower().startswith(e.source + " ") and len(e.english) > len(e.source)
            }
        return self._glosses

    def explain(self, text: str) -> list[str]:
        """Notes for culture words in ``text`` ("kebaya: traditional Indonesian blouse")."""
        notes = []
        for tok in self.lex_tokens(text):
            for e in tok.entries[:1]:
                note = e.get("note")
                if note:
                    notes.append(f"{e.source}: {note}")
        return notes

    # -- lexical stage
    def lex_tokens(self, text: str) -> list[Tok]:
        raw = TOKEN_RE.findall(text)
        toks: list[Tok] = []
        i = 0
        while i < len(raw):
            word = raw[i]
            if word in ("AND", "BREAK"):  # A1111 keywords that may sit inside a phrase
                toks.append(Tok(word, "punct"))
                i += 1
                continue
            if not word[0].isalpha():
                if re.fullmatch(r"\d+", word):
                    toks.append(Tok(word, "num"))
                elif word[0].isdigit():
                    toks.append(Tok(word, "en"))
                else:
                    toks.append(Tok(word, "punct"))
                i += 1
                continue
            graded = self._graded(raw, i)
            if graded is not None:
                n, tok = graded
                toks.append(tok)
                i += n
                continue
            if word.lower() in ("naik", "menaiki", "mengendarai", "menunggangi") and self._rideable(raw, i + 1):
                toks.append(Tok(word, "lex", [Entry(word.lower(), "riding", "v")]))  # naik kuda: riding, not rising
                i += 1
                continue
            young = self._young(raw, i)
            if young is not None:
                toks.append(young)
                i += 2
                continue
            match = None
            for n in range(min(self.lex.max_words, len(raw) - i), 1, -1):
                words = raw[i : i + n]
                if not all(w[0].isalpha() for w in words):
                    continue
                found = self.lex.lookup(" ".join(words))
                last = words[-1].lower()
                if not found and last.endswith(("nya", "ku", "mu")):  # buah hatinya: buah hati + -nya
                    stem = last[: -3 if last.endswith("nya") else -2]
                    found = self.lex.lookup(" ".join([*words[:-1], stem])) if len(stem) >= 3 else []
                if found and not (n > 2 and all(e.pos == "prep" for e in found) and self._noun_goes_on(raw, i + n)):
                    match = (n, found)
                    break
            if match:
                n, found = match
                toks.append(Tok(" ".join(raw[i : i + n]), "lex", found))
                i += n
                continue
            ber = self._ber_phrase(raw, i)
            if ber is not None:
                n, tok = ber
                toks.append(tok)
                i += n
                continue
            if i > 0 and raw[i - 1] in ("a", "an", "the") and word.lower() in self.lex.english_words:
                toks.append(Tok(word, "en"))  # "a cat": English after an English article ("cat" is also "paint")
                i += 1
                continue
            tok = analyze_word(word, self.lex)
            if tok is not None and tok.affix == "ter" and all(e.pos == "adj" for e in tok.entries):
                adj = tok.entries[0]  # tertinggi: the highest
                tok = Tok(word, "lex", [_graded(adj, degree(adj.english, "sup", adj), "adj", "sup")], affix="ter")
            if tok is None:
                low = word.lower()
                if low in self.lex.english_words or low in english_words():
                    tok = Tok(word, "en")
                elif word[0].isupper() or toks and toks[-1].kind == "lex" and toks[-1].entries[0].get("title"):
                    tok = Tok(word, "name")  # "gunung singgalang": a name after a title word, not an unknown word
                else:
                    tok = Tok(word, "unk")
            toks.append(tok)
            i += 1
        # consecutive English words stay together, in their own order ("pixel art", "golden retriever")
        merged: list[Tok] = []
        for tok in toks:
            last = merged[-1] if merged else None
            if last is not None and {tok.kind, last.kind} <= {"en", "unk"} and "en" in {tok.kind, last.kind}:
                merged[-1] = Tok(last.text + " " + tok.text, "en")
            else:
                merged.append(tok)
        return merged

    def _graded(self, raw: list[str], i: int) -> tuple[int, Tok] | None:
        """lebih/jauh lebih/paling + adjective: "lebih tinggi dari" -> "taller than", "paling besar" -> "the biggest"."""
        low = [w.lower() for w in raw]
        j, much = i, False
        if low[j] == "jauh" and j + 1 < len(raw) and low[j + 1] == "lebih":
            j, much = j + 1, True
        kind = {"lebih": "cmp", "paling": "sup"}.get(low[j])
        if kind is None or j + 1 >= len(raw) or not raw[j + 1][0].isalpha():
            return None
        word = low[j + 1]
        if word in ("banyak", "sedikit"):  # lebih banyak orang: more people; lebih sedikit: fewer
            english = {("cmp", "banyak"): "more", ("sup", "banyak"): "the most", ("cmp", "sedikit"): "fewer",
                       ("sup", "sedikit"): "the fewest"}[(kind, word)]
            return j + 2 - i, Tok(" ".join(raw[i : j + 2]), "lex", [Entry(word, english, "det", flags=frozenset({"pl"}))])
        tok = analyze_word(raw[j + 1], self.lex)
        adj = tok.pick("adj") if tok is not None else None
        if adj is None:
            return None
        english = degree(adj.english, kind, adj)
        if much:
            english = "much " + english
        end = j + 2
        if kind == "cmp" and end < len(raw) and low[end] in ("dari", "daripada"):
            english += " than"  # the comparison follows the noun: "a building taller than a mountain"
            end += 1
            if end < len(raw) and low[end] in ("biasanya", "sebelumnya"):
                english += " usual" if low[end] == "biasanya" else " before"
                end += 1
            return end - i, Tok(" ".join(raw[i:end]), "lex", [_graded(adj, english, "v", kind)])
        return end - i, Tok(" ".join(raw[i:end]), "lex", [_graded(adj, english, "adj", kind)])

    def _rideable(self, raw: list[str], k: int) -> bool:
        """Whether ``raw[k]`` starts a vehicle or a mount (the sense of "naik" depends on its object)."""
        if k >= len(raw) or not raw[k][0].isalpha():
            return False
        for n in range(min(3, len(raw) - k), 0, -1):
            found = self.lex.lookup(" ".join(raw[k : k + n]))
            if found:
                return any(e.pos == "n" and (e.english.split()[-1] in RIDEABLE or e.english in RIDEABLE) for e in found)
        tok = analyze_word(raw[k], self.lex)
        return tok is not None and any(e.pos == "n" and e.english.split()[-1] in RIDEABLE for e in tok.entries)

    def _young(self, raw: list[str], i: int) -> Tok | None:
        """anak + animal is the young animal: anak bebek -> duckling (when no set phrase says otherwise)."""
        if raw[i].lower() != "anak" or i + 1 >= len(raw) or self.lex.lookup(f"{raw[i]} {raw[i + 1]}".lower()):
            return None
        tok = analyze_word(raw[i + 1], self.lex)
        animal = next((e for e in tok.entries if e.pos == "n" and e.area == "animals"), None) if tok else None
        if animal is None:
            return None
        english = YOUNG_ANIMALS.get(animal.english, f"baby {animal.english}")
        entry = Entry(f"anak {animal.source}", english, "n", flags=animal.flags - {"mass"}, area="animals")
        return Tok(f"{raw[i]} {raw[i + 1]}", "lex", [entry], plural=tok.plural if tok else False)

    def _noun_goes_on(self, raw: list[str], k: int) -> bool:
        """Whether ``raw[k]`` continues a noun that a set phrase would cut off.

        "di bawah pohon" means "under a tree", but in "di bawah pohon beringin" the tree is a
        banyan tree: the set phrase must give way to "di bawah" + the longer noun phrase.
        """
        if k >= len(raw) or not raw[k][0].isalpha() or raw[k] in ("AND", "BREAK"):
            return False
        tok = analyze_word(raw[k], self.lex)
        if tok is None:
            return not raw[k][0].isupper() and raw[k].lower() not in english_words()
        return tok.entries[0].pos in ("n", "adj", "name") or tok.entries[0].source == "yang"

    def _ber_phrase(self, raw: list[str], i: int) -> tuple[int, Tok] | None:
        """ber- on the first word of a phrase: "berbaju zirah" -> ber + "baju zirah"."""
        word = raw[i].lower()
        if not word.startswith("ber") or len(word) < 5:
            return None
        root = word[3:]
        for n in range(min(self.lex.max_words, len(raw) - i), 1, -1):
            words = raw[i + 1 : i + n]
            if not all(w[0].isalpha() for w in words):
                continue
            found = [e for e in self.lex.lookup(" ".join([root, *words])) if e.pos == "n"]
            if found:
                return n, Tok(" ".join(raw[i : i + n]), "lex", found, affix="ber")
        # "berjenggot" is "bearded", but "berjenggot putih" is "with a white beard", not "bearded white"
        body = [e for e in self.lex.lookup(root) if e.pos == "n" and "body" in e.flags]
        if body and i + 1 < len(raw) and raw[i + 1][0].isalpha():
            nxt = analyze_word(raw[i + 1], self.lex)
            if nxt is not None and nxt.entries[0].pos == "adj":
                return 1, Tok(raw[i], "lex", body, affix="ber")
        return None

    # -- grammar stage
    def render(self, toks: list[Tok]) -> str:
        """Turn looked-up tokens into English: noun phrases in English order, verbs as "-ing"."""
        out: list[str] = []
        np = NP()
        prev = ""  # role of the previous token: num, det, cls, n, adj, adv, v, prep, conj, stop

        last_head = ""  # head of the last finished noun phrase in this comma segment (the subject of a verb)
        body_with = False  # inside "with <body part>": a further body part joins with "and"

        def flush(article: bool = False) -> None:
            nonlocal np, last_head
            if np.head:
                last_head = np.head
            if not np.empty:
                out.append(np.render())
            elif np.pending_adv:
                out.append(np.pending_adv)
            np = NP(article=article)

        def locative(j: int) -> str | None:
            """on/at/in wanted by the first noun after a "sel" preposition."""
            for t in toks[j:]:
                if t.kind != "lex":
                    return None
                e = t.pick("n")
                if e is not None:
                    loc = sorted(e.flags & LOCATIVE)
                    return loc[0] if loc else None
                if t.pick("v", "prep", "conj"):
                    return None
            return None

        def start_det(det: str, plural: bool) -> None:
            """Begin a new noun phrase with a determiner or number ("dua" -> "two", plural)."""
            head = np.head_entry
            if head is not None and "of" in head.flags:
                flush(article=False)
                out.append("of")
            elif not np.empty:
                flush(article=np.article)
            np.det = det
            np.plural = plural

        for j, tok in enumerate(toks):
            if tok.kind == "punct":
                flush()
                out.append(tok.text)
                prev, last_head, body_with = "punct", "", False
                continue
            if tok.kind == "num":
                start_det(tok.text, tok.text != "1")
                prev = "num"
                continue
            if tok.kind == "unk":
                # an unknown word stays exactly where it was: nothing is reordered around it
                verbish = bool(UNKNOWN_VERB.match(tok.text.lower()))
                flush(article=verbish)
                out.append(tok.text)
                prev = "v" if verbish else "unk"
                continue
            if tok.kind in ("en", "name", "unk"):
                self._add_word(np, tok.text, tok.kind)
                prev = "n"
                continue

            entries = tok.entries
            cls = tok.pick("cls")
            if cls is not None and prev in ("num", "det"):
                if "noun" in cls.flags:
                    np.cls_noun = cls.english
                prev = "cls"
                continue
            if cls is not None:
                entries = [e for e in entries if e.pos != "cls"] or entries
            e = entries[0]
            noun = next((x for x in entries if x.pos in ("n", "name")), None)
            adj = next((x for x in entries if x.pos == "adj"), None)
            verb = next((x for x in entries if x.pos == "v"), None)

            if e.pos == "num" or (e.pos == "det" and (np.head is None or noun is None)):
                start_det(e.english, "pl" in e.flags)
                prev = e.pos
                continue
            if e.pos == "stop":
                prev = "stop"
                continue
            if e.pos == "adv":
                if "post" in e.flags and np.mods:
                    order, pos, text = np.mods[-1]
                    np.mods[-1] = (order, pos, f"{e.english} {text}")
                elif "post" in e.flags and np.empty and out:
                    out[-1] = f"{out[-1]} {e.english}" if prev == "v" else f"{e.english} {out[-1]}"
                else:
                    np.pending_adv = (np.pending_adv + " " + e.english).strip()
                prev = "adv"
                continue
            if e.pos == "conj":
                if e.english in ("and", "or") and prev == "adj" and np.head is not None and self._adj_only(toks, j + 1):
                    np.joiner = e.english  # "lampu neon pink dan biru" -> "pink and blue neon lights"
                    prev = "conj"
                    continue
                keep_article = np.article
                flush()
                if e.english:
                    out.append(e.english)
                np.article = keep_article and e.english == "and"
                prev = "conj"
                continue
            if e.pos in ("prep", "v", "conj"):
                body_with = False
            if e.pos == "prep":
                english = e.english
                if e.get("above"):
                    head = (np.head or last_head).lower()
                    verb_before = prev == "v" and out and bool(ABOVE_AFTER_VERBS & set(out[-1].split()))
                    if head in OVER_HEADS:
                        english = e.get("over") or english
                    elif verb_before or head in ABOVE_HEADS:
                        english = e.get("above") or english
                flush()
                if "sel" in e.flags:
                    loc = locative(j + 1)
                    if loc:
                        english = e.get(loc) or loc
                if english:
                    out.append(english)
                np.article = np.after_prep = True
                prev = "prep"
                continue
            if tok.affix == "ber" and noun is not None and verb is None:
                joiner = "and" if body_with and "body" in noun.flags and np.head_entry and "body" in np.head_entry.flags else ""
                flush()
                wear = "wear" in noun.flags
                out.append(joiner or ("wearing" if wear else "with"))
                np.article = True  # "with a beard", "with pink hair", "wearing a hat"
                body_with = "body" in noun.flags
                self._set_head(np, tok, noun)
                prev = "n"
                continue
            if e.pos == "v" or (verb is not None and noun is None and adj is None):
                v = verb or e
                if v.get("adj") and not any(t.kind != "punct" for t in toks[j + 1 : j + 2]):
                    np.add_mod(ADJ_ORDER["quality"], v.get("adj") or "")  # "gelas penuh" -> "full glass"
                    prev = "adj"
                    continue
                flush(article=True)
                if v.english:
                    out.append(v.english)
                if "pl" in v.flags:  # "penuh bunga" -> "full of flowers"
                    np.article, np.plural = False, True
                prev = "v"
                continue

            if prev == "v" and out and adj is not None and adj.get("after_verb"):
                out[-1] = f"{out[-1]} {adj.get('after_verb')}"  # "terbang tinggi" -> "flying high"
                continue
            # nouns, names and adjectives
            if np.title and tok.text[:1].isupper():
                self._add_word(np, tok.text, "name")
                prev = "n"
                continue
            if np.title and noun is not None and noun.pos == "name":
                np.head = np.title.replace("{}", noun.english)
                np.head_kind, np.head_entry, np.title = "name", None, ""
                prev = "n"
                continue
            if np.head is None:
                if noun is not None and not (adj is not None and e is adj and np.mods == [] and prev == "v"):
                    self._set_head(np, tok, noun)
                    prev = "n"
                else:
                    a = adj or e
                    np.add_mod(a.order, a.english)
                    if "sup" in a.flags and not np.det:
                        np.det = "the"
                    prev = "adj"
                continue
            if adj is not None and (e is adj or noun is None or noun.pos != "name" and prev in ("adj", "adv")):
                food = np.head_entry is not None and np.head_entry.area == "food"
                text = (food and adj.get("food")) or adj.english  # "susu coklat" -> "chocolate milk"
                if np.joiner and np.mods:
                    order, pos, last = np.mods[-1]
                    np.mods[-1] = (order, pos, f"{last} {np.joiner} {text}")
                    np.joiner = ""
                else:
                    np.add_mod(adj.order, text)
                if "sup" in adj.flags and not np.det:
                    np.det = "the"
                prev = "adj"
                continue
            assert noun is not None
            head = np.head_entry
            if head is not None and "of" in head.flags and self._complement(noun):
                flush()
                out.append("of")
                np.article = True
                self._set_head(np, tok, noun)
                prev = "n"
                continue
            if head is not None and "body" in noun.flags and (_is_being(head) or body_with and "body" in head.flags):
                # "cewek rambut biru mata merah" -> "girl with blue hair and red eyes"
                joiner = "and" if body_with and "body" in head.flags else "with"
                flush()
                out.append(joiner)
                np.article, body_with = True, True
                self._set_head(np, tok, noun)
                prev = "n"
                continue
            if tok.plural:
                np.plural = True
            np.add_mod(noun.order, noun.modifier)
            prev = "n"
        flush()
        return _join(out)

    @staticmethod
    def _adj_only(toks: list[Tok], k: int) -> bool:
        """Whether ``toks[k]`` is an adjective that cannot be a noun (it joins the one before)."""
        if k >= len(toks) or toks[k].kind != "lex":
            return False
        pos = {e.pos for e in toks[k].entries}
        return "adj" in pos and not pos & {"n", "name"} and (k + 1 >= len(toks) or toks[k + 1].kind == "punct")

    @staticmethod
    def _complement(noun: Entry) -> bool:
        """Whether a noun after a "photo"/"bowl" head starts "of ..." rather than modifying it."""
        return noun.pos == "n" and noun.order == ADJ_ORDER["type"] and "style" not in noun.flags

    @staticmethod
    def _add_word(np: NP, text: str, kind: str) -> None:
        """A word kept as written (English, a name, or unknown) joins the current phrase."""
        if np.title and kind != "en":
            np.head = np.title.replace("{}", text[:1].upper() + text[1:])
            np.head_kind, np.head_entry, np.title = "name", None, ""
        elif np.head is None:
            np.head, np.head_kind = text, kind
        else:
            np.add_mod(ADJ_ORDER["origin" if kind == "name" else "type"], text)

    @staticmethod
    def _set_head(np: NP, tok: Tok, entry: Entry) -> None:
        title = entry.get("title")
        np.head = entry.english
        np.head_entry = entry
        np.head_kind = "lex"
        if tok.plural:
            np.plural = True
        if title:
            np.title = title


def _is_being(entry: Entry) -> bool:
    """A person or an animal, which body parts after it describe ("cewek rambut biru")."""
    return entry.area in ("people", "animals") and entry.pos == "n" and not entry.flags & {"body", "of"}


def _join(parts: list[str]) -> str:
    text = ""
    for part in parts:
        if not part:
            continue
        if not text or part[0] in NO_SPACE_BEFORE or text[-1] in NO_SPACE_AFTER:
            text += part
        else:
            text += " " + part
    text = re.sub(r"\s+", " ", text).strip()
    # gloss budget: a culture word's English head noun is not said twice ("kebaya blouse blouse")
    text = re.sub(r"\b([a-z]{3,}) \1\b", r"\1", text)
    return re.sub(r"\b([Aa]n?) (\w+)", lambda m: _article(m.group(1), m.group(2)), text)


def _article(article: str, word: str) -> str:
    wanted = indefinite_article(word)
    if article[0].isupper():
        wanted = wanted.capitalize()
    return f"{wanted} {word}"


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Common English prompt words (data/words_en.txt), beyond the glossary's English side."""
    path = DATA_DIR / "words_en.txt"
    if not path.exists():
        return frozenset()
    words = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            words.update(w.lower() for w in line.split())
    return frozenset(words)
