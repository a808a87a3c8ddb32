"""The AUTOMATIC1111 prompt grammar: a lossless tree, weights, prompt editing and LoRA tags.

``parse`` never raises and keeps every character, so ``render(parse(p)) == p`` for any string.
Meaning follows A1111: first ``<lora:...>`` tags are taken out, then prompt editing
(``[a:b:when]``, ``[a|b]``) is expanded per step (``prompt_schedule``), then each plain prompt
is split into weighted pieces (``parse_attention``). Translation rewrites only the plain text
(``text_segments`` / ``replace_text_segments``) and keeps weights, tags and BREAK intact.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field

__all__ = [
    "Alternate",
    "Break",
    "Edit",
    "Emphasis",
    "Prompt",
    "PromptWarning",
    "Segment",
    "Stray",
    "Tag",
    "Text",
    "BREAK",
    "check",
    "extract_loras",
    "extract_tags",
    "parse",
    "parse_attention",
    "prompt_schedule",
    "render",
    "replace_text_segments",
    "segments",
    "text_segments",
    "warn_if_malformed",
]

BREAK = "BREAK"
"""Marker text of a chunk break in ``parse_attention`` output (its weight is -1.0)."""

MAX_WEIGHT = 1000.0  # |weight| cap in parse_attention; A1111 has none, but inf/NaN only make broken images
_MAX_DEPTH = 100  # deeper nesting is kept as literal text instead of overflowing the stack
_TAG = re.compile(r"<(\w+):([^>]+)>")
_BREAK_WORD = re.compile(r"(?<!\w)BREAK(?!\w)")
# lark's SIGNED_NUMBER, which A1111 uses for the "when" of [from:to:when]
_NUMBER = r"[+-]?(?:(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?)"
_WHEN_CLOSE = re.compile(rf"\s*({_NUMBER})\s*\]")
_WEIGHT = re.compile(r"\s*([+-]?[.\d]+)\s*")
_ESCAPABLE = re.compile(r"([\\()\[\]:|])")


class PromptWarning(UserWarning):
    """A prompt was malformed and part of its meaning was dropped (it is still used)."""


# --- the tree ---------------------------------------------------------------------------


@dataclass
class Text:
    """Plain text exactly as written, escapes (``\\(``) included."""

    raw: str

    @property
    def value(self) -> str:
        """The text with escape backslashes removed."""
        return unescape(self.raw)


@dataclass
class Break:
    """The ``BREAK`` keyword: the next text starts a new 75-token chunk."""

    raw: str = BREAK


@dataclass
class Tag:
    """An extra-network tag such as ``<lora:name:0.8>`` or ``<hypernet:name>``."""

    raw: str

    @property
    def kind(self) -> str:
        return self.raw[1:].split(":", 1)[0]

    @property
    def args(self) -> list[str]:
        """Everything after the kind, split at ``:`` (name first)."""
        return self.raw[1:-1].split(":")[1:]


@dataclass
class Stray:
    """A bracket, colon or pipe that closes or opens nothing; it stays literal text."""

    raw: str


@dataclass
class Emphasis:
    """``(x)`` x1.1, ``(x:1.3)``, ``[x]`` /1.1. ``weight`` holds the nodes after ``:``."""

    open: str
    children: list[Node]
    weight: list[Node] | None = None

    @property
    def close(self) -> str:
        return ")" if self.open == "(" else "]"

    @property
    def weight_value(self) -> float | None:
        """The explicit weight when it is a number A1111 accepts, else None."""
        if self.weight is None:
            return None
        m = _WEIGHT.fullmatch(render(self.weight))
        if not m:
            return None
        try:
            value = float(m.group(1))
        except ValueError:
            return None
        return value if math.isfinite(value) else None

    @property
    def factor(self) -> float:
        """The multiplier this group applies to its text (A1111 semantics)."""
        if self.open == "[":
            return 1 / 1.1
        value = self.weight_value
        return 1.1 if value is None else value


@dataclass
class Edit:
    """Prompt editing ``[before:after:when]``; ``before`` is None for ``[after:when]``."""

    before: list[Node] | None
    after: list[Node]
    when: str  # as written, surrounding whitespace included

    def switch_step(self, steps: int) -> int:
        """Last step that uses ``before`` (A1111: fractions have a '.', integers are steps)."""
        number = self.when.strip()
        value = float(number)
        if "." in number:
            value *= steps
        return int(max(-1e9, min(float(steps), value)))


@dataclass
class Alternate:
    """Alternation ``[a|b|c]``: step 1 uses a, step 2 b, and so on."""

    options: list[list[Node]]


Node = Text | Break | Tag | Stray | Emphasis | Edit | Alternate


@dataclass
class Prompt:
    """A parsed prompt. ``schedulable`` is False where A1111's grammar would reject the prompt
    as a whole (a ``|`` outside ``[a|b]``, a trailing backslash): editing is then off."""

    nodes: list[Node]
    schedulable: bool = True
    problems: list[str] = field(default_factory=list)


# --- parsing ----------------------------------------------------------------------------


class _Fail(Exception):
    pass


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.depth = 0
        self.failed: set[int] = set()
        self.schedulable = True

    def top(self) -> list[Node]:
        nodes: list[Node] = []
        while self.i < len(self.s):
            nodes.extend(self.seq("", top=True))
        return nodes

    def seq(self, stops: str, top: bool = False) -> list[Node]:
        """Parse until a character in ``stops`` (not consumed) or the end.

        Inside a group any other ``)]:|`` or an unclosable bracket fails the group; at the top
        level they become Stray nodes, like A1111's grammar.
        """
        s, out = self.s, []
        start = self.i

        def flush() -> None:
            if self.i > start:
                out.append(Text(s[start : self.i]))

        while self.i < len(s):
            c = s[self.i]
            if c in stops:
                break
            if c == "\\":
                nxt = s[self.i + 1 : self.i + 2]
                if nxt == "" or nxt == "\n":
                    self.schedulable = False
                if nxt == "<" and _TAG.match(s, self.i + 1):
                    self.i += 1
                else:
                    self.i += 2 if nxt else 1
                continue
            if c == "<" and (m := _TAG.match(s, self.i)):
                flush()
                out.append(Tag(m.group(0)))
                self.i = start = m.end()
                continue
            if c == "B" and _BREAK_WORD.match(s, self.i):
                flush()
                out.append(Break())
                self.i = start = self.i + len(BREAK)
                continue
            if c in "([":
                flush()
                at = self.i
                try:
                    node = self.group()
                except _Fail:
                    self.failed.add(at)
                    if not top:
                        raise
                    self.i = at + 1
                    node = Stray(c)
                out.append(node)
                start = self.i
                continue
            if c in ")]:|":
                if not top:
                    raise _Fail
                flush()
                if c == "|":
                    self.schedulable = False
                out.append(Stray(c))
                self.i = start = self.i + 1
                continue
            self.i += 1
        flush()
        return out

    def group(self) -> Node:
        """Parse ``(...)`` or ``[...]`` starting at self.i, or raise _Fail."""
        if self.i in self.failed or self.depth >= _MAX_DEPTH:
            raise _Fail
        self.depth += 1
        try:
            return self._round() if self.s[self.i] == "(" else self._square()
        finally:
            self.depth -= 1

    def _expect(self, char: str) -> None:
        if self.i >= len(self.s) or self.s[self.i] != char:
            raise _Fail
        self.i += 1

    def _peek(self) -> str:
        if self.i >= len(self.s):
            raise _Fail
        return self.s[self.i]

    def _round(self) -> Node:
        self.i += 1
        children = self.seq("):")
        if self._peek() == ")":
            self.i += 1
            return Emphasis("(", children)
        self.i += 1
        weight = self.seq(")")
        self._expect(")")
        return Emphasis("(", children, weight)

    def _square(self) -> Node:
        self.i += 1
        first = self.seq("]:|")
        c = self._peek()
        if c == "]":
            self.i += 1
            return Emphasis("[", first)
        if c == "|":
            options = [first]
            while self._peek() == "|":
                self.i += 1
                options.append(self.seq("]|"))
            self._expect("]")
            return Alternate(options)
        self.i += 1  # ':'
        if m := _WHEN_CLOSE.match(self.s, self.i):
            self.i = m.end()
            return Edit(None, first, m.group(0)[:-1])
        second = self.seq("]:")
        self._expect(":")
        m = _WHEN_CLOSE.match(self.s, self.i)
        if not m:
            raise _Fail
        self.i = m.end()
        return Edit(first, second, m.group(0)[:-1])


def parse(text: str) -> Prompt:
    """Parse a prompt into a lossless tree; never raises (malformed parts become Stray/Text)."""
    parser = _Parser(text)
    nodes = parser.top()
    prompt = Prompt(nodes, parser.schedulable)
    prompt.problems = _problems(prompt)
    return prompt


def render(tree: Prompt | list[Node] | Node) -> str:
    """The exact source text of a tree, node list or node."""
    if isinstance(tree, Prompt):
        tree = tree.nodes
    if isinstance(tree, list):
        return "".join(render(n) for n in tree)
    n = tree
    if isinstance(n, Emphasis):
        weight = "" if n.weight is None else ":" + render(n.weight)
        return n.open + render(n.children) + weight + n.close
    if isinstance(n, Edit):
        before = "" if n.before is None else render(n.before) + ":"
        return "[" + before + render(n.after) + ":" + n.when + "]"
    if isinstance(n, Alternate):
        return "[" + "|".join(render(o) for o in n.options) + "]"
    return n.raw


def unescape(raw: str) -> str:
    """Remove escape backslashes: ``\\(`` -> ``(``, ``\\\\`` -> ``\\``."""
    return re.sub(r"\\(.?)", r"\1", raw, flags=re.S)


def escape(text: str) -> str:
    """Escape characters that have a meaning in prompts so ``text`` stays plain text."""
    return _ESCAPABLE.sub(r"\\\1", text)


def _walk(nodes: list[Node]):
    for n in nodes:
        yield n
        if isinstance(n, Emphasis):
            yield from _walk(n.children)
            if n.weight is not None:
                yield from _walk(n.weight)
        elif isinstance(n, Edit):
            yield from _walk((n.before or []) + n.after)
        elif isinstance(n, Alternate):
            for option in n.options:
                yield from _walk(option)


def _problems(prompt: Prompt) -> list[str]:
    found: list[str] = []
    nodes = list(_walk(prompt.nodes))
    strays = sorted({n.raw for n in nodes if isinstance(n, Stray) and n.raw in "()[]"})
    if strays:
        found.append("unbalanced " + " ".join(f"'{c}'" for c in strays))
    for n in nodes:
        if isinstance(n, Emphasis) and n.weight is not None and n.weight_value is None:
            found.append(f"weight '{render(n.weight).strip()}' in '{render(n)}' is not a number")
    if not prompt.schedulable and any(isinstance(n, (Edit, Alternate)) for n in nodes):
        found.append("a '|' outside [a|b] or a trailing '\\' turns prompt editing off")
    return found


def check(text: str) -> list[str]:
    """Human-readable problems where a malformed prompt loses meaning (empty when fine)."""
    return parse(text).problems + extract_tags(text, warn=False)[2]


def warn_if_malformed(text: str, what: str = "prompt") -> list[str]:
    """Emit one PromptWarning listing what is lost in ``text``; returns the problems."""
    found = check(text)
    if found:
        warnings.warn(
            f"{what}: {'; '.join(found)} (kept as plain text, like AUTOMATIC1111)",
            PromptWarning,
            stacklevel=2,
        )
    return found


# --- translation support ----------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A plain-text phrase of a prompt: ``text`` (unescaped) found at ``source[start:end]``."""

    start: int
    end: int
    text: str


def _phrases(raw: str, offset: int, out: list[Segment]) -> None:
    i, piece_start = 0, 0
    pieces: list[tuple[int, int]] = []
    while i < len(raw):
        if raw[i] == "\\":
            i += 2
            continue
        if raw[i] == ",":
            pieces.append((piece_start, i))
            piece_start = i + 1
        i += 1
    pieces.append((piece_start, len(raw)))
    for a, b in pieces:
        while a < b and raw[a].isspace():
            a += 1
        while b > a and raw[b - 1].isspace():
            b -= 1
        # keep an escaped trailing space (odd backslash run before it) inside the phrase
        run = len(raw[a:b]) - len(raw[a:b].rstrip("\\"))
        if run % 2 and b < len(raw):
            b += 1
        if b > a:
            out.append(Segment(offset + a, offset + b, unescape(raw[a:b])))


def _collect(nodes: list[Node], pos: int, out: list[Segment]) -> int:
    for n in nodes:
        if isinstance(n, Text):
            _phrases(n.raw, pos, out)
            pos += len(n.raw)
        elif isinstance(n, Emphasis):
            pos = _collect(n.children, pos + 1, out)
            if n.weight is not None:
                pos += 1
                if n.weight_value is None:
                    pos = _collect(n.weight, pos, out)
                else:
                    pos += len(render(n.weight))
            pos += 1
        elif isinstance(n, Edit):
            pos += 1
            if n.before is not None:
                pos = _collect(n.before, pos, out) + 1
            pos = _collect(n.after, pos, out) + 1 + len(n.when) + 1
        elif isinstance(n, Alternate):
            for option in n.options:
                pos = _collect(option, pos + 1, out)
            pos += 1
        else:
            pos += len(n.raw)
    return pos


def segments(text: str) -> list[Segment]:
    """The plain-text phrases of ``text`` with their positions (see ``text_segments``)."""
    out: list[Segment] = []
    _collect(parse(text).nodes, 0, out)
    return out


def text_segments(text: str) -> list[str]:
    """The plain text phrases, in order, that translation may rewrite.

    Phrases inside weights, prompt editing and alternation are included; weight numbers,
    ``<lora:...>`` tags, BREAK, brackets and escape backslashes are not. Text is split at
    commas and each phrase comes without its surrounding whitespace.
    """
    return [seg.text for seg in segments(text)]


def replace_text_segments(text: str, new_texts: list[str]) -> str:
    """Rebuild ``text`` with ``new_texts`` in place of ``text_segments(text)``.

    Everything else is kept byte for byte; an unchanged phrase keeps its original escapes,
    a changed one has its special characters escaped so it stays plain text.
    """
    segs = segments(text)
    if len(new_texts) != len(segs):
        raise ValueError(f"expected {len(segs)} texts, got {len(new_texts)}")
    parts, last = [], 0
    for seg, new in zip(segs, new_texts):
        parts.append(text[last : seg.start])
        parts.append(text[seg.start : seg.end] if new == seg.text else escape(new))
        last = seg.end
    parts.append(text[last:])
    return "".join(parts)


# --- LoRA and other extra-network tags --------------------------------------------------

_LORA_KINDS = {"lora", "lyco"}


def extract_tags(text: str, warn: bool = True) -> tuple[str, list[tuple[str, float]], list[str]]:
    """Remove every ``<kind:...>`` tag; return (text, [(lora name, weight)], problems)."""
    loras: list[tuple[str, float]] = []
    problems: list[str] = []
    for m in _TAG.finditer(text):
        kind, args = m.group(1), m.group(2).split(":")
        if kind.lower() not in _LORA_KINDS:
            problems.append(f"'{m.group(0)}' is not supported (only <lora:name:weight>) and is ignored")
            continue
        name, weight = args[0].strip(), 1.0
        if len(args) > 1:
            try:
                weight = float(args[1].split("=", 1)[-1])
                if not math.isfinite(weight):
                    raise ValueError(args[1])
            except ValueError:
                weight = 1.0
                problems.append(f"weight '{args[1]}' in '{m.group(0)}' is not a number; using 1")
        if len(args) > 2:
            problems.append(f"only one weight is used in '{m.group(0)}'")
        loras.append((name, weight))
    if warn and problems:
        warnings.warn("; ".join(problems), PromptWarning, stacklevel=3)
    return _TAG.sub("", text), loras, problems


def extract_loras(text: str) -> tuple[str, list[tuple[str, float]]]:
    """Remove extra-network tags; return (text without tags, [(lora name, weight)]).

    ``<lora:name>`` has weight 1. Unsupported tags (``<hypernet:...>``) are removed with
    a PromptWarning, like A1111 ignores networks it cannot load.
    """
    stripped, loras, _ = extract_tags(text)
    return stripped, loras


# --- prompt editing ---------------------------------------------------------------------


def _edit_steps(nodes: list[Node], steps: int) -> set[int]:
    found = {steps}
    for n in _walk(nodes):
        if isinstance(n, Edit):
            when = n.switch_step(steps)
            if when >= 1:
                found.add(when)
        elif isinstance(n, Alternate):
            found.update(range(1, steps + 1))
    return found


def _at_step(nodes: list[Node], step: int, steps: int) -> str:
    parts = []
    for n in nodes:
        if isinstance(n, Tag):
            continue
        if isinstance(n, Emphasis):
            weight = "" if n.weight is None else ":" + _at_step(n.weight, step, steps)
            parts.append(n.open + _at_step(n.children, step, steps) + weight + n.close)
        elif isinstance(n, Edit):
            use_before = step <= n.switch_step(steps)
            parts.append(_at_step((n.before or []) if use_before else n.after, step, steps))
        elif isinstance(n, Alternate):
            parts.append(_at_step(n.options[(step - 1) % len(n.options)], step, steps))
        else:
            parts.append(n.raw)
    return "".join(parts)


def prompt_schedule(text: str, steps: int) -> list[tuple[int, str]]:
    """Expand prompt editing like A1111's get_learned_conditioning_prompt_schedules.

    Returns [(until_step, plain prompt)], ``until_step`` ascending and the last equal to
    ``steps``; extra-network tags are removed. A1111 (and the engine) use entry k for the
    0-based sampler step i when i <= until_step of entry k and not of entry k-1.
    """
    steps = max(1, int(steps))
    tree = parse(text)
    if not tree.schedulable:
        return [(steps, _TAG.sub("", text))]
    return [(t, _at_step(tree.nodes, t, steps)) for t in sorted(_edit_steps(tree.nodes, steps))]


# --- weights ----------------------------------------------------------------------------

_ATTENTION = re.compile(
    r"\\[()\[\]\\]?|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|\]|[^\\()\[\]:]+|:",
)
_BREAK_SPLIT = re.compile(r"\s*\bBREAK\b\s*", re.S)


def parse_attention(text: str) -> list[tuple[str, float]]:
    """Split a plain prompt into (text, weight) pieces like A1111's parse_prompt_attention.

    ``(a)`` x1.1, ``(a:w)`` xw, ``[a]`` /1.1, unclosed brackets apply to the rest, escapes
    give the literal character. ``BREAK`` yields (``BREAK``, -1.0) markers, which (unlike
    A1111) are never scaled or merged by surrounding brackets.
    """
    pieces: list[list] = []  # [text, weight, is_break]
    round_open: list[int] = []
    square_open: list[int] = []

    def scale(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            if not piece[2]:  # clamped: (x:1e400) or 5000 nested brackets must not give inf/NaN images
                piece[1] = min(MAX_WEIGHT, max(-MAX_WEIGHT, piece[1] * factor))

    for m in _ATTENTION.finditer(text):
        token, weight = m.group(0), m.group(1)
        if token.startswith("\\"):
            pieces.append([token[1:], 1.0, False])
        elif token == "(":
            round_open.append(len(pieces))
        elif token == "[":
            square_open.append(len(pieces))
        elif weight is not None and round_open:
            try:
                factor = float(weight)
                if not math.isfinite(factor):
                    raise ValueError(weight)
            except ValueError:  # "1.2.3": A1111 crashes; we keep it as text and use 1.1
                pieces.append([token[:-1], 1.0, False])
                factor = 1.1
            scale(round_open.pop(), factor)
        elif token == ")" and round_open:
            scale(round_open.pop(), 1.1)
        elif token == "]" and square_open:
            scale(square_open.pop(), 1 / 1.1)
        else:
            for k, part in enumerate(_BREAK_SPLIT.split(token)):
                if k:
                    pieces.append([BREAK, -1.0, True])
                pieces.append([part, 1.0, False])
    for start in round_open:
        scale(start, 1.1)
    for start in square_open:
        scale(start, 1 / 1.1)
    if not pieces:
        pieces = [["", 1.0, False]]
    merged: list[list] = [pieces[0]]
    for piece in pieces[1:]:
        last = merged[-1]
        if not piece[2] and not last[2] and piece[1] == last[1]:
            last[0] += piece[0]
        else:
            merged.append(piece)
    return [(p[0], p[1]) for p in merged]
