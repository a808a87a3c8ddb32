"""Generation parameters written by other tools (Fooocus, ComfyUI, InvokeAI, NovelAI, A1111's
"stealth" alpha-channel metadata), read through ``sd-parsers`` and turned into the same dict
``outputs.png.parse_parameters`` gives for A1111 text, so ``info`` and ``--from`` treat them alike.

A1111 text (PNG ``parameters``, JPEG/WebP EXIF UserComment, Fooocus' A1111 mode) is read by
``outputs.png``; this module is only asked when that finds nothing or finds JSON.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

# Other tools' sampler names (ComfyUI/Fooocus k-diffusion names, InvokeAI and NovelAI spellings)
# -> A1111 names; a ComfyUI/Fooocus ``scheduler`` becomes the A1111 schedule type.
_SAMPLERS = {
    "euler": "Euler", "euler_ancestral": "Euler a", "euler_a": "Euler a", "k_euler": "Euler", "k_euler_a": "Euler a",
    "k_euler_ancestral": "Euler a", "heun": "Heun", "k_heun": "Heun", "lms": "LMS", "k_lms": "LMS", "dpm_2": "DPM2",
    "k_dpm_2": "DPM2", "dpm_2_ancestral": "DPM2 a", "k_dpm_2_a": "DPM2 a", "dpmpp_2m": "DPM++ 2M", "k_dpmpp_2m": "DPM++ 2M",
    "dpmpp_sde": "DPM++ SDE", "dpmpp_sde_gpu": "DPM++ SDE", "k_dpmpp_sde": "DPM++ SDE", "dpmpp_2m_sde": "DPM++ 2M SDE",
    "dpmpp_2m_sde_gpu": "DPM++ 2M SDE", "k_dpmpp_2m_sde": "DPM++ 2M SDE", "dpmpp_3m_sde": "DPM++ 3M SDE",
    "dpmpp_3m_sde_gpu": "DPM++ 3M SDE", "ddim": "DDIM", "plms": "PLMS", "uni_pc": "UniPC", "unipc": "UniPC", "lcm": "LCM",
    "deis": "DEIS", "dpmpp_2m_k": "DPM++ 2M Karras", "dpmpp_sde_k": "DPM++ SDE Karras", "euler_k": "Euler Karras",
    "lms_k": "LMS Karras", "heun_k": "Heun Karras", "dpmpp_2m_sde_k": "DPM++ 2M SDE Karras",
}
_SCHEDULES = {"karras": "Karras", "exponential": "Exponential", "sgm_uniform": "SGM Uniform", "simple": "Simple",
              "normal": "Normal", "ddim_uniform": "DDIM", "beta": "Beta", "kl_optimal": "KL Optimal",
              "align_your_steps": "Align Your Steps"}
_SIZE = re.compile(r"\(?\s*(\d+)\s*[,x]\s*(\d+)\s*\)?")


def _sampler(name: Any, scheduler: Any) -> str | None:
    from gambarkan.sampler_names import sampler_or_none

    if not isinstance(name, str):
        return None
    base = _SAMPLERS.get(name.strip().lower(), name)
    schedule = _SCHEDULES.get(str(scheduler or "").strip().lower())
    return sampler_or_none(base, schedule) or sampler_or_none(base)


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _number(value: Any) -> float | int | None:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else number


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v).strip() for v in value)
    return str(value).strip() if value else ""


def _size(info: Any) -> tuple[int | None, int | None]:
    """Width and height wherever the tool keeps them (top level, ``image``, Fooocus ``resolution``)."""
    raw = info.raw_parameters
    for data in (info.metadata, *(s.parameters for s in info.samplers)):
        if isinstance(data, dict):
            if _int(data.get("width")) and _int(data.get("height")):
                return _int(data["width"]), _int(data["height"])
            match = _SIZE.fullmatch(str(data.get("resolution", "")).strip())
            if match:
                return int(match.group(1)), int(match.group(2))
    graph = raw.get("prompt") if isinstance(raw, dict) else None
    if isinstance(graph, str):
        import json

        try:
            graph = json.loads(graph)
        except ValueError:
            graph = None
    if isinstance(graph, dict):  # ComfyUI: the latent image node feeding the sampler
        for node in graph.values():
            inputs = node.get("inputs", {}) if isinstance(node, dict) else {}
            if "latent_image" not in inputs:
                continue
            link = inputs["latent_image"]
            source = graph.get(str(link[0])) if isinstance(link, list) and link else None
            src = source.get("inputs", {}) if isinstance(source, dict) else {}
            if _int(src.get("width")) and _int(src.get("height")):
                return _int(src["width"]), _int(src["height"])
    return None, None


def read_foreign(path: str | Path) -> dict[str, Any] | None:
    """Parameters another tool stored in ``path`` (A1111-style keys plus ``Tool``), or None.

    A graph with more than one sampler (ComfyUI) is not reduced: only its text is returned, with
    a ``Note`` naming the tool, so ``--from`` re-uses the prompt and says what it left out.
    """
    try:
        from sd_parsers import ParserManager
        from sd_parsers.extractors import Eagerness
    except ImportError:  # optional: without it other tools' files are just "no parameters"
        return None
    logging.getLogger("sd_parsers").setLevel(logging.CRITICAL)
    try:
        info = ParserManager(eagerness=Eagerness.EAGER).parse(str(path))
    except Exception:  # noqa: BLE001 - hostile or odd files: no parameters rather than a crash
        return None
    if info is None:
        return None
    tool = str(getattr(info.generator, "value", info.generator))
    # The prompts as typed (sampler prompts), not a tool's expansion (Fooocus' full_prompt adds style words).
    prompt = ", ".join(str(p).strip() for p in info.prompts) or _text(info.metadata.get("full_prompt"))
    negative = ", ".join(str(p).strip() for p in info.negative_prompts) or _text(info.metadata.get("full_negative_prompt"))
    result: dict[str, Any] = {"prompt": prompt, "negative_prompt": negative, "Tool": tool}
    if tool == "AUTOMATIC1111":
        from gambarkan.outputs.png import parse_parameters

        text = info.raw_parameters.get("parameters") if isinstance(info.raw_parameters, dict) else None
        return {**parse_parameters(text), "Tool": "AUTOMATIC1111 (stealth metadata)"} if isinstance(text, str) else None
    if len(info.samplers) != 1:
        result["Note"] = f"made by {tool} with a graph gambarkan cannot reduce; only its text is shown"
        return result
    sampler = info.samplers[0]
    params = sampler.parameters
    fields = {
        "Steps": _int(params.get("steps", info.metadata.get("steps"))),
        "Sampler": _sampler(sampler.name, params.get("scheduler")),
        "CFG scale": _number(params.get("cfg_scale", params.get("scale"))),
        "Seed": _int(params.get("seed")),
        "Model": sampler.model.name if sampler.model and sampler.model.name else None,
        "Model hash": sampler.model.hash if sampler.model and sampler.model.hash else None,
    }
    result.update({k: v for k, v in fields.items() if v is not None})
    width, height = _size(info)
    if width and height:
        result["width"], result["height"] = width, height
        result["Size"] = f"{width}x{height}"
    return result
