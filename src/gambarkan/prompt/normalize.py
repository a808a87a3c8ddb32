"""Chat and colloquial Indonesian -> the standard spelling the glossary knows, before lookup.

People type prompts as they chat: abbreviations (``yg``, ``udh``, ``dpn``), negations
(``ga``, ``nggak``), Jakarta slang (``gue``, ``cakep``), colloquial verbs (``ngopi``,
``nungguin``), digit reduplication (``rumah2``), letters repeated for emphasis (``lucuuu``)
and typos (``anjign``). Each is rewritten to one standard form, and every rewrite is
recorded (shown per segment in ``gambarkan translate --json``). The rules are data
(``data/normalize.tsv``) plus a few safe patterns; a typo is repaired only when exactly one
known word is one edit away. English words, booru tags and names are never touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from gambarkan.prompt.backends.glossary import DATA_DIR, Lexicon, analyze_word, english_words

WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
REDUP = re.compile(r"^([^\W\d_]+)2(an|nya|ku|mu)?$")
MIN_TYPO_LEN = 5
PREFIXES = ("ber", "ter", "di", "me", "ke")


@dataclass(frozen=True)
class Change:
    """One rewrite: the word as written, its standard form, and why (abbr, neg, slang, redup ...)."""

    written: str
    standard: str
    kind: str

    def to_dict(self) -> dict[str, str]:
        return {"written": self.written, "standard": self.standard, "kind": self.kind}


@dataclass
class Normalized:
    """A phrase in standard spelling and the rewrites that got it there."""

    text: str
    changes: list[Change] = field(default_factory=list)


@lru_cache(maxsize=1)
def table() -> dict[str, tuple[str, str]]:
    """``data/normalize.tsv``: written form -> (standard form, kind)."""
    out: dict[str, tuple[str, str]] = {}
    for lineno, line in enumerate((DATA_DIR / "normalize.tsv").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 3:
            raise ValueError(f"normalize.tsv:{lineno}: expected 3 tab-separated columns, got {len(cols)}")
        out[cols[0].strip().lower()] = (cols[1].strip(), cols[2].strip())
    return out


@lru_cache(maxsize=1)
def booru_tags() -> frozenset[str]:
    """Danbooru-style tags (``data/booru_tags.txt``): English, never translated or repaired."""
    path = DATA_DIR / "booru_tags.txt"
    tags: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip().lower()
        if line and not line.startswith("#"):
            tags.add(line.replace("_", " "))
    return frozenset(tags)


@lru_cache(maxsize=1)
def _booru_words() -> frozenset[str]:
    return frozenset(w for tag in booru_tags() for w in tag.split() if w.isalpha() and len(w) > 2)


def is_english(low: str, lex: Lexicon) -> bool:
    return low in lex.english_words or low in english_words() or low in _booru_words()


def known(low: str, lex: Lexicon) -> bool:
    """Whether the glossary understands ``low`` (as written or through its affix rules)."""
    return bool(lex.lookup(low)) or low in lex.source_words or analyze_word(low, lex) is not None


class Normalizer:
    """Rewrites the words of one plain-text phrase to standard Indonesian (see module doc)."""

    def __init__(self, lex: Lexicon | None = None) -> None:
        self.lex = lex or Lexicon.default()
        self._vocab: dict[str, set[str]] | None = None

    # -- public
    def normalize(self, text: str, typos: bool = True) -> Normalized:
        """Normalise ``text``; ``typos=False`` skips typo repair (regional lines, English phrases)."""
        changes: list[Change] = []
        matches = list(WORD.finditer(text))
        words = [m.group() for m in matches]
        new = [self._word(w, words, i, changes) for i, w in enumerate(words)]
        for i in range(len(new) - 1):  # "kupu kupu" typed without its hyphen
            low = new[i].lower()
            pair = f"{low}-{low}"
            if low == new[i + 1].lower() and low.isalpha() and not self.lex.lookup(f"{low} {low}") and known(pair, self.lex):
                changes.append(Change(f"{words[i]} {words[i + 1]}", pair, "redup"))
                new[i], new[i + 1] = pair, ""
        if typos and any(self._anchor(w) for w in new):
            new = [self._typo(w, changes) if w == old else w for w, old in zip(new, words)]
        if not changes:
            return Normalized(text)
        parts, last = [], 0
        for m, w in zip(matches, new):
            gap = text[last : m.start()]
            parts += [gap if w or not gap.isspace() else "", w]
            last = m.end()
        parts.append(text[last:])
        return Normalized("".join(parts), changes)

    # -- one word
    def _word(self, word: str, words: list[str], i: int, changes: list[Change]) -> str:
        low = word.lower()
        rows = table()
        if low in rows:
            standard, kind = rows[low]
            shared = kind.endswith("+en") or is_english(low, self.lex)
            if not (shared and not self._indonesian_context(words, i)):
                kind = kind.removesuffix("+en")
                changes.append(Change(word, standard, kind))
                return standard
        if word[:1].isupper() or any(c.isdigit() for c in low) and not REDUP.match(low):
            return word
        if m := REDUP.match(low):
            base = self._base(m.group(1))
            if base is None:
                return word
            standard = f"{base}-{base}{m.group(2) or ''}"
            changes.append(Change(word, standard, "redup"))
            return standard
        if known(low, self.lex) or is_english(low, self.lex):
            return word
        if (squeezed := self._squeeze(low)) is not None:
            changes.append(Change(word, squeezed, "repeat"))
            return squeezed
        if (spelled := self._spelling(low)) is not None:
            changes.append(Change(word, spelled, "spelling"))
            return spelled
        if (verb := self._colloquial(low)) is not None:
            changes.append(Change(word, verb, "affix"))
            return verb
        return word

    def _base(self, low: str) -> str | None:
        """The standard form of a reduplicated word's base ("malem" -> "malam"), if understood."""
        if low in table() and " " not in table()[low][0]:
            return table()[low][0]
        if known(low, self.lex):
            return low
        return self._squeeze(low)

    def _indonesian_context(self, words: list[str], i: int) -> bool:
        """A word English also has ("item", "pas") is slang only between Indonesian words."""
        near = [w.lower().rstrip("2") for w in words[max(0, i - 1) : i] + words[i + 1 : i + 2]]
        return any(known(w, self.lex) and not any(e.english.lower() == w for e in self.lex.lookup(w)) for w in near)

    def _squeeze(self, low: str) -> str | None:
        """Letters repeated for emphasis ("lucuuu", "kencangg"): the one known word they stand for."""
        if not re.search(r"(.)\1", low):
            return None
        runs = re.findall(r"((.)\2*)", low)
        options = [""]
        for run, ch in runs:
            forms = {ch} if len(run) == 1 else {ch, ch * 2}
            options = [o + f for o in options for f in forms]
            if len(options) > 64:
                return None
        found = sorted({o for o in options if o != low and (known(o, self.lex) or o in table())}, key=lambda o: (-len(o), o))
        if not found:
            return None
        best = found[0]
        return table()[best][0] if best in table() else best

    def _spelling(self, low: str) -> str | None:
        """Jakarta spellings: a in the last syllable said as e ("cepet", "deket"), a dropped h ("ujan", "itam")."""
        if len(low) < 4:
            return None
        m = re.fullmatch(r"(.*[^aeiou])e([^aeiou]{1,2})", low)
        if m and known(cand := f"{m.group(1)}a{m.group(2)}", self.lex) and cand not in english_words():
            return cand
        for cand in ("h" + low, low[:1] + "h" + low[1:]) if low[0] in "aeiou" else ():
            if self.lex.lookup(cand):
                return cand
        return None

    def _colloquial(self, low: str) -> str | None:
        """Colloquial verb forms: ng-/nge-/ny-/m-/n- for meN-, -in for -kan/-i ("ngopi", "nungguin")."""
        if len(low) < 4:
            return None
        stems = [low]
        if low.endswith("in"):
            stems += [low[:-2] + "kan", low[:-2] + "i", low[:-2]]
        for stem in stems:
            for cand in self._prefixed(stem):
                if cand != low and self._is_verb(cand):
                    return cand
        return None

    @staticmethod
    def _prefixed(stem: str) -> list[str]:
        if stem.startswith("nge") and len(stem) > 5:
            return [stem, *_men(stem[3:]), "menge" + stem[3:], stem[3:]]
        if stem.startswith("ng"):
            return [stem, "meng" + stem[2:], "k" + stem[2:], stem[2:]]
        if stem.startswith("ny"):
            return [stem, "meny" + stem[2:], "s" + stem[2:], "c" + stem[2:]]
        if stem.startswith("m") and not stem.startswith("mem"):
            return [stem, "me" + stem, "p" + stem[1:]]  # meluk -> memeluk
        if stem.startswith("n") and not stem.startswith("men"):
            return [stem, "me" + stem, "t" + stem[1:]]  # nari -> menari, nembus -> menembus
        return [stem]

    def _is_verb(self, cand: str) -> bool:
        found = self.lex.lookup(cand)
        if found:
            return any(e.pos == "v" for e in found)
        tok = analyze_word(cand, self.lex)
        return tok is not None and any(e.pos == "v" for e in tok.entries)

    # -- typos
    def _anchor(self, word: str) -> bool:
        """A known Indonesian word: typo repair only runs in phrases that are clearly Indonesian."""
        low = word.lower()
        return any(known(w, self.lex) and not is_english(w, self.lex) for w in low.split())

    def _typo(self, word: str, changes: list[Change]) -> str:
        low = word.lower()
        if len(low) < MIN_TYPO_LEN or word[:1].isupper() or not low.isalpha():
            return word
        if known(low, self.lex) or is_english(low, self.lex) or low in table():
            return word
        fixes = self._near(low)
        if low.startswith(PREFIXES):  # derived forms count too: "bermabut" is near "berkabut" and "berambut", so it is ambiguous
            for prefix in PREFIXES:
                root = low[len(prefix):]
                if low.startswith(prefix) and len(root) >= MIN_TYPO_LEN - 1:
                    roots = {r for r in self._near(root) if analyze_word(prefix + r, self.lex) is not None}
                    fixes |= {prefix + r for r in roots}
            swaps = {low[:i] + low[i + 1] + low[i] + low[i + 2 :] for i in range(len(low) - 1)}
            drops = {low[:i] + low[i + 1 :] for i in range(len(low))}
            fixes |= {w for w in swaps | drops if w != low and analyze_word(w, self.lex) is not None}
        if len(fixes) != 1:
            return word  # unknown or ambiguous: kept as written (and reported as untranslated)
        fixed = fixes.pop()
        changes.append(Change(word, fixed, "typo"))
        return fixed

    def _near(self, low: str) -> set[str]:
        """Known single words one edit (insert, delete, substitute, swap neighbours) from ``low``."""
        index = self._index()
        found: set[str] = set(index.get(low, ()))  # a letter missing from ``low``
        for i in range(len(low)):
            d = low[:i] + low[i + 1 :]
            found |= index.get(d, set()) if d in index else set()
        found = {w for w in found if _one_edit(low, w)}
        for i in range(len(low) - 1):
            t = low[:i] + low[i + 1] + low[i] + low[i + 2 :]
            if t != low and t in index and t in index[t]:
                found.add(t)
        return found

    def _index(self) -> dict[str, set[str]]:
        if self._vocab is None:
            vocab = {
                k for k, es in self.lex.by_source.items()
                if " " not in k and "-" not in k and len(k) >= MIN_TYPO_LEN - 1 and k.isalpha()
                and any(e.area != "regional" for e in es) and k not in english_words() and k not in _booru_words()
            }
            index: dict[str, set[str]] = {}
            for w in vocab:
                index.setdefault(w, set()).add(w)
                for i in range(len(w)):
                    index.setdefault(w[:i] + w[i + 1 :], set()).add(w)
            self._vocab = index
        return self._vocab


def _men(root: str) -> list[str]:
    """The meN- forms a root could take (nasal assimilation): gambar -> menggambar, sapu -> menyapu."""
    forms = ["me" + root, "mem" + root, "men" + root, "meng" + root]
    first = {"s": "meny", "p": "mem", "t": "men", "k": "meng"}.get(root[:1])
    if first:
        forms.append(first + root[1:])
    return forms


_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_KEY = {ch: (r, c) for r, row in enumerate(_ROWS) for c, ch in enumerate(row)}


def _neighbours(x: str, y: str) -> bool:
    """Keys next to each other on a QWERTY keyboard (a slipped finger, not another word)."""
    if x not in _KEY or y not in _KEY:
        return False
    (r1, c1), (r2, c2) = _KEY[x], _KEY[y]
    return abs(r1 - r2) <= 1 and abs(c1 - c2) <= 1 and (r1, c1) != (r2, c2)


def _one_edit(a: str, b: str) -> bool:
    """One typo apart: a letter dropped or added, or one letter replaced by a neighbouring key
    (not the first letter). Any other replacement ("harga"/"warga", "udara"/"utara") is more
    often another real word than a typo, so it is never "repaired". Swaps are checked separately."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        return len(diff) == 1 and diff[0] > 0 and _neighbours(a[diff[0]], b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


@lru_cache(maxsize=1)
def default_normalizer() -> Normalizer:
    return Normalizer()


def normalize(text: str, typos: bool = True) -> Normalized:
    """Normalise one plain-text phrase with the default glossary (see ``Normalizer``)."""
    return default_normalizer().normalize(text, typos)
