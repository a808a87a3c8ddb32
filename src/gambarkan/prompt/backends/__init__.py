"""Translation backends, one a module: glossary (offline), marian, nllb, google.

Each backend has a ``name`` and ``translate(texts, langs) -> list[str]`` working on plain
text phrases (no A1111 syntax inside); ``gambarkan.prompt.translate`` does the rest.
"""

from __future__ import annotations

from typing import Protocol


class Backend(Protocol):
    """What translate_prompt needs from a backend."""

    name: str

    def translate(self, texts: list[str], langs: list[str]) -> list[str]:
        """English for each text; ``langs`` holds each text's detected language code."""
        ...
