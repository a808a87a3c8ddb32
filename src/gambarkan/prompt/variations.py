"""Prompt variations: ``{merah|biru|hijau}`` alternatives and ``__warna__`` wildcard files.

Each image expands the prompt on its own, with a choice drawn from a generator seeded by
the image's seed, so the same seed always gives the same prompt (and the PNG keeps both the
expanded prompt and the template). The syntax is the Dynamic Prompts extension's basic form
and stays clear of A1111's own: ``[a|b]`` (alternate per step) is left alone, so is a ``|``
inside ``[...]``, ``(...)`` or ``<lora:...>``, and ``{a}`` without a ``|`` is plain text.
``\\{`` and ``\\}`` are literal braces.

Wildcards: ``__name__`` picks one non-empty, non-``#`` line of ``name.txt`` from the
wildcard folders (``GAMBARKAN_WILDCARDS``, then ``<home>/wildcards``); ``__a/b__`` reads
``a/b.txt``. A chosen line may itself hold variations or wildcards.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from gambarkan.errors import InvalidRequestError

_WILDCARD = re.compile(r"__([A-Za-z0-9][\w\-/]*?)__")
_MAX_DEPTH = 20
_CLOSERS = {"[": "]", "(": ")", "<": ">", "{": "}"}


def wildcard_dirs() -> list[Path]:
    """Where ``__name__`` files are looked up (from the settings)."""
    from gambarkan.config import Settings

    return Settings.from_env().wildcard_dirs


def has_variations(text: str) -> bool:
    """Whether ``text`` holds a ``{a|b}`` group or a ``__name__`` wildcard."""
    return bool(_groups(text)) or bool(_wildcards(text))


def _matching(text: str, start: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``start``, or -1; brackets nest, escapes are skipped."""
    stack = ["}"]
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch in _CLOSERS:
            stack.append(_CLOSERS[ch])
        elif stack and ch == stack[-1]:
            stack.pop()
            if not stack:
                return i
        i += 1
    return -1


def _split_options(body: str) -> list[str]:
    """``a|b|[c|d]`` -> ``['a', 'b', '[c|d]']``: split on the group's own ``|`` only."""
    parts: list[str] = []
    stack: list[str] = []
    current = ""
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            current += body[i : i + 2]
            i += 2
            continue
        if ch in _CLOSERS:
            stack.append(_CLOSERS[ch])
        elif stack and ch == stack[-1]:
            stack.pop()
        elif ch == "|" and not stack:
            parts.append(current)
            current = ""
            i += 1
            continue
        current += ch
        i += 1
    parts.append(current)
    return parts


def _groups(text: str) -> list[tuple[int, int]]:
    """(start, end) of each outermost ``{...|...}`` group."""
    found: list[tuple[int, int]] = []
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "{":
            end = _matching(text, i)
            if end > 0 and len(_split_options(text[i + 1 : end])) > 1:
                found.append((i, end))
                i = end + 1
                continue
        i += 1
    return found


def _outside_tags(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` outside ``<...>`` tags (wildcards are not looked for inside LoRA names)."""
    spans, start, depth = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "<":
            if depth == 0:
                spans.append((start, i))
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
            if depth == 0:
                start = i + 1
    spans.append((start, len(text)) if depth == 0 else (start, start))
    return spans


def _wildcards(text: str) -> list[re.Match[str]]:
    return [m for a, b in _outside_tags(text) for m in _WILDCARD.finditer(text, a, b)]


def _wildcard_lines(name: str, dirs: list[Path]) -> list[str]:
    from gambarkan.paths import safe_join

    for folder in dirs:
        path = safe_join(folder, f"{name}.txt", "wildcard name")
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidRequestError(f"cannot read wildcard file {path}: {exc}", "save it as UTF-8 text, one choice per line") from None
            lines = [line.strip() for line in text.splitlines()]
            lines = [line for line in lines if line and not line.startswith("#")]
            if not lines:
                raise InvalidRequestError(f"wildcard file {path} has no choices", "write one choice per line")
            return lines
    where = ", ".join(str(d) for d in dirs) or "(no wildcard folder)"
    raise InvalidRequestError(code="wildcard_missing", params={"name": name, "where": where})


def _unescape_braces(text: str) -> str:
    return text.replace("\\{", "{").replace("\\}", "}")


def _expand(text: str, rng: random.Random, dirs: list[Path], depth: int) -> str:
    if depth > _MAX_DEPTH:
        raise InvalidRequestError("prompt variations nest too deeply (a wildcard file names itself?)", f"keep nesting under {_MAX_DEPTH} levels")
    out, last = [], 0
    for start, end in _groups(text):
        out.append(text[last:start])
        choice = rng.choice(_split_options(text[start + 1 : end]))
        out.append(_expand(choice, rng, dirs, depth + 1))
        last = end + 1
    out.append(text[last:])
    text = "".join(out)
    matches = _wildcards(text)
    if not matches:
        return text
    out, last = [], 0
    for match in matches:
        out.append(text[last : match.start()])
        out.append(_expand(rng.choice(_wildcard_lines(match.group(1), dirs)), rng, dirs, depth + 1))
        last = match.end()
    out.append(text[last:])
    return "".join(out)


def expand(text: str, seed: int, *, salt: str = "", dirs: list[Path] | None = None) -> str:
    """``text`` with every group and wildcard replaced by the choice the ``seed`` makes.

    ``salt`` keeps the negative prompt's choices independent of the prompt's.
    """
    if not has_variations(text):
        return text
    rng = random.Random(f"{salt}:{seed}")
    return _unescape_braces(_expand(text, rng, wildcard_dirs() if dirs is None else dirs, 0))


def check(text: str, dirs: list[Path] | None = None) -> None:
    """Raise InvalidRequestError now when a wildcard ``text`` can reach has no file (before any model loads)."""
    if has_variations(text):
        _check(text, wildcard_dirs() if dirs is None else dirs, 0)


def _check(text: str, dirs: list[Path], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise InvalidRequestError("prompt variations nest too deeply (a wildcard file names itself?)", f"keep nesting under {_MAX_DEPTH} levels")
    last = 0
    rest = []
    for start, end in _groups(text):
        rest.append(text[last:start])
        for option in _split_options(text[start + 1 : end]):
            _check(option, dirs, depth + 1)
        last = end + 1
    rest.append(text[last:])
    for match in _wildcards("".join(rest)):
        for line in _wildcard_lines(match.group(1), dirs):
            if has_variations(line):
                _check(line, dirs, depth + 1)
