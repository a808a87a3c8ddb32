"""A1111 prompt grammar: weights, prompt editing, tags, translation segments, fuzzing."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gambarkan.prompt.syntax import (
    Alternate,
    Edit,
    Emphasis,
    PromptWarning,
    Stray,
    _walk,
    check,
    extract_loras,
    extract_tags,
    parse,
    parse_attention,
    prompt_schedule,
    render,
    replace_text_segments,
    text_segments,
    warn_if_malformed,
)

# --- weights (expected values are A1111's own doctests) ----------------------------------


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("normal text", [("normal text", 1.0)]),
        ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
        ("(unbalanced", [("unbalanced", 1.1)]),
        (r"\(literal\]", [("(literal]", 1.0)]),
        ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
        ("((word))", [("word", pytest.approx(1.21))]),
        ("[word]", [("word", pytest.approx(1 / 1.1))]),
        ("(word:1.3)", [("word", 1.3)]),
        ("(word: 0.5 )", [("word", 0.5)]),
        ("(word:abc)", [("word:abc", 1.1)]),
        ("(word:1.2.3)", [("word:1.2.3", 1.1)]),
        ("", [("", 1.0)]),
    ],
)
def test_parse_attention(prompt, expected):
    assert parse_attention(prompt) == expected


def test_parse_attention_nested_mix_matches_a1111():
    got = parse_attention("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).")
    assert [t for t, _ in got] == ["a ", "house", " ", "on", " a ", "hill", ", sun, ", "sky", "."]
    weights = [w for _, w in got]
    assert weights == pytest.approx([1.0, 1.573, 1.1, 1.0, 1.1, 0.55, 1.1, 1.4641, 1.1])


def test_break_markers_are_never_scaled():
    assert parse_attention("a BREAK b") == [("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]
    got = parse_attention("(a BREAK b)")
    assert got == [("a", pytest.approx(1.1)), ("BREAK", -1.0), ("b", pytest.approx(1.1))]
    assert parse_attention("aBREAK BREAKING") == [("aBREAK BREAKING", 1.0)]


# --- prompt editing (A1111 doctests, steps=10) ---------------------------------------------


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("test", [(10, "test")]),
        ("a [b:3]", [(3, "a "), (10, "a b")]),
        ("a [b: 3]", [(3, "a "), (10, "a b")]),
        ("a [[[b]]:2]", [(2, "a "), (10, "a [[b]]")]),
        ("[(a:2):3]", [(3, ""), (10, "(a:2)")]),
        ("a [b : c : 1] d", [(1, "a b  d"), (10, "a  c  d")]),
        ("a[b:[c:d:2]:1]e", [(1, "abe"), (2, "ace"), (10, "ade")]),
        ("a [unbalanced", [(10, "a [unbalanced")]),
        ("a [b:.5] c", [(5, "a  c"), (10, "a b c")]),
        ("((a][:b:c [d:3]", [(3, "((a][:b:c "), (10, "((a][:b:c d")]),
        ("[a::0.5]", [(5, "a"), (10, "")]),
        ("[a:b:20]", [(10, "a")]),
        ("[a:b:1.0]", [(10, "a")]),
        ("x <lora:foo:0.5>", [(10, "x ")]),
        ("a | [b:c:5]", [(10, "a | [b:c:5]")]),
    ],
)
def test_prompt_schedule(prompt, expected):
    assert prompt_schedule(prompt, 10) == expected


def test_alternation():
    assert prompt_schedule("[a|(b:1.1)]", 4) == [(1, "a"), (2, "(b:1.1)"), (3, "a"), (4, "(b:1.1)")]
    assert [p for _, p in prompt_schedule("[fe|||]male", 5)] == ["female", "male", "male", "male", "female"]


# --- tree, tags, translation segments -------------------------------------------------------


def test_tree_shapes():
    nodes = parse("(a:1.2) [b] [c:d:3] [e|f] x)").nodes
    assert isinstance(nodes[0], Emphasis) and nodes[0].weight_value == 1.2
    assert isinstance(nodes[2], Emphasis) and nodes[2].factor == pytest.approx(1 / 1.1)
    assert isinstance(nodes[4], Edit) and nodes[4].switch_step(10) == 3
    assert isinstance(nodes[6], Alternate) and len(nodes[6].options) == 2
    assert isinstance(nodes[-1], Stray)


def test_extract_loras():
    text, loras = extract_loras("a cat <lora:foo:0.6>, <lora:Bar Baz>, <lyco:z:-1>")
    assert text == "a cat , , "
    assert loras == [("foo", 0.6), ("Bar Baz", 1.0), ("z", -1.0)]


def test_extract_loras_warns_once_on_unsupported_and_bad_weight():
    with pytest.warns(PromptWarning) as record:
        text, loras = extract_loras("x <hypernet:h:1> <lora:a:abc>")
    assert len(record) == 1 and "hypernet" in str(record[0].message)
    assert text == "x  " and loras == [("a", 1.0)]


def test_text_segments_example():
    prompt = "(kucing hitam:1.3), <lora:x:0.6>"
    assert text_segments(prompt) == ["kucing hitam"]
    assert replace_text_segments(prompt, ["black cat"]) == "(black cat:1.3), <lora:x:0.6>"


def test_text_segments_cover_every_construct():
    prompt = r"foto, (kucing hitam:1.3) BREAK [anjing:kucing:0.5], [a|b c], \(lucu\) ,  x  "
    assert text_segments(prompt) == ["foto", "kucing hitam", "anjing", "kucing", "a", "b c", "(lucu)", "x"]
    new = replace_text_segments(prompt, ["photo", "black cat", "dog", "cat", "A", "B", "(cute)", "y"])
    assert new == r"photo, (black cat:1.3) BREAK [dog:cat:0.5], [A|B], \(cute\) ,  y  "


def test_replace_keeps_unchanged_text_byte_for_byte_and_escapes_new():
    prompt = r"a \(b\), (c:1.1)"
    assert replace_text_segments(prompt, text_segments(prompt)) == prompt
    assert replace_text_segments("(x:2)", ["y: z"]) == r"(y\: z:2)"
    assert parse_attention(replace_text_segments("(x:2)", ["y: z"])) == [("y: z", 2.0)]
    with pytest.raises(ValueError):
        replace_text_segments("a, b", ["a"])


def test_malformed_prompts_warn_once():
    assert check("(a:1.2), [b], c") == []
    with pytest.warns(PromptWarning) as record:
        found = warn_if_malformed("((a:abc) [b")
    assert len(record) == 1 and len(found) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_malformed("fine, (prompt:1.2), score: 9")


def test_deep_nesting_does_not_overflow():
    prompt = "(" * 5000 + "a" + ")" * 5000
    assert render(parse(prompt)) == prompt
    assert prompt_schedule(prompt, 3)[-1] == (3, prompt)
    assert parse_attention("(" * 3000 + "x")[0][0] == "x"


# --- property tests ---------------------------------------------------------------------------

ALPHABET = "ab ,:|()[]<>\\.0123456789BREAKlor\n"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=40) | st.text(max_size=40))
def test_random_strings_never_raise_and_round_trip(text):
    tree = parse(text)
    assert render(tree) == text
    segs = text_segments(text)
    assert replace_text_segments(text, segs) == text
    prompt_schedule(text, 7)
    parse_attention(text)
    extract_tags(text, warn=False)
    check(text)


WORD = st.text(alphabet="abcdefghij", min_size=1, max_size=6)
NUM = st.sampled_from(["1.2", "0.5", " 1.3 ", "2", ".25", "-1"])
WHEN = st.sampled_from(["3", "0.5", " 0.25", "10"])


def _prompts():
    leaf = st.lists(WORD, min_size=1, max_size=3).map(" ".join)

    def grow(inner):
        seq = st.lists(inner, min_size=1, max_size=3).map(", ".join)
        return st.one_of(
            seq.map(lambda s: f"({s})"),
            st.tuples(seq, NUM).map(lambda t: f"({t[0]}:{t[1]})"),
            seq.map(lambda s: f"[{s}]"),
            st.tuples(seq, seq, WHEN).map(lambda t: f"[{t[0]}:{t[1]}:{t[2]}]"),
            st.tuples(seq, WHEN).map(lambda t: f"[{t[0]}:{t[1]}]"),
            st.lists(seq, min_size=2, max_size=3).map(lambda o: "[" + "|".join(o) + "]"),
            st.tuples(WORD, NUM).map(lambda t: f"<lora:{t[0]}:{t[1].strip()}>"),
            st.just("BREAK"),
        )

    return st.recursive(leaf, grow, max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(_prompts(), min_size=1, max_size=4).map(", ".join))
def test_generated_well_formed_prompts(prompt):
    tree = parse(prompt)
    assert render(tree) == prompt
    assert not any(isinstance(n, Stray) for n in _walk(tree.nodes))
    assert tree.problems == [] and tree.schedulable
    segs = text_segments(prompt)
    assert all(s and s == s.strip() and "," not in s for s in segs)
    upper = replace_text_segments(prompt, [s.upper() for s in segs])
    assert text_segments(upper) == [s.upper() for s in segs]
    schedule = prompt_schedule(prompt, 10)
    assert schedule[-1][0] == 10 and all("<" not in p for _, p in schedule)
