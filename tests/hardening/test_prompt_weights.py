"""Prompt weights of hostile nesting stay finite and clamped (issue 17: removing the clamp must fail).

A1111 has no cap: ``(`` x 5000 gives 1.1**5000 = inf, and inf/NaN conditioning makes a black or
noise image. ``syntax.MAX_WEIGHT`` caps every weight; these tests pin the cap, in the parser and
in the embeddings the tiny model's text encoder produces.
"""

from __future__ import annotations

import math

import pytest

from gambarkan.prompt.syntax import MAX_WEIGHT, parse_attention

DEEP = 5000


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("(" * DEEP + "kucing" + ")" * DEEP, MAX_WEIGHT),  # 1.1**5000 overflows to inf without the cap
        ("(" * DEEP + "kucing", MAX_WEIGHT),  # unclosed brackets apply to the rest
        ("((kucing:99999):99999)", MAX_WEIGHT),  # 1e10 without the cap
        ("((kucing:-99999):99999)", -MAX_WEIGHT),
        ("(kucing:5000)", MAX_WEIGHT),  # one explicit weight above the cap
        ("(kucing:1.5)", 1.5),  # ordinary weights are untouched
    ],
    ids=["deep", "unclosed", "nested-huge", "nested-negative", "over-cap", "ordinary"],
)
def test_deep_and_huge_weights_are_finite_and_clamped(prompt: str, expected: float):
    pieces = dict(parse_attention(prompt))
    weight = pieces["kucing"]
    assert math.isfinite(weight) and weight == pytest.approx(expected)


def test_deep_square_brackets_stay_finite_and_non_negative():
    (text, weight), = parse_attention("[" * DEEP + "kucing" + "]" * DEEP)
    assert text == "kucing" and math.isfinite(weight) and 0.0 <= weight <= 1.0


def test_deep_nesting_gives_finite_embeddings():
    torch = pytest.importorskip("torch")
    from gambarkan.prompt.encode import build_conditioning
    from gambarkan.testing import tiny_pipeline

    pipe = tiny_pipeline("sd15")
    cond = build_conditioning(pipe, "(" * DEEP + "kucing" + ")" * DEEP, "", 1, 2, guidance=True)
    embeds = cond.pipeline_kwargs["prompt_embeds"]
    assert torch.isfinite(embeds).all()
    plain = build_conditioning(pipe, "kucing", "", 1, 2, guidance=True).pipeline_kwargs["prompt_embeds"]
    # weighted, then renormalised to the original mean as A1111 does: changed, and still bounded
    assert not torch.equal(embeds, plain) and embeds.abs().max() < 1e6
