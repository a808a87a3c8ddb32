"""Variations through the engine: each image its own expansion, reproducible from its seed alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gambarkan.outputs.png import read_parameters
from gambarkan.prompt.variations import expand
from gambarkan.request import GenerationRequest

BASE = {"steps": 2, "width": 64, "height": 64, "translate": False}


def test_each_image_gets_its_seeds_expansion_and_the_png_keeps_the_template(engine, tiny_sd15_dir: Path, tmp_path: Path) -> None:
    template = "kucing {merah|biru|hijau|kuning}"
    seed = 11
    varied = engine.generate(GenerationRequest(prompt=template, model=str(tiny_sd15_dir), seed=seed, batch_size=3, out_dir=str(tmp_path / "v"), **BASE))
    assert varied.seeds == [11, 12, 13] and [i.index for i in varied.images] == [0, 1, 2]
    expected = [expand(template, s, dirs=[]) for s in varied.seeds]
    assert len(set(expected)) > 1  # the seeds really pick different colours
    for image, prompt in zip(varied.images, expected):
        params = read_parameters(image.path)
        assert params["prompt"] == prompt and params["Template"] == template and params["Seed"] == image.seed
        # the same seed with the expanded prompt written out makes the same picture
        alone = engine.generate(GenerationRequest(prompt=prompt, model=str(tiny_sd15_dir), seed=image.seed, save=False, **BASE))
        assert np.array_equal(np.asarray(alone.images[0].image), np.asarray(image.image))
