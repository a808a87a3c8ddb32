"""A1111-style conditioning on tiny real pipelines: exactness, weights, chunks, BREAK, editing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gambarkan.prompt.encode import CHUNK, build_conditioning, chunk_tokens, encode_prompt
from gambarkan.testing import tiny_pipeline

WORDS = "a photo of a red cat sitting on the old house under blue sky with bright sun".split()


@pytest.fixture(scope="module")
def sd15():
    return tiny_pipeline("sd15")


@pytest.fixture(scope="module")
def sdxl():
    return tiny_pipeline("sdxl")


def _image(pipe, cond, steps=2, cfg=5.0):
    out = pipe(
        **cond.pipeline_kwargs,
        num_inference_steps=steps,
        guidance_scale=cfg,
        width=64,
        height=64,
        generator=torch.Generator().manual_seed(1),
        output_type="np",
        callback_on_step_end=cond.on_step,
    )
    return out.images[0]


def _long_prompt(pipe, tokens: int) -> str:
    words = []
    while len(pipe.tokenizer(" ".join(words), add_special_tokens=False).input_ids) < tokens:
        words.append(WORDS[len(words) % len(WORDS)])
    return " ".join(words)


# --- exactly what plain diffusers gives --------------------------------------------------------


@pytest.mark.parametrize("negative", ["", "ugly, dark"])
def test_plain_prompt_equals_diffusers_sd15(sd15, negative):
    cond = build_conditioning(sd15, "a photo of a cat, dog", negative, clip_skip=1, steps=4)
    pe, ne = sd15.encode_prompt("a photo of a cat, dog", "cpu", 1, True, negative or None)
    assert torch.equal(cond.pipeline_kwargs["prompt_embeds"], pe)
    assert torch.equal(cond.pipeline_kwargs["negative_prompt_embeds"], ne)
    assert cond.on_step is None and cond.chunks == 1


def test_clip_skip_2_is_the_penultimate_layer_sd15(sd15):
    cond = build_conditioning(sd15, "a photo of a cat", "", clip_skip=2, steps=4)
    te = sd15.text_encoder
    ids = sd15.tokenizer("a photo of a cat", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        expected = te.final_layer_norm(te(ids, output_hidden_states=True).hidden_states[-2])
    assert torch.equal(cond.pipeline_kwargs["prompt_embeds"], expected)
    plain = build_conditioning(sd15, "a photo of a cat", "", clip_skip=1, steps=4)
    assert not torch.equal(plain.pipeline_kwargs["prompt_embeds"], expected)


@pytest.mark.parametrize("negative", ["", "ugly, dark"])
@pytest.mark.parametrize("clip_skip", [1, 2])
def test_plain_prompt_equals_diffusers_sdxl(sdxl, negative, clip_skip):
    cond = build_conditioning(sdxl, "a photo of a cat, dog", negative, clip_skip=clip_skip, steps=4)
    pe, ne, pp, npp = sdxl.encode_prompt(
        "a photo of a cat, dog", device="cpu", negative_prompt=negative or None, clip_skip=clip_skip - 1 or None
    )
    kw = cond.pipeline_kwargs
    assert torch.equal(kw["prompt_embeds"], pe) and torch.equal(kw["pooled_prompt_embeds"], pp)
    if clip_skip == 1:  # diffusers ignores clip_skip for the negative prompt; we do not
        assert torch.equal(kw["negative_prompt_embeds"], ne)
        assert torch.equal(kw["negative_pooled_prompt_embeds"], npp)


# --- weights ---------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt, factor", [("(photo:1.5)", 1.5), ("((photo))", 1.21), ("[photo]", 1 / 1.1), ("(photo:0.5)", 0.5)])
def test_weight_scales_token_then_restores_mean(sd15, prompt, factor):
    plain, _ = encode_prompt(sd15, "photo")
    weighted, _ = encode_prompt(sd15, prompt)
    assert len(sd15.tokenizer("photo", add_special_tokens=False).input_ids) == 1
    mean_factor = weighted[0, 0] / plain[0, 0]  # BOS keeps weight 1: only the mean correction
    assert torch.allclose(mean_factor, mean_factor[0].expand_as(mean_factor), rtol=1e-4)
    assert torch.allclose(weighted[0, 1] / plain[0, 1], factor * mean_factor, rtol=1e-4)
    assert torch.allclose(weighted.mean(), plain.mean(), rtol=1e-4, atol=1e-6)
    assert torch.allclose(weighted[0, 2:], plain[0, 2:] * mean_factor[0], rtol=1e-4, atol=1e-6)


def test_weights_apply_to_both_sdxl_encoders(sdxl):
    plain, pooled = encode_prompt(sdxl, "photo")
    weighted, weighted_pooled = encode_prompt(sdxl, "(photo:1.5)")
    width = sdxl.text_encoder.config.hidden_size
    for part in (slice(0, width), slice(width, None)):
        mean_factor = weighted[0, 0, part] / plain[0, 0, part]
        assert torch.allclose(weighted[0, 1, part] / plain[0, 1, part], 1.5 * mean_factor, rtol=1e-4)
    assert torch.equal(pooled, weighted_pooled)  # like A1111, weights do not touch the pooled output


# --- long prompts and BREAK --------------------------------------------------------------------


def test_200_token_prompt_gives_3_chunks_and_its_tail_changes_the_image(sd15):
    base = _long_prompt(sd15, 190)
    cat = build_conditioning(sd15, base + " red cat", "", steps=2)
    dog = build_conditioning(sd15, base + " blue dog", "", steps=2)
    assert cat.chunks == 3 and cat.pipeline_kwargs["prompt_embeds"].shape[1] == 3 * 77
    assert cat.pipeline_kwargs["negative_prompt_embeds"].shape == cat.pipeline_kwargs["prompt_embeds"].shape
    a, b = _image(sd15, cat), _image(sd15, dog)
    assert np.abs(a - b).max() > 1e-3
    # diffusers alone truncates at 77 tokens: the tail would change nothing
    plain = [sd15(prompt=p, num_inference_steps=2, width=64, height=64, output_type="np",
                  generator=torch.Generator().manual_seed(1)).images[0] for p in (base + " red cat", base + " blue dog")]
    assert np.array_equal(plain[0], plain[1])


def test_break_starts_a_new_chunk(sd15):
    broken, _ = encode_prompt(sd15, "a red cat BREAK a blue dog")
    first, _ = encode_prompt(sd15, "a red cat")
    second, _ = encode_prompt(sd15, "a blue dog")
    assert broken.shape[1] == 2 * 77
    assert torch.equal(broken[:, :77], first) and torch.equal(broken[:, 77:], second)
    assert len(chunk_tokens(sd15, sd15.tokenizer, "BREAK a")) == 2
    assert len(chunk_tokens(sd15, sd15.tokenizer, "a BREAK")) == 1


def test_chunks_move_text_after_a_late_comma_to_the_next_chunk(sd15):
    head = _long_prompt(sd15, CHUNK - 5)
    chunks = chunk_tokens(sd15, sd15.tokenizer, head + ", red cat sitting on the old house")
    comma = sd15.tokenizer.get_vocab()[",</w>"]
    assert len(chunks) == 2 and chunks[0].tokens[-1] == comma
    assert len(chunks[0].tokens) < CHUNK


def test_short_negative_is_padded_with_empty_chunks(sd15):
    cond = build_conditioning(sd15, _long_prompt(sd15, 100), "ugly", steps=2)
    neg = cond.pipeline_kwargs["negative_prompt_embeds"]
    assert neg.shape[1] == 2 * 77
    empty, _ = encode_prompt(sd15, "")
    ugly, _ = encode_prompt(sd15, "ugly")
    assert torch.equal(neg[:, :77], ugly) and torch.equal(neg[:, 77:], empty)


# --- prompt editing ----------------------------------------------------------------------------


def _record_unet(pipe):
    seen = []

    def hook(module, args, kwargs):
        seen.append((kwargs["encoder_hidden_states"].clone(), (kwargs.get("added_cond_kwargs") or {}).get("text_embeds")))

    return seen, pipe.unet.register_forward_pre_hook(hook, with_kwargs=True)


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_prompt_editing_switches_at_the_right_step(arch, sd15, sdxl):
    pipe = sd15 if arch == "sd15" else sdxl
    cond = build_conditioning(pipe, "a [cat:dog:2] house", "ugly", steps=4)
    assert cond.on_step is not None
    cat, cat_pooled = encode_prompt(pipe, "a cat house")
    dog, dog_pooled = encode_prompt(pipe, "a dog house")
    seen, handle = _record_unet(pipe)
    try:
        out = pipe(**cond.pipeline_kwargs, num_inference_steps=4, guidance_scale=5.0, width=64, height=64,
                   num_images_per_prompt=2, callback_on_step_end=cond.on_step, output_type="latent")
    finally:
        handle.remove()
    assert out.images.shape[0] == 2 and len(seen) == 4
    for step, (hidden, pooled) in enumerate(seen):
        assert hidden.shape[0] == 4  # [negative x2, positive x2]
        expected = cat if step <= 2 else dog  # A1111: 0-based step i uses "before" while i <= 2
        assert torch.equal(hidden[2], expected[0]) and torch.equal(hidden[3], expected[0]), step
        assert not torch.equal(hidden[0], expected[0])
        if arch == "sdxl":
            assert torch.equal(pooled[3], (cat_pooled if step <= 2 else dog_pooled)[0])


def test_alternation_switches_every_step_without_cfg(sd15):
    cond = build_conditioning(sd15, "[cat|dog]", "", steps=4)
    cat, _ = encode_prompt(sd15, "cat")
    dog, _ = encode_prompt(sd15, "dog")
    seen, handle = _record_unet(sd15)
    try:
        sd15(**cond.pipeline_kwargs, num_inference_steps=4, guidance_scale=1.0, width=64, height=64,
             callback_on_step_end=cond.on_step, output_type="latent")
    finally:
        handle.remove()
    # A1111 timeline: step 0 and 1 use entry 1 (cat), then dog, cat, ...
    assert [torch.equal(h[0], cat[0]) for h, _ in seen] == [True, True, False, True]
    assert torch.equal(seen[2][0][0], dog[0])


def test_lora_tags_are_not_encoded_and_malformed_prompts_warn(sd15):
    tagged = build_conditioning(sd15, "a cat <lora:foo:0.5>", "", steps=2)
    plain = build_conditioning(sd15, "a cat ", "", steps=2)
    assert torch.equal(tagged.pipeline_kwargs["prompt_embeds"], plain.pipeline_kwargs["prompt_embeds"])
    from gambarkan.prompt.syntax import PromptWarning

    with pytest.warns(PromptWarning):
        cond = build_conditioning(sd15, "((a cat:abc) [dog", "", steps=2)
    assert cond.pipeline_kwargs["prompt_embeds"].shape[1] == 77


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="ab ,:|()[]<>\\.0123456789BREAKlor", max_size=30), st.integers(1, 5))
def test_fuzzed_prompts_always_encode(sd15, prompt, steps):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cond = build_conditioning(sd15, prompt, prompt[::-1], steps=steps)
    kw = cond.pipeline_kwargs
    assert kw["prompt_embeds"].shape == kw["negative_prompt_embeds"].shape
    assert torch.isfinite(kw["prompt_embeds"]).all()


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_no_guidance_skips_the_negative_pass_and_keeps_the_image(arch, sd15, sdxl):
    pipe = sd15 if arch == "sd15" else sdxl
    calls = []
    handle = pipe.text_encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        full = build_conditioning(pipe, "a cat", "blurry", guidance=True)
        with_negative = len(calls)
        calls.clear()
        lean = build_conditioning(pipe, "a cat", "blurry", guidance=False)
        assert len(calls) < with_negative
    finally:
        handle.remove()
    assert torch.count_nonzero(lean.pipeline_kwargs["negative_prompt_embeds"]) == 0
    assert lean.pipeline_kwargs["negative_prompt_embeds"].shape == full.pipeline_kwargs["negative_prompt_embeds"].shape
    a = _image(pipe, full, cfg=1.0)
    b = _image(pipe, lean, cfg=1.0)
    assert np.array_equal(np.asarray(a), np.asarray(b))
