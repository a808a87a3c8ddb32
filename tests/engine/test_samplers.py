"""Every A1111 sampler name and schedule type builds the diffusers scheduler A1111 means.

The expected table below is written out by hand from the sources, not derived from our own
table, so mapping "Euler a" to plain Euler (or dropping Karras) fails it:

- diffusers ``docs/source/en/api/schedulers/overview.md``, table "A1111/k-diffusion | Diffusers":
  DPM++ 2M -> DPMSolverMultistepScheduler; DPM++ 2M Karras -> + use_karras_sigmas=True;
  DPM++ 2M SDE -> algorithm_type="sde-dpmsolver++"; DPM++ SDE -> DPMSolverSDEScheduler;
  DPM2 -> KDPM2DiscreteScheduler; DPM2 a -> KDPM2AncestralDiscreteScheduler;
  Euler -> EulerDiscreteScheduler; Euler a -> EulerAncestralDiscreteScheduler;
  Heun -> HeunDiscreteScheduler; LMS -> LMSDiscreteScheduler; and "Noise schedules and schedule
  types": Karras -> use_karras_sigmas=True, sgm_uniform and simple -> timestep_spacing="trailing".
- A1111 v1.10 ``modules/sd_samplers_kdiffusion.py`` (``samplers_k_diffusion``): the sampler's
  ``options["scheduler"]`` is what "Automatic" means (karras for DPM++ 2M, DPM++ SDE, DPM2,
  DPM2 a; exponential for DPM++ 2M SDE, 2M SDE Heun, 3M SDE); 2M SDE Heun has
  ``solver_type="heun"``; 3M SDE is third order (``sample_dpmpp_3m_sde``).
- A1111 ``modules/sd_samplers_timesteps.py``: DDIM, PLMS (diffusers: PNDM with skip_prk_steps),
  UniPC; ``modules/sd_samplers_lcm.py``: LCM.
"""

from __future__ import annotations

import pytest

from gambarkan.engine.samplers import build_scheduler, choose
from gambarkan.errors import InvalidRequestError
from gambarkan.sampler_names import SAMPLER_NAMES, SCHEDULE_TYPES, canonical_sampler, split_sampler

K = {"use_karras_sigmas": True}
E = {"use_exponential_sigmas": True}

# A1111 name (with "Automatic") -> (diffusers class, options that must be set).
PINNED: dict[str, tuple[str, dict[str, object]]] = {
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2, **K}),
    "DPM++ SDE": ("DPMSolverSDEScheduler", K),
    "DPM++ 2M SDE": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, **E}),
    "DPM++ 2M SDE Heun": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_type": "heun", **E}),
    "DPM++ 3M SDE": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 3, **E}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "Euler": ("EulerDiscreteScheduler", {"use_karras_sigmas": False}),
    "LMS": ("LMSDiscreteScheduler", {"use_karras_sigmas": False}),
    "Heun": ("HeunDiscreteScheduler", {"use_karras_sigmas": False}),
    "DPM2": ("KDPM2DiscreteScheduler", K),
    "DPM2 a": ("KDPM2AncestralDiscreteScheduler", K),
    "DDIM": ("DDIMScheduler", {}),
    "PLMS": ("PNDMScheduler", {"skip_prk_steps": True}),
    "UniPC": ("UniPCMultistepScheduler", {"use_karras_sigmas": False}),
    "LCM": ("LCMScheduler", {}),
    "DEIS": ("DEISMultistepScheduler", {}),
    # Pre-1.9 spellings (the diffusers table's rows) still mean the same scheduler.
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", **K}),
    "DPM++ 2M SDE Karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", **K, "use_exponential_sigmas": False}),
    "DPM++ SDE Karras": ("DPMSolverSDEScheduler", K),
    "LMS Karras": ("LMSDiscreteScheduler", K),
    "DPM2 a Karras": ("KDPM2AncestralDiscreteScheduler", K),
    # A1111 >= 1.9 pairs (sampler + schedule type), diffusers' "schedule types" rows.
    "Euler Karras": ("EulerDiscreteScheduler", K),
    "Euler Exponential": ("EulerDiscreteScheduler", {**E, "use_karras_sigmas": False}),
    "Euler Beta": ("EulerDiscreteScheduler", {"use_beta_sigmas": True, "use_karras_sigmas": False}),
    "Euler SGM Uniform": ("EulerDiscreteScheduler", {"timestep_spacing": "trailing"}),
    "Euler Simple": ("EulerDiscreteScheduler", {"timestep_spacing": "trailing"}),
    "Euler Uniform": ("EulerDiscreteScheduler", {"timestep_spacing": "linspace"}),
    "Euler DDIM": ("EulerDiscreteScheduler", {"timestep_spacing": "leading", "steps_offset": 1}),
    "DPM++ 2M Uniform": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": False, "timestep_spacing": "linspace"}),
    "UniPC Karras": ("UniPCMultistepScheduler", K),
}


@pytest.fixture(scope="module")
def base_config() -> dict[str, object]:
    from gambarkan.testing import tiny_pipeline

    return dict(tiny_pipeline().scheduler.config)


@pytest.mark.parametrize("name", list(PINNED))
def test_each_a1111_name_is_pinned_to_its_scheduler(base_config, name: str):
    scheduler, _ = build_scheduler(name, base_config)
    cls, options = PINNED[name]
    assert type(scheduler).__name__ == cls
    for key, value in options.items():
        assert scheduler.config[key] == value, (name, key)


def test_the_pinned_table_covers_every_sampler():
    assert {s.name for s in SAMPLER_NAMES} <= set(PINNED)


def test_model_config_sigma_flags_do_not_leak(base_config):
    # A checkpoint shipping a Karras config must not make plain "Euler" Karras.
    scheduler, _ = build_scheduler("Euler", {**base_config, "use_karras_sigmas": True})
    assert scheduler.config["use_karras_sigmas"] is False


@pytest.mark.parametrize("schedule", [t.label for t in SCHEDULE_TYPES])
@pytest.mark.parametrize("sampler", [s.name for s in SAMPLER_NAMES])
def test_every_sampler_accepts_every_schedule_type(base_config, sampler: str, schedule: str):
    name = canonical_sampler(sampler, schedule)
    scheduler, notes = build_scheduler(name, base_config)
    scheduler.set_timesteps(4)
    assert len(scheduler.timesteps) >= 4
    assert all(isinstance(n, str) and n for n in notes)


def test_unsupported_pairs_are_accepted_with_a_note(base_config):
    _, notes = build_scheduler("Euler a Karras", base_config)
    assert any("Euler a" in n and "Karras" in n for n in notes)
    _, notes = build_scheduler("Euler KL Optimal", base_config)
    assert any("KL Optimal" in n for n in notes)
    _, notes = build_scheduler("Euler Karras", base_config)
    assert notes == []


def test_names_split_as_a1111_does():
    sampler, schedule = split_sampler("dpm++  2m karras")
    assert (sampler.name, schedule.name) == ("DPM++ 2M", "karras")
    assert split_sampler("k_euler_a")[0].name == "Euler a"
    assert split_sampler("DDIM") == (split_sampler("DDIM")[0], None)  # a sampler before a schedule
    assert canonical_sampler("Euler a", "sgmuniform") == "Euler a SGM Uniform"
    assert choose("DPM++ 2M").schedule.name == "karras"  # A1111: Automatic = the sampler's default


def test_unknown_sampler_suggests_close_names():
    with pytest.raises(InvalidRequestError) as info:
        split_sampler("Euler b")
    assert "did you mean" in str(info.value) and "'Euler a'" in str(info.value)
    assert "gambarkan samplers" in str(info.value)


@pytest.fixture(scope="module")
def tiny_pipe():
    from gambarkan.testing import tiny_pipeline

    pipe = tiny_pipeline()
    pipe.base_config = dict(pipe.scheduler.config)
    return pipe


@pytest.mark.parametrize("sampler", [s.name for s in SAMPLER_NAMES])
def test_each_sampler_runs(tiny_pipe, sampler: str):
    import numpy as np
    import torch

    tiny_pipe.scheduler, _ = build_scheduler(sampler, tiny_pipe.base_config)
    image = tiny_pipe("a cat", num_inference_steps=3, width=64, height=64, generator=torch.Generator().manual_seed(0)).images[0]
    assert np.asarray(image).std() > 0


def test_sampler_flags_do_not_leak_into_the_next_run(engine, tiny_sd15_dir):
    from gambarkan.request import GenerationRequest

    base = GenerationRequest(prompt="a cat", model=str(tiny_sd15_dir), seed=2, steps=3, width=64, height=64, save=False, translate=False)
    first = engine.generate(base.merged(sampler="Euler")).images[0].image
    engine.generate(base.merged(sampler="DPM++ 2M SDE Karras"))
    again = engine.generate(base.merged(sampler="Euler")).images[0].image
    assert first.tobytes() == again.tobytes()


def test_schedule_type_changes_the_image_and_is_written_a1111_style(engine, tiny_sd15_dir):
    from gambarkan.outputs.png import parse_parameters
    from gambarkan.request import GenerationRequest

    base = GenerationRequest(prompt="a cat", model=str(tiny_sd15_dir), seed=2, steps=3, width=64, height=64, save=False, translate=False)
    plain = engine.generate(base.merged(sampler="Euler")).images[0]
    karras = engine.generate(base.merged(sampler="Euler", scheduler="karras")).images[0]
    assert plain.image.tobytes() != karras.image.tobytes()
    assert "Sampler: Euler, Schedule type: Karras," in karras.parameters
    assert "Sampler: Euler, Schedule type: Automatic," in plain.parameters
    assert parse_parameters(karras.parameters)["Sampler"] == "Euler Karras"
