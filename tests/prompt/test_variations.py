"""Prompt variations: {a|b} and __wildcard__, seeded by the image seed, clear of A1111 syntax."""

from __future__ import annotations

from pathlib import Path

import pytest

from gambarkan.errors import InvalidRequestError
from gambarkan.prompt.variations import check, expand, has_variations


def test_a_seed_always_gives_the_same_choice_and_seeds_cover_the_options() -> None:
    text = "kucing {merah|biru|hijau}"
    assert all(expand(text, s, dirs=[]) == expand(text, s, dirs=[]) for s in range(20))
    seen = {expand(text, s, dirs=[]) for s in range(60)}
    assert seen == {"kucing merah", "kucing biru", "kucing hijau"}


@pytest.mark.parametrize(
    "text",
    ["a [b|c] d", "[a:b:0.5]", "(x:1.2), {solo}", "<lora:my__net__:0.8> cat", r"\{a|b\}", "plain"],
)
def test_a1111_syntax_and_single_braces_are_left_alone(text: str) -> None:
    assert not has_variations(text)
    assert expand(text, 1, dirs=[]) == text


def test_bars_inside_brackets_belong_to_them() -> None:
    outs = {expand("{x [a|b]|(y:1.1)|<lora:n:1>}", s, dirs=[]) for s in range(40)}
    assert outs == {"x [a|b]", "(y:1.1)", "<lora:n:1>"}
    nested = {expand("{a {1|2}|b}", s, dirs=[]) for s in range(60)}
    assert nested == {"a 1", "a 2", "b"}


def test_wildcards_read_files_and_nest(tmp_path: Path) -> None:
    (tmp_path / "warna.txt").write_text("# comment\nmerah\n\n{biru|__gelap__}\n", encoding="utf-8")
    (tmp_path / "gelap.txt").write_text("hitam\n", encoding="utf-8")
    outs = {expand("baju __warna__", s, dirs=[tmp_path]) for s in range(80)}
    assert outs == {"baju merah", "baju biru", "baju hitam"}
    check("baju __warna__", dirs=[tmp_path])


def test_missing_empty_and_escaping_wildcards_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="__bentuk__ has no file bentuk.txt"):
        check("x {a|__bentuk__}", dirs=[tmp_path])  # found on every branch, not only the one a seed takes
    (tmp_path / "kosong.txt").write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(InvalidRequestError, match="no choices"):
        expand("__kosong__", 1, dirs=[tmp_path])
    (tmp_path / "loop.txt").write_text("__loop__\n", encoding="utf-8")
    with pytest.raises(InvalidRequestError, match="nest too deeply"):
        expand("__loop__", 1, dirs=[tmp_path])
