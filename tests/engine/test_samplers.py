"""Every A1111 sampler name builds its diffusers scheduler and runs on a tiny model."""

from __future__ import annotations

import pytest

from gambarkan.engine.samplers import SAMPLERS, get_sampler, make_scheduler
from gambarkan.errors import InvalidRequestError


def test_lookup_is_case_and_space_insensitive():
    assert get_sampler("dpm++  2m karras").name == "DPM++ 2M Karras"
    assert get_sampler("DPM++ 2M Karras").options == {"use_karras_sigmas": True}


def test_unknown_sampler_suggests_close_names():
    with pytest.raises(InvalidRequestError) as info:
        get_sampler("Euler b")
    assert "did you mean 'Euler a'" in str(info.value) or "'Euler'" in str(info.value)
    assert "gambarkan samplers" in str(info.value)


@pytest.fixture(scope="module")
def tiny_pipe():
    from gambarkan.testing import tiny_pipeline

    pipe = tiny_pipeline()
    pipe.base_config = dict(pipe.scheduler.config)
    return pipe


@pytest.mark.parametrize("sampler", [s.name for s in SAMPLERS])
def test_each_sampler_runs(tiny_pipe, sampler: str):
    import numpy as np
    import torch

    scheduler = make_scheduler(sampler, tiny_pipe.base_config)
    expected = get_sampler(sampler)
    assert type(scheduler).__name__ == expected.scheduler
    for key, value in expected.options.items():
        assert scheduler.config[key] == value
    tiny_pipe.scheduler = scheduler
    image = tiny_pipe("a cat", num_inference_steps=3, width=64, height=64, generator=torch.Generator().manual_seed(0)).images[0]
    assert np.asarray(image).std() > 0


def test_sampler_flags_do_not_leak_into_the_next_run(engine, tiny_sd15_dir):
    from gambarkan.request import GenerationRequest

    base = GenerationRequest(prompt="a cat", model=str(tiny_sd15_dir), seed=2, steps=3, width=64, height=64, save=False, translate=False)
    first = engine.generate(base.merged(sampler="Euler")).images[0].image
    engine.generate(base.merged(sampler="DPM++ 2M SDE Karras"))
    again = engine.generate(base.merged(sampler="Euler")).images[0].image
    assert first.tobytes() == again.tobytes()
