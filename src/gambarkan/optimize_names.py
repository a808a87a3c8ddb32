"""Names of the speed techniques (``--optimize`` words) and their parser, as plain data.

They live below the engine so request validation can check ``optimize`` without importing
``gambarkan.engine``; ``engine/optimize.py`` applies them.
"""

from __future__ import annotations

from gambarkan.errors import InvalidRequestError, did_you_mean

#: name -> (lossless?, one-line description). The order is the order they are applied in.
TECHNIQUES: dict[str, tuple[bool, str]] = {
    "threads": (True, "CPU: one PyTorch thread per physical core"),
    "sdpa": (True, "PyTorch scaled_dot_product_attention in every attention layer"),
    "channels_last": (True, "U-Net and VAE convolutions in channels-last memory layout"),
    "fused_qkv": (True, "one matrix multiply for the query/key/value projections"),
    "vae_fp32": (True, "fp16 GPU: keep an SDXL VAE that overflows in fp16 in fp32 (no black images, no per-run cast)"),
    "compile": (True, "torch.compile of the U-Net and VAE decoder, cached per model and shape"),
    "cuda_graphs": (True, "CUDA: replay the compiled U-Net as a CUDA graph (fixed shapes)"),
    "taesd_preview": (True, "live previews decoded with TAESD (the final image is untouched)"),
    "openvino": (True, "CPU: run the U-Net with OpenVINO (static shapes, converted once per size; bf16 with bf16_autocast)"),
    "bf16_autocast": (False, "CPU: bfloat16 matrix maths where the processor has bf16 instructions"),
    "taesd_decode": (False, "decode the final image with the tiny TAESD decoder"),
    "deepcache": (False, "DeepCache: reuse high-level U-Net features between steps"),
}
#: Spec words that are not technique names.
LEVELS = ("default", "none", "all-lossless", "fast")


def parse_spec(spec: str | None) -> tuple[str | None, dict[str, bool]]:
    """``"fast,compile,-sdpa"`` -> (level or None, {technique: on/off}); raises on unknown words.

    Cheap (no torch), so request validation can call it.
    """
    level: str | None = None
    switches: dict[str, bool] = {}
    for raw in (spec or "").replace(" ", ",").split(","):
        word = raw.strip().lower()
        if not word:
            continue
        on = True
        if word.startswith("-"):
            on, word = False, word[1:]
        elif word.startswith(("no-", "no_")):
            on, word = False, word[3:]
        if word in LEVELS:
            level = word
            continue
        name = word.replace("-", "_")
        if name not in TECHNIQUES:
            hint = did_you_mean(name, [*TECHNIQUES, *LEVELS])
            raise InvalidRequestError(
                f"unknown optimisation '{name}'" + (f" ({hint})" if hint else ""),
                f"use any of: {', '.join(TECHNIQUES)}; prefix with - to turn one off; or one of {', '.join(LEVELS)}",
            )
        switches[name] = on
    return level, switches
