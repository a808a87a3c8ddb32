"""AUTOMATIC1111 sampler names and schedule types -> diffusers schedulers.

The names themselves are plain data in ``gambarkan.sampler_names``; this module is the one
place that knows which diffusers scheduler class and options stand for each, so listing and
validating names never imports torch or diffusers. ``build_scheduler`` builds the scheduler
lazily from a pipeline's scheduler config.

Sources: the A1111 -> diffusers table in diffusers' ``docs/source/en/api/schedulers/overview.md``
("A1111/k-diffusion | Diffusers"; "Noise schedules and schedule types": Karras ->
``use_karras_sigmas``, sgm_uniform/simple -> ``timestep_spacing="trailing"``) and A1111 v1.10's
``modules/sd_samplers_kdiffusion.py`` / ``sd_schedulers.py`` for what each name means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gambarkan.sampler_names import (
    SAMPLER_NAMES,
    SamplerName,
    ScheduleType,
    effective_schedule,
    split_sampler,
)


@dataclass(frozen=True)
class Sampler:
    """One A1111 sampler name and the diffusers scheduler (plus its own flags) behind it."""

    name: str
    scheduler: str
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    aliases: tuple[str, ...] = ()


_DPMPP = {"algorithm_type": "dpmsolver++", "solver_order": 2}
_DPMPP_SDE = {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}

# Base sampler name -> (diffusers class, options that make it that sampler).
_DIFFUSERS: dict[str, tuple[str, dict[str, Any]]] = {
    "DPM++ 2M": ("DPMSolverMultistepScheduler", _DPMPP),
    "DPM++ SDE": ("DPMSolverSDEScheduler", {}),
    "DPM++ 2M SDE": ("DPMSolverMultistepScheduler", _DPMPP_SDE),
    "DPM++ 2M SDE Heun": ("DPMSolverMultistepScheduler", {**_DPMPP_SDE, "solver_type": "heun"}),
    "DPM++ 3M SDE": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 3}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "Euler": ("EulerDiscreteScheduler", {}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "Heun": ("HeunDiscreteScheduler", {}),
    "DPM2": ("KDPM2DiscreteScheduler", {}),
    "DPM2 a": ("KDPM2AncestralDiscreteScheduler", {}),
    "DDIM": ("DDIMScheduler", {}),
    "PLMS": ("PNDMScheduler", {"skip_prk_steps": True}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "LCM": ("LCMScheduler", {}),
    "DEIS": ("DEISMultistepScheduler", {}),
}

# Schedule type name -> (diffusers options, note when diffusers has no exact equivalent).
_SIGMA_FLAGS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")
SCHEDULE_OPTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "automatic": ({}, ""),
    "uniform": ({"timestep_spacing": "linspace"}, ""),
    "karras": ({"use_karras_sigmas": True}, ""),
    "exponential": ({"use_exponential_sigmas": True}, ""),
    "polyexponential": ({"use_exponential_sigmas": True}, "polyexponential at A1111's rho 1 is the exponential schedule"),
    "sgm_uniform": ({"timestep_spacing": "trailing"}, ""),
    "kl_optimal": ({}, "diffusers has no KL Optimal schedule: the sampler's own schedule was used"),
    "align_your_steps": ({}, "diffusers schedulers have no Align Your Steps option: the sampler's own schedule was used"),
    "simple": ({"timestep_spacing": "trailing"}, ""),
    "normal": ({"timestep_spacing": "linspace"}, ""),
    "ddim": ({"timestep_spacing": "leading", "steps_offset": 1}, ""),
    "beta": ({"use_beta_sigmas": True}, ""),
}

SAMPLERS: tuple[Sampler, ...] = tuple(
    Sampler(s.name, _DIFFUSERS[s.name][0], dict(_DIFFUSERS[s.name][1]), s.description, s.aliases) for s in SAMPLER_NAMES
)
_BY_NAME = {s.name: s for s in SAMPLERS}


@dataclass(frozen=True)
class SchedulerChoice:
    """What one sampler string runs as: class, all options, and what could not be honoured."""

    sampler: Sampler
    schedule: ScheduleType  # the effective one (Automatic resolved to the sampler's default)
    options: dict[str, Any]
    notes: tuple[str, ...] = ()


def get_sampler(name: str) -> Sampler:
    """The diffusers mapping of a sampler name (a schedule suffix is accepted and ignored here)."""
    base, _ = split_sampler(name)
    return _BY_NAME[base.name]


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


def choose(name: str, accepted: set[str] | None = None) -> SchedulerChoice:
    """Resolve ``"Euler a Karras"`` to its class + options; ``accepted`` = the class's init args.

    An option the class does not take (Karras for Euler a, any schedule for DDIM/PLMS/LCM) is
    left out with a note, as A1111's timestep samplers ignore the schedule type.
    """
    base, schedule = split_sampler(name)
    sampler = _BY_NAME[base.name]
    effective = effective_schedule(base, schedule)
    options = dict(sampler.options)
    # Sigma flags of the model's own config never leak in: exactly one schedule decides them.
    for flag in _SIGMA_FLAGS:
        if accepted is None or flag in accepted:
            options[flag] = False
    extra, note = SCHEDULE_OPTIONS[effective.name]
    notes = [f"{effective.label}: {note}"] if note else []
    dropped = [k for k in extra if accepted is not None and k not in accepted]
    options.update({k: v for k, v in extra.items() if k not in dropped})
    if dropped:
        notes.append(f"{base.name} in diffusers takes no {effective.label} schedule: its own schedule was used")
    return SchedulerChoice(sampler, effective, options, tuple(notes))


def _accepted(cls: type) -> set[str]:
    import inspect

    return set(inspect.signature(cls.__init__).parameters) - {"self"}


def build_scheduler(sampler: str, base_config: Any) -> tuple[Any, list[str]]:
    """A fresh diffusers scheduler for ``sampler`` from a pipeline's scheduler config, plus notes.

    A new scheduler per run keeps per-run state (step index, sigmas) out of shared pipelines.
    Flow-matching configs (FLUX) take their own branch (``FLOW_SAMPLERS``).
    """
    import diffusers

    base, _ = split_sampler(sampler)
    if is_flow_config(base_config):
        return _flow_scheduler(base.name, base_config), []
    cls = getattr(diffusers, _BY_NAME[base.name].scheduler)
    choice = choose(sampler, _accepted(cls))
    return cls.from_config(dict(base_config), **choice.options), list(choice.notes)


def make_scheduler(sampler: str, base_config: Any) -> Any:
    """``build_scheduler`` without the notes (benchmarks, tools)."""
    return build_scheduler(sampler, base_config)[0]


def describe(sampler: SamplerName) -> str:
    """``DPMSolverMultistepScheduler (algorithm_type=dpmsolver++)`` for listings."""
    cls, options = _DIFFUSERS[sampler.name]
    flags = ", ".join(f"{k}={v}" for k, v in options.items())
    return cls + (f" ({flags})" if flags else "")
