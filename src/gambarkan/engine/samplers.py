"""AUTOMATIC1111 sampler names <-> diffusers schedulers.

The table is plain data so listing and validating names never imports torch or diffusers;
``make_scheduler`` builds the scheduler lazily from a pipeline's scheduler config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gambarkan.errors import InvalidRequestError, did_you_mean


@dataclass(frozen=True)
class Sampler:
    """One A1111 sampler name and the diffusers scheduler (plus flags) that reproduces it."""

    name: str
    scheduler: str
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def karras(self) -> bool:
        return bool(self.options.get("use_karras_sigmas"))


_K = {"use_karras_sigmas": True}
_SDE = {"algorithm_type": "sde-dpmsolver++"}

SAMPLERS: tuple[Sampler, ...] = (
    Sampler("DPM++ 2M", "DPMSolverMultistepScheduler", {}, "fast, good at 20-30 steps"),
    Sampler("DPM++ 2M Karras", "DPMSolverMultistepScheduler", _K, "fast and sharp, a good default"),
    Sampler("DPM++ 2M SDE", "DPMSolverMultistepScheduler", _SDE, "stochastic, more detail"),
    Sampler("DPM++ 2M SDE Karras", "DPMSolverMultistepScheduler", {**_SDE, **_K}, "stochastic, Karras sigmas"),
    Sampler("DPM++ SDE", "DPMSolverSDEScheduler", {}, "slow (2 evaluations a step), detailed"),
    Sampler("DPM++ SDE Karras", "DPMSolverSDEScheduler", _K, "slow, detailed, Karras sigmas"),
    Sampler("Euler", "EulerDiscreteScheduler", {}, "simple and predictable"),
    Sampler("Euler a", "EulerAncestralDiscreteScheduler", {}, "creative, changes with step count"),
    Sampler("LMS", "LMSDiscreteScheduler", {}, "linear multistep"),
    Sampler("LMS Karras", "LMSDiscreteScheduler", _K, "linear multistep, Karras sigmas"),
    Sampler("Heun", "HeunDiscreteScheduler", {}, "accurate, 2 evaluations a step"),
    Sampler("DPM2", "KDPM2DiscreteScheduler", {}, "2 evaluations a step"),
    Sampler("DPM2 Karras", "KDPM2DiscreteScheduler", _K, "2 evaluations a step, Karras sigmas"),
    Sampler("DPM2 a", "KDPM2AncestralDiscreteScheduler", {}, "ancestral DPM2"),
    Sampler("DPM2 a Karras", "KDPM2AncestralDiscreteScheduler", _K, "ancestral DPM2, Karras sigmas"),
    Sampler("DDIM", "DDIMScheduler", {}, "classic, deterministic"),
    Sampler("PLMS", "PNDMScheduler", {"skip_prk_steps": True}, "the original SD sampler"),
    Sampler("UniPC", "UniPCMultistepScheduler", {}, "very few steps (10-15)"),
    Sampler("DEIS", "DEISMultistepScheduler", {}, "few steps"),
    Sampler("LCM", "LCMScheduler", {}, "for LCM models and LCM-LoRA, 2-8 steps"),
)

_BY_NAME = {s.name.lower(): s for s in SAMPLERS}


def get_sampler(name: str) -> Sampler:
    """Look up a sampler by its A1111 name (case-insensitive); clear error with suggestions."""
    key = " ".join(name.split()).lower()
    if key in _BY_NAME:
        return _BY_NAME[key]
    hint = did_you_mean(name, [s.name for s in SAMPLERS])
    hint = f"{hint} see: gambarkan samplers" if hint else "see: gambarkan samplers"
    raise InvalidRequestError(f"unknown sampler '{name}'", hint)


#: Flow-matching models (FLUX): the A1111 names that apply and the scheduler each one is.
FLOW_SAMPLERS = {"Euler": "FlowMatchEulerDiscreteScheduler"}


def is_flow_config(base_config: Any) -> bool:
    """True when a model's scheduler config is a flow-matching one (FLUX, SD3)."""
    return str(dict(base_config).get("_class_name", "")).startswith("FlowMatch")


def _flow_scheduler(name: str, base_config: Any) -> Any:
    """A flow-matching scheduler for ``name``; the DDPM samplers have no meaning on a flow model."""
    import diffusers

    if name not in FLOW_SAMPLERS:
        raise InvalidRequestError(f"sampler '{name}' does not apply to flow-matching models like FLUX", f"use one of: {', '.join(FLOW_SAMPLERS)}")
    return getattr(diffusers, FLOW_SAMPLERS[name]).from_config(dict(base_config))


def make_scheduler(sampler: Sampler | str, base_config: Any) -> Any:
    """Build a fresh diffusers scheduler for ``sampler`` from a pipeline's scheduler config.

    A new scheduler per run keeps per-run state (step index, sigmas) out of shared pipelines.
    Flow-matching configs (FLUX) take their own branch (``FLOW_SAMPLERS``).
    """
    import diffusers

    if isinstance(sampler, str):
        sampler = get_sampler(sampler)
    if is_flow_config(base_config):
        return _flow_scheduler(sampler.name, base_config)
    cls = getattr(diffusers, sampler.scheduler)
    config = dict(base_config)
    # Turbo/LCM checkpoints ship "trailing" spacing; A1111 samplers otherwise use "leading".
    return cls.from_config(config, **sampler.options)
