"""FLUX.1 (schnell/dev): a flow-matching transformer, CLIP-L pooled + T5-XXL text, 16 latent channels.

Prompts go to T5 as plain text: A1111 weights ``(word:1.3)`` have no meaning there and are
stripped with one note. FLUX.1-schnell is distilled for 4 steps without CFG, so there is no
negative prompt and no clip skip.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gambarkan.families.base import Family

#: Tensor names only a FLUX transformer has: BFL's original layout and diffusers' layout.
_FILE_MARKERS = ("double_blocks.", "model.diffusion_model.double_blocks.", "single_transformer_blocks.", "transformer.single_transformer_blocks.")


def detect_folder(index: Mapping[str, Any], folder: Path) -> bool:
    return str(index.get("_class_name", "")).startswith("Flux")


def detect_file(keys: Iterable[str]) -> bool:
    return any(k.startswith(_FILE_MARKERS) for k in keys)


FAMILY = Family(
    name="flux",
    title="FLUX.1",
    pipelines={"txt2img": "FluxPipeline", "img2img": "FluxImg2ImgPipeline", "inpaint": "FluxInpaintPipeline"},
    prompt_encoding="t5",
    native_size=(1024, 1024),
    sizes={"portrait": (832, 1216), "square": (1024, 1024), "landscape": (1216, 832)},
    default_sampler="Euler",  # FlowMatchEulerDiscreteScheduler; the only sampler a flow model gets
    scheduler_kind="flow",
    # high: GGUF Q4 transformer (6.8 GB) + T5 (4.9 GB in 8-bit, 9.5 GB in fp16) + CLIP/VAE + activations
    # all on the GPU: more than a T4's 15 GB leaves once CUDA is up, so a T4 gets ``low`` (model CPU
    # offload: one part on the GPU at a time; the 8-bit T5 stays there). Estimates, not measured.
    memory_mb={"high": 16000, "low": 8600},
    activation_mb=1500,
    latent_channels=16,
    # ComfyUI's latent_formats.Flux preview factors (16 channels -> RGB).
    latent_rgb=(
        (-0.0346, 0.0244, 0.0681), (0.0034, 0.0210, 0.0687), (0.0275, -0.0668, -0.0433), (-0.0174, 0.0160, 0.0617),
        (0.0859, 0.0721, 0.0329), (0.0004, 0.0383, 0.0115), (0.0405, 0.0861, 0.0915), (-0.0236, -0.0185, -0.0259),
        (-0.0245, 0.0250, 0.1180), (0.1008, 0.0755, -0.0421), (-0.0515, 0.0201, 0.0011), (0.0428, -0.0012, -0.0036),
        (0.0817, 0.0765, 0.0749), (-0.1264, -0.0522, -0.1103), (-0.0280, -0.0881, -0.0499), (-0.1262, -0.0982, -0.0778),
    ),
    latent_bias=(-0.0329, -0.0718, -0.0851),
    taesd_repo=None,  # madebyollin/taef1 exists, but previews would need the packed latents unpacked first
    unsupported=frozenset({"clip_skip", "prompt_weights", "negative_prompt", "embeddings", "taesd", "batching"}),
    optimizations_off=frozenset({"channels_last", "fused_qkv", "compile", "cuda_graphs", "openvino", "deepcache", "taesd_preview", "taesd_decode", "vae_fp32"}),
    catalog_defaults={"width": 1024, "height": 1024, "min_vram_mb": 8600, "min_ram_mb": 12000, "download_mb": 12100},
    metadata={"Model family": "flux"},
    sized_tasks=True,
    detect_folder=detect_folder,
    detect_file=detect_file,
)
