"""Indonesian -> English prompt translation: syntax-aware, per segment, cached.

Only the plain text phrases of a prompt are translated (``prompt.syntax.text_segments``);
weights, ``<lora:...>`` tags, BREAK, brackets and commas stay exactly where they were.
English phrases are left as written. Each phrase is normalised first (chat spellings,
slang, typos: ``prompt.normalize``). Backends: glossary (offline, built in), marian, nllb,
google (opt-in), none. ``auto`` is a per-phrase hybrid: phrases the glossary fully
understands stay with the glossary, phrases with words it does not know go to Marian, which
``auto`` downloads once when the Hub can be reached; with no network (or ``--offline``) it is
the glossary alone, said once per process.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gambarkan.config import Settings
from gambarkan.errors import GambarkanError, InvalidRequestError, did_you_mean

TRANSLATORS = ("auto", "glossary", "marian", "nllb", "google", "none")
CACHED_ON_DISK = {"marian", "nllb", "google"}  # slow backends; the glossary is faster than a disk read


@dataclass
class Translation:
    """A prompt and its English version, with what was detected per phrase."""

    original: str
    english: str
    backend: str
    segments: list[tuple[str, str, str]] = field(default_factory=list)  # (text, lang, english)
    notes: list[str] = field(default_factory=list)
    untranslated: list[str] = field(default_factory=list)  # words kept as written because no backend knew them
    details: list[dict[str, Any]] = field(default_factory=list)  # per segment: normalized, changes, backend, untranslated

    @property
    def changed(self) -> bool:
        return self.english != self.original

    def to_dict(self) -> dict[str, Any]:
        """The ``gambarkan translate --json`` shape."""
        return {
            "original": self.original,
            "english": self.english,
            "backend": self.backend,
            "segments": [
                {"text": t, "lang": lang, "english": e, **(self.details[i] if i < len(self.details) else {})}
                for i, (t, lang, e) in enumerate(self.segments)
            ],
            "notes": list(self.notes),
            "untranslated": list(self.untranslated),
        }


# --------------------------------------------------------------------------- cache

class TranslationCache:
    """Phrase translations keyed by backend + text: an in-memory LRU, optionally backed by SQLite."""

    def __init__(self, maxsize: int = 4096, path: Path | None = None) -> None:
        self.maxsize = maxsize
        self.path = path
        self._mem: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, backend: str, text: str) -> str | None:
        key = (backend, text)
        with self._lock:
            if key in self._mem:
                self._mem.move_to_end(key)
                self.hits += 1
                return self._mem[key]
        value = self._disk_get(backend, text) if backend in CACHED_ON_DISK else None
        with self._lock:
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
                self._remember(key, value)
        return value

    def put(self, backend: str, text: str, english: str) -> None:
        with self._lock:
            self._remember((backend, text), english)
        if backend in CACHED_ON_DISK:
            self._disk_put(backend, text, english)

    def clear(self) -> None:
        with self._lock:
            self._mem.clear()
            self.hits = self.misses = 0

    def _remember(self, key: tuple[str, str], value: str) -> None:
        self._mem[key] = value
        self._mem.move_to_end(key)
        while len(self._mem) > self.maxsize:
            self._mem.popitem(last=False)

    def _connect(self) -> sqlite3.Connection | None:
        if self.path is None:
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=5)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("CREATE TABLE IF NOT EXISTS translations (backend TEXT, text TEXT, english TEXT, PRIMARY KEY (backend, text))")
            return con
        except sqlite3.Error:
            return None  # a broken or read-only cache never stops a translation

    def _disk_get(self, backend: str, text: str) -> str | None:
        con = self._connect()
        if con is None:
            return None
        try:
            row = con.execute("SELECT english FROM translations WHERE backend=? AND text=?", (backend, text)).fetchone()
            return row[0] if row else None
        except sqlite3.Error:
            return None
        finally:
            con.close()

    def _disk_put(self, backend: str, text: str, english: str) -> None:
        con = self._connect()
        if con is None:
            return
        try:
            with con:
                con.execute("INSERT OR REPLACE INTO translations VALUES (?, ?, ?)", (backend, text, english))
        except sqlite3.Error:
            pass
        finally:
            con.close()


_CACHES: dict[str, TranslationCache] = {}
_BACKENDS: dict[tuple[str, bool], Any] = {}
_LOCK = threading.Lock()


def cache_for(settings: Settings | None) -> TranslationCache:
    """The process-wide cache; on disk under ``settings.cache_dir`` when settings are given."""
    path = Path(settings.cache_dir) / "translations.sqlite" if settings is not None else None
    key = str(path or "")
    with _LOCK:
        if key not in _CACHES:
            _CACHES[key] = TranslationCache(path=path)
        return _CACHES[key]


# --------------------------------------------------------------------------- backends

def check_translator(name: str) -> str:
    """Validate a translator name; unknown names raise with suggestions."""
    low = (name or "auto").strip().lower()
    if low not in TRANSLATORS:
        hint = did_you_mean(low, TRANSLATORS) or "choose one of: " + ", ".join(TRANSLATORS)
        raise InvalidRequestError(f"unknown translator '{name}'", hint)
    return low


def get_backend(name: str, offline: bool = False) -> Any:
    """The backend object for ``name`` (one per process, so models load once)."""
    key = (name, offline)
    with _LOCK:
        if key in _BACKENDS:
            return _BACKENDS[key]
        if name == "glossary":
            from gambarkan.prompt.backends.glossary import GlossaryTranslator

            backend: Any = GlossaryTranslator()
        elif name == "marian":
            from gambarkan.prompt.backends.marian import MarianBackend

            backend = MarianBackend(offline=offline)
        elif name == "nllb":
            from gambarkan.prompt.backends.nllb import NllbBackend

            backend = NllbBackend(offline=offline)
        elif name == "google":
            from gambarkan.prompt.backends.google import GoogleBackend

            backend = GoogleBackend(offline=offline)
        else:
            raise InvalidRequestError(f"unknown translator '{name}'")
        _BACKENDS[key] = backend
        return backend


def reset_backends() -> None:
    """Forget loaded backends, cached translations and what was said once (tests, or after downloads)."""
    with _LOCK:
        _BACKENDS.clear()
        for cache in _CACHES.values():
            cache.clear()
        _SAID.clear()
        _HUB.clear()


_SAID: set[str] = set()  # notes that are said once per process ("auto: using the offline glossary ...")
_HUB: dict[str, bool] = {}  # whether the Hub answered, asked once per process


def _once(note: str) -> list[str]:
    with _LOCK:
        if note in _SAID:
            return []
        _SAID.add(note)
    return [note]


def _marian_local() -> bool:
    from gambarkan.prompt.backends.marian import weights_available

    return weights_available()


def _hub_reachable() -> bool:
    """Whether the Hugging Face Hub answers (asked once per process; HF_HUB_OFFLINE means no)."""
    with _LOCK:
        if "hub" in _HUB:
            return _HUB["hub"]
    from gambarkan.prompt.backends.marian import hub_reachable

    ok = hub_reachable()
    with _LOCK:
        _HUB["hub"] = ok
    return ok


def _auto_choice(offline: bool) -> tuple[str, bool, list[str]]:
    """(backend, per-phrase hybrid?, notes) for ``auto``: Marian when it is here or can be fetched."""
    if _marian_local():
        return "marian", True, _once("auto: using marian for phrases with words the glossary does not know")
    if not offline and _hub_reachable():
        from gambarkan.prompt.backends.marian import MODEL_ID, download

        try:
            download()
        except GambarkanError as exc:
            return "glossary", False, _once(f"auto: using the offline glossary (marian could not be downloaded: {exc.message})")
        return "marian", True, [f"auto: downloaded marian ({MODEL_ID}) once; it translates phrases with words the glossary does not know"]
    why = "offline mode" if offline else "no network"
    return "glossary", False, _once(
        f"auto: using the offline glossary ({why}; marian weights not downloaded; --translator marian downloads them once)"
    )


def _normalized(phrase: str) -> tuple[Any, str]:
    """The phrase in standard spelling, and the language of the phrase as written."""
    from gambarkan.prompt.language import REGIONAL, detect
    from gambarkan.prompt.normalize import Normalized, normalize

    lang = detect(phrase).lang
    if lang == "en":
        return Normalized(phrase), lang
    return normalize(phrase, typos=lang not in REGIONAL), lang


def _unknown_words(text: str, lang: str) -> list[str]:
    """Words of an Indonesian phrase the glossary does not know (kept as written, sent to Marian by auto)."""
    from gambarkan.prompt.backends.glossary import GlossaryTranslator

    glossary = get_backend("glossary")
    assert isinstance(glossary, GlossaryTranslator)
    return glossary.unknown_words(text, lang)


# --------------------------------------------------------------------------- public entry

def translate_prompt(text: str, translator: str = "auto", settings: Settings | None = None, *, offline: bool | None = None) -> Translation:
    """Translate the Indonesian phrases of an A1111 prompt to English, keeping its syntax.

    ``translator`` is one of TRANSLATORS. An unavailable explicit backend raises one
    GambarkanError; ``auto`` (and ``google`` when the network fails) fall back to the
    glossary and say so in ``notes``.
    """
    from gambarkan.prompt.language import detect
    from gambarkan.prompt.syntax import replace_text_segments, text_segments

    name = check_translator(translator)
    offline = bool(settings.offline if settings is not None and offline is None else offline)
    if name == "none" or not text.strip():
        return Translation(text, text, "none", [], [])
    phrases = text_segments(text)
    norms = [_normalized(p) for p in phrases]
    langs = [detect(n.text).lang if n.text != p else lang for p, (n, lang) in zip(phrases, norms)]
    todo = [i for i, p in enumerate(phrases) if _needs(langs[i])]
    if not todo:
        same = [{"normalized": p, "changes": [], "backend": "none", "untranslated": []} for p in phrases]
        segs = [(p, lang, p) for p, lang in zip(phrases, langs)]
        return Translation(text, text, "none", segs, ["already English: nothing to translate"], [], same)

    notes: list[str] = []
    backend_name = name
    hybrid = False
    if name == "auto":
        backend_name, hybrid, auto_notes = _auto_choice(offline)
        notes += auto_notes
    if backend_name == "nllb":
        from gambarkan.prompt.backends.nllb import LICENCE_NOTICE

        notes.append(LICENCE_NOTICE)

    cache = cache_for(settings)
    sources = [norms[i][0].text for i in todo]
    src_langs = [langs[i] for i in todo]
    unknown = [_unknown_words(t, lang) for t, lang in zip(sources, src_langs)]
    used = [backend_name] * len(todo)
    if hybrid:  # the glossary keeps what it fully understands; the rest goes to the neural backend
        used = [backend_name if unk else "glossary" for unk in unknown]
    english = [""] * len(todo)
    for group in dict.fromkeys(used):
        idx = [k for k, b in enumerate(used) if b == group]
        try:
            out = _run(group, [sources[k] for k in idx], [src_langs[k] for k in idx], cache, offline or name == "auto")
        except GambarkanError as exc:
            if group == "nllb" and "CC-BY-NC" not in str(exc):
                exc.message += "; note: " + notes[-1]  # the licence is shown even before the weights exist
            if name not in ("auto", "google") or group == "glossary":
                raise
            notes.append(f"{group} unavailable ({exc.message}); used the offline glossary instead")
            out = _run("glossary", [sources[k] for k in idx], [src_langs[k] for k in idx], cache, offline)
            for k in idx:
                used[k] = "glossary"
        for k, eng in zip(idx, out):
            english[k] = eng
    backends = list(dict.fromkeys(used))
    backend_name = backends[0] if len(backends) == 1 else "+".join(sorted(backends, key=lambda b: b != "glossary"))

    new_texts = list(phrases)
    for i, eng in zip(todo, english):
        new_texts[i] = eng
    _budget_glosses(new_texts, [i for i, b in zip(todo, used) if b == "glossary"])
    glossary_sources = [src for src, b in zip(sources, used) if b == "glossary"]
    if glossary_sources:
        notes += _culture_notes(glossary_sources)
    regional = sorted({lang for lang in src_langs if lang in ("jv", "su", "ban", "min")})
    if regional and "nllb" not in used:
        from gambarkan.prompt.language import REGIONAL

        names = ", ".join(REGIONAL[c] for c in regional)
        notes.append(f"some phrases look {names}; --translator nllb understands regional languages")
    untranslated: list[str] = []
    details: list[dict[str, Any]] = []
    where = dict(zip(todo, range(len(todo))))
    for i, p in enumerate(phrases):
        norm = norms[i][0]
        slot = where.get(i)
        left = unknown[slot] if slot is not None and used[slot] == "glossary" else []
        untranslated += [w for w in left if w not in untranslated]
        details.append({
            "normalized": norm.text,
            "changes": [c.to_dict() for c in norm.changes] if slot is not None else [],
            "backend": used[slot] if slot is not None else "none",
            "untranslated": left,
        })
    if untranslated:
        notes.append("kept as written (not in the glossary): " + ", ".join(untranslated))
    result = replace_text_segments(text, new_texts)
    segs = [(p, lang, e) for p, lang, e in zip(phrases, langs, new_texts)]
    return Translation(text, result, backend_name, segs, notes, untranslated, details)


def translate_pair(
    prompt: str, negative: str = "", translator: str = "auto", settings: Settings | None = None, *, offline: bool | None = None
) -> tuple[Translation, Translation]:
    """Translate a prompt and its negative prompt with the same backend choice."""
    first = translate_prompt(prompt, translator, settings, offline=offline)
    second = translate_prompt(negative, translator, settings, offline=offline)
    return first, second


def _needs(lang: str) -> bool:
    return lang not in ("en", "und")


def _run(backend_name: str, texts: list[str], langs: list[str], cache: TranslationCache, offline: bool) -> list[str]:
    """Translate ``texts`` with one backend, asking it only for phrases not cached."""
    out: list[str | None] = [cache.get(backend_name, t) for t in texts]
    missing = [i for i, v in enumerate(out) if v is None]
    if missing:
        backend = get_backend(backend_name, offline)
        fresh = backend.translate([texts[i] for i in missing], [langs[i] for i in missing])
        for i, eng in zip(missing, fresh):
            eng = eng.strip() or texts[i]
            cache.put(backend_name, texts[i], eng)
            out[i] = eng
    return [v if v is not None else "" for v in out]


def _budget_glosses(texts: list[str], indexes: list[int]) -> None:
    """A culture word's English head noun is said once per prompt ("angkot minibus, ... angkot"),
    so repeated glosses do not push a long prompt past the 77-token chunk."""
    import re

    from gambarkan.prompt.backends.glossary import GlossaryTranslator

    glossary = get_backend("glossary")
    assert isinstance(glossary, GlossaryTranslator)
    glosses = glossary.glosses()
    seen: set[str] = set()
    for i in indexes:
        text = texts[i]
        for full, short in glosses.items():
            if full not in text:
                continue
            pattern = re.compile(rf"\b{re.escape(full)}\b")
            if full in seen:
                text = pattern.sub(short, text)
            elif pattern.search(text):
                seen.add(full)
                first = pattern.search(text)
                assert first is not None
                text = text[: first.end()] + pattern.sub(short, text[first.end():])
        texts[i] = text


def _culture_notes(texts: list[str]) -> list[str]:
    from gambarkan.prompt.backends.glossary import GlossaryTranslator

    glossary = get_backend("glossary")
    assert isinstance(glossary, GlossaryTranslator)
    seen: list[str] = []
    for t in texts:
        for note in glossary.explain(t):
            if note not in seen:
                seen.append(note)
    return seen

