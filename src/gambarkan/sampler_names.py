"""AUTOMATIC1111 sampler names, aliases and schedule types, as plain data (no torch, no diffusers).

Everything that only needs *names* (request validation, the catalog, PNG reading, listings)
uses this module; only ``gambarkan.engine.samplers`` maps a name to a diffusers scheduler.

Sources (A1111 v1.10): ``modules/sd_samplers_kdiffusion.py`` (``samplers_k_diffusion``),
``modules/sd_samplers_timesteps.py``, ``modules/sd_samplers_lcm.py``, ``modules/sd_schedulers.py``
(``schedulers``) and ``modules/sd_samplers.py: get_sampler_and_scheduler`` (how a name such as
"DPM++ 2M Karras" splits into sampler + schedule type, and what "Automatic" means).

A sampler is written in one string everywhere inside gambarkan: the A1111 name, then the
schedule type's label when it is not Automatic ("Euler a", "DPM++ 2M Karras", "Euler a Beta").
That is exactly A1111's own legacy spelling, so old names keep working.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gambarkan.errors import InvalidRequestError, close_names


@dataclass(frozen=True)
class SamplerName:
    """One A1111 sampler: its name, A1111 aliases and A1111's own option dict."""

    name: str
    aliases: tuple[str, ...] = ()
    # A1111's options for the sampler; "scheduler" is what Automatic means for it.
    options: dict[str, object] = field(default_factory=dict)
    description: str = ""
    in_a1111: bool = True  # False for samplers only gambarkan offers (DEIS)

    @property
    def default_schedule(self) -> str:
        """The schedule type name Automatic stands for ("" = the model's own timesteps)."""
        return str(self.options.get("scheduler", ""))


@dataclass(frozen=True)
class ScheduleType:
    """One A1111 >= 1.9 schedule type (``modules/sd_schedulers.py``)."""

    name: str
    label: str
    aliases: tuple[str, ...] = ()
    default_rho: float = -1
    need_inner_model: bool = False

    def spellings(self) -> tuple[str, ...]:
        return (self.label, self.name, *self.aliases)


_KARRAS: dict[str, object] = {"scheduler": "karras"}
_EXP: dict[str, object] = {"scheduler": "exponential"}

# Order as A1111 v1.10 lists them (k-diffusion, then timesteps samplers, then LCM).
SAMPLER_NAMES: tuple[SamplerName, ...] = (
    SamplerName("DPM++ 2M", ("k_dpmpp_2m",), _KARRAS, "fast, good at 20-30 steps, a good default"),
    SamplerName("DPM++ SDE", ("k_dpmpp_sde",), {**_KARRAS, "second_order": True, "brownian_noise": True}, "slow (2 evaluations a step), detailed"),
    SamplerName("DPM++ 2M SDE", ("k_dpmpp_2m_sde",), {**_EXP, "brownian_noise": True}, "stochastic, more detail"),
    SamplerName("DPM++ 2M SDE Heun", ("k_dpmpp_2m_sde_heun",), {**_EXP, "brownian_noise": True, "solver_type": "heun"}, "stochastic, Heun solver"),
    SamplerName("DPM++ 3M SDE", ("k_dpmpp_3m_sde",), {**_EXP, "discard_next_to_last_sigma": True, "brownian_noise": True}, "stochastic, third order, 30+ steps"),
    SamplerName("Euler a", ("k_euler_a", "k_euler_ancestral"), {"uses_ensd": True}, "creative, changes with step count"),
    SamplerName("Euler", ("k_euler",), {}, "simple and predictable"),
    SamplerName("LMS", ("k_lms",), {}, "linear multistep"),
    SamplerName("Heun", ("k_heun",), {"second_order": True}, "accurate, 2 evaluations a step"),
    SamplerName("DPM2", ("k_dpm_2",), {**_KARRAS, "discard_next_to_last_sigma": True, "second_order": True}, "2 evaluations a step"),
    SamplerName("DPM2 a", ("k_dpm_2_a",), {**_KARRAS, "discard_next_to_last_sigma": True, "uses_ensd": True, "second_order": True}, "ancestral DPM2"),
    SamplerName("DDIM", ("ddim",), {}, "classic, deterministic"),
    SamplerName("PLMS", ("plms",), {}, "the original SD sampler"),
    SamplerName("UniPC", ("unipc",), {}, "very few steps (10-15)"),
    SamplerName("LCM", ("k_lcm",), {}, "for LCM models and LCM-LoRA, 2-8 steps"),
    SamplerName("DEIS", ("deis",), {}, "few steps (gambarkan extra, not in A1111)", in_a1111=False),
)

# ``modules/sd_schedulers.py: schedulers`` (v1.10), same order, names, labels, aliases, rho.
SCHEDULE_TYPES: tuple[ScheduleType, ...] = (
    ScheduleType("automatic", "Automatic"),
    ScheduleType("uniform", "Uniform", need_inner_model=True),
    ScheduleType("karras", "Karras", default_rho=7.0),
    ScheduleType("exponential", "Exponential"),
    ScheduleType("polyexponential", "Polyexponential", default_rho=1.0),
    ScheduleType("sgm_uniform", "SGM Uniform", ("SGMUniform",), need_inner_model=True),
    ScheduleType("kl_optimal", "KL Optimal"),
    ScheduleType("align_your_steps", "Align Your Steps"),
    ScheduleType("simple", "Simple", need_inner_model=True),
    ScheduleType("normal", "Normal", need_inner_model=True),
    ScheduleType("ddim", "DDIM", need_inner_model=True),
    ScheduleType("beta", "Beta", need_inner_model=True),
)

AUTOMATIC = SCHEDULE_TYPES[0]


def _key(text: str) -> str:
    return " ".join(str(text).split()).lower()


_SAMPLERS_BY_KEY: dict[str, SamplerName] = {}
for _s in SAMPLER_NAMES:
    for _spelling in (_s.name, *_s.aliases):
        _SAMPLERS_BY_KEY[_key(_spelling)] = _s
_SCHEDULES_BY_KEY: dict[str, ScheduleType] = {_key(sp): t for t in SCHEDULE_TYPES for sp in t.spellings()}


def find_schedule(name: str) -> ScheduleType:
    """A schedule type by name, label or alias (case-insensitive); clear error otherwise."""
    found = _SCHEDULES_BY_KEY.get(_key(name))
    if found is None:
        close = close_names(name, [t.label for t in SCHEDULE_TYPES])
        raise InvalidRequestError(code="unknown_schedule_type", params={"name": name, "close": close})
    return found


def split_sampler(name: str) -> tuple[SamplerName, ScheduleType | None]:
    """``"DPM++ 2M Karras"`` -> (DPM++ 2M, Karras); ``"Euler a"`` -> (Euler a, None).

    As A1111's ``get_sampler_and_scheduler``: an exact sampler name or alias first, else a
    trailing schedule type label/name/alias is split off. Unknown names raise with suggestions.
    """
    key = _key(name)
    if key in _SAMPLERS_BY_KEY:
        return _SAMPLERS_BY_KEY[key], None
    for schedule in SCHEDULE_TYPES:
        for spelling in schedule.spellings():
            suffix = " " + _key(spelling)
            if key.endswith(suffix) and key[: -len(suffix)] in _SAMPLERS_BY_KEY:
                return _SAMPLERS_BY_KEY[key[: -len(suffix)]], schedule
    close = close_names(name, all_sampler_spellings())
    raise InvalidRequestError(code="unknown_sampler", params={"name": name, "close": close})


def join_sampler(sampler: SamplerName, schedule: ScheduleType | None) -> str:
    """The one-string spelling: the name, plus the schedule label unless it is Automatic."""
    if schedule is None or schedule is AUTOMATIC:
        return sampler.name
    return f"{sampler.name} {schedule.label}"


def canonical_sampler(name: str, schedule: str | None = None) -> str:
    """Validate and spell a sampler (+ optional schedule type) the one gambarkan way.

    ``schedule`` (a request's ``scheduler`` field) replaces a schedule carried in ``name``
    only when it is given; ``canonical_sampler("dpm++ 2m karras") == "DPM++ 2M Karras"``.
    """
    sampler, carried = split_sampler(name)
    chosen = find_schedule(schedule) if schedule else carried
    return join_sampler(sampler, chosen)


def effective_schedule(sampler: SamplerName, schedule: ScheduleType | None) -> ScheduleType:
    """What Automatic stands for: the sampler's A1111 default (Karras for DPM++ 2M), else Automatic."""
    if schedule is None or schedule is AUTOMATIC:
        default = sampler.default_schedule
        return _SCHEDULES_BY_KEY[default] if default else AUTOMATIC
    return schedule


def infotext_fields(name: str) -> tuple[str, str]:
    """(``Sampler``, ``Schedule type``) as A1111 >= 1.9 writes them in a PNG's parameters."""
    sampler, schedule = split_sampler(name)
    return sampler.name, effective_schedule(sampler, schedule).label


def all_sampler_spellings() -> list[str]:
    """Every sampler name plus every legacy "<name> <schedule>" spelling (for suggestions)."""
    names = [s.name for s in SAMPLER_NAMES]
    return names + [f"{s.name} {t.label}" for s in SAMPLER_NAMES for t in SCHEDULE_TYPES[1:]]


def sampler_or_none(name: object, schedule: object = None) -> str | None:
    """``canonical_sampler`` for stored text (PNG, history); None when it names nothing we have."""
    if not isinstance(name, str) or not name.strip():
        return None
    for wanted in (schedule if isinstance(schedule, str) and schedule.strip() else None, None):
        try:
            return canonical_sampler(name, wanted)
        except InvalidRequestError:
            continue  # a schedule type from a fork we do not know: keep the sampler alone
    return None


# Short menu for pickers (UI): every sampler, plus its pre-1.9 "Karras" spelling where the
# schedule changes something in diffusers. Any other pair is still accepted when typed.
MENU_NAMES: tuple[str, ...] = tuple(
    spelling
    for s in SAMPLER_NAMES
    for spelling in ((s.name, f"{s.name} Karras") if s.name not in ("Euler a", "DDIM", "PLMS", "LCM") else (s.name,))
)
