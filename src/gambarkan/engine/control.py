"""ControlNet in the one generate path: control maps, the models that read them, call arguments.

``prepare`` makes each unit's map at the working size (before any model is loaded, so a bad
setting fails at once); ``attach`` loads the unit's ControlNet models (cached on the loaded
model) and returns them for ``engine.tasks.pipeline_for``, which derives the ControlNet
variant of the task's pipeline with ``from_pipe`` (the base pipeline is never changed, so the
next request without control starts clean). ``call_kwargs`` are the pipeline arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gambarkan.inputs.control import MODE_LABELS, RESIZE_LABELS, ControlUnit

if TYPE_CHECKING:
    from PIL import Image

    from gambarkan.config import Settings


@dataclass
class ControlPlan:
    """The request's control units with their maps made, ready for the pipeline call."""

    units: Sequence[ControlUnit]
    maps: list[Image.Image]
    resolutions: list[int]
    notes: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # filled by attach: the names PNG metadata shows

    def metadata(self) -> dict[str, str]:
        """A1111's ``ControlNet N: "Module: ..., Model: ..., Weight: ..."`` fields."""
        fields: dict[str, str] = {}
        for i, (unit, res) in enumerate(zip(self.units, self.resolutions)):
            model = self.models[i] if i < len(self.models) else (unit.model or "None")
            parts = [
                f"Module: {unit.preprocessor}",
                f"Model: {model}",
                f"Weight: {unit.weight:g}",
                f"Resize Mode: {RESIZE_LABELS[unit.resize_mode]}",
                f"Processor Res: {res}",
                *([f"Threshold A: {unit.threshold_a:g}"] if unit.threshold_a is not None else []),
                *([f"Threshold B: {unit.threshold_b:g}"] if unit.threshold_b is not None else []),
                f"Guidance Start: {unit.guidance_start:g}",
                f"Guidance End: {unit.guidance_end:g}",
                f"Pixel Perfect: {unit.pixel_perfect}",
                f"Control Mode: {MODE_LABELS[unit.control_mode]}",
                f"Image hash: {unit.image.short_hash()}",
            ]
            fields[f"ControlNet {i}"] = ", ".join(parts)  # format_parameters quotes it (it has commas)
        return fields


def control_map(unit: ControlUnit, width: int, height: int) -> tuple[Image.Image, int]:
    """The unit's map at the working size, and the processor resolution used."""
    from gambarkan.engine.tasks import resize_image
    from gambarkan.inputs.preprocessors import make_control_map, pixel_perfect_resolution

    image = unit.image.image
    resolution = unit.processor_res
    if unit.pixel_perfect:
        mode = "fill" if unit.resize_mode == "resize_and_fill" else "crop"
        resolution = max(64, min(2048, pixel_perfect_resolution(image.size, (width, height), mode)))
    made = make_control_map(unit.preprocessor, image, resolution, unit.threshold_a, unit.threshold_b)
    return resize_image(made, width, height, unit.resize_mode), resolution


def prepare(units: Sequence[ControlUnit], width: int, height: int) -> ControlPlan | None:
    """The control plan for a request (None without units): every map made now."""
    if not units:
        return None
    maps, resolutions = [], []
    for unit in units:
        made, res = control_map(unit, width, height)
        maps.append(made)
        resolutions.append(res)
    plan = ControlPlan(units, maps, resolutions)
    if any(u.control_mode == "prompt" for u in units):
        plan.notes.append("control mode 'My prompt is more important' is run as 'Balanced' (diffusers has no such mode)")
    return plan


def attach(plan: ControlPlan, loaded: Any, device: str, dtype: str, settings: Settings, offline: bool) -> Any:
    """Load the plan's ControlNet models (once per process and model) and return the model
    the pipeline takes: one ControlNetModel, or a MultiControlNetModel for several units."""
    from gambarkan.models.controlnets import choose

    family = "sdxl" if loaded.arch == "sdxl" else "sd15"
    if loaded.arch not in ("sd15", "sd2", "sdxl"):
        from gambarkan.errors import InvalidRequestError

        raise InvalidRequestError(f"ControlNet is not supported for {loaded.arch} models yet", "use an SD 1.x or SDXL model")
    cache: dict[str, Any] = loaded.extras.setdefault("controlnets", {})
    models = []
    plan.models = []
    for unit in plan.units:
        choice = choose(unit.model, unit.preprocessor, family, settings)
        path = choice.path
        if path is None:
            from gambarkan.models.store import ensure_local

            assert choice.entry is not None
            path, _ = ensure_local(choice.entry.spec(), settings, offline=offline)
        key = str(path)
        if key not in cache:
            cache[key] = _load(path, device, dtype)
        models.append(cache[key])
        plan.models.append(choice.name)
    if len(models) == 1:
        return models[0]
    from diffusers.models.controlnets.multicontrolnet import MultiControlNetModel

    return MultiControlNetModel(models)


def _load(path: Any, device: str, dtype: str) -> Any:
    """A ControlNetModel from a diffusers folder or one ``.safetensors`` file, safety-checked first."""
    from pathlib import Path

    import torch
    from diffusers import ControlNetModel

    from gambarkan.errors import InvalidRequestError, ModelLoadError
    from gambarkan.models.safety import check_file, check_folder

    path = Path(path)
    torch_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(dtype, torch.float32)
    try:
        if path.is_dir():
            check_folder(path)
            model = ControlNetModel.from_pretrained(path, torch_dtype=torch_dtype)
        else:
            check_file(path)
            model = ControlNetModel.from_single_file(str(path), torch_dtype=torch_dtype)
    except (InvalidRequestError, ModelLoadError):
        raise
    except Exception as exc:  # noqa: BLE001 - diffusers raises many types for a bad file
        raise ModelLoadError(f"the ControlNet at {path} could not be loaded: {exc}".splitlines()[0], "check that it is a ControlNet for this model") from None
    model.to(device)
    return model


def check_fits(controlnet: Any, pipe: Any) -> None:
    """Refuse a ControlNet whose shape does not match the loaded model's U-Net (another family)."""
    from gambarkan.errors import InvalidRequestError

    nets = getattr(controlnet, "nets", [controlnet])
    unet_cross = pipe.unet.config.cross_attention_dim
    for net in nets:
        if net.config.cross_attention_dim != unet_cross:
            raise InvalidRequestError(
                f"a ControlNet (text width {net.config.cross_attention_dim}) does not fit this model (text width {unet_cross})",
                "use a ControlNet made for this model family",
            )


def call_kwargs(plan: ControlPlan, kind: str) -> dict[str, Any]:
    """The pipeline arguments of the control units (``image`` for txt2img, ``control_image`` else)."""
    many = len(plan.units) > 1
    maps: Any = plan.maps if many else plan.maps[0]
    weights = [u.weight for u in plan.units]
    kwargs: dict[str, Any] = {
        ("image" if kind == "txt2img" else "control_image"): maps,
        "controlnet_conditioning_scale": weights if many else weights[0],
        "control_guidance_start": [u.guidance_start for u in plan.units] if many else plan.units[0].guidance_start,
        "control_guidance_end": [u.guidance_end for u in plan.units] if many else plan.units[0].guidance_end,
    }
    if any(u.control_mode == "controlnet" for u in plan.units):
        kwargs["guess_mode"] = True
    return kwargs
