"""AUTOMATIC1111 sampler names <-> diffusers schedulers.

The table is plain data so listing and validating names never imports torch or diffusers;
``make_scheduler`` builds the scheduler lazily from a pipeline's scheduler config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gambarkan.errors import InvalidRequestError, close_names


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
    close = close_names(name, [s.name for s in SAMPLERS])
    raise InvalidRequestError(code="unknown_sampler", params={"name": name, "close": close})


def make_scheduler(sampler: Sampler | str, base_config: Any) -> Any:
    """Build a fresh diffusers scheduler for ``sampler`` from a pipeline's scheduler config.

    A new scheduler per run keeps per-run state (step index, sigmas) out of shared pipelines.
    """
    import diffusers

    if isinstance(sampler, str):
        sampler = get_sampler(sampler)
    cls = getattr(diffusers, sampler.scheduler)
    config = dict(base_config)
    # Turbo/LCM checkpoints ship "trailing" spacing; A1111 samplers otherwise use "leading".
    return cls.from_config(config, **sampler.options)
