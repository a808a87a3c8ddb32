"""X/Y/Z plot: axes, cells through the engine, the labelled grid and its metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gambarkan.errors import InvalidRequestError
from gambarkan.outputs.png import read_parameters
from gambarkan.request import GenerationRequest
from gambarkan.scale.grid import Axis, draw_grid, grid_parameters, parse_axis, plan_cells, run_cells, save_grid


def test_axes_parse_quoted_values_and_aliases() -> None:
    assert parse_axis('sampler_name="Euler a","DPM++ 2M"') == Axis("sampler", ["Euler a", "DPM++ 2M"])
    assert parse_axis("cfg_scale=4, 7") == Axis("cfg", ["4", "7"])
    for bad, needle in [("stepz=1,2", "unknown axis field 'stepz'"), ("steps", "not field=values"), ("steps=", "no values"), ("prompt=a,b", "sr=")]:
        with pytest.raises(InvalidRequestError, match=needle):
            parse_axis(bad)


def test_cells_share_one_seed_and_are_checked_before_running() -> None:
    base = GenerationRequest(prompt="kucing merah", seed=-1)
    cells = plan_cells(base, [parse_axis("sr=merah,biru"), parse_axis("steps=3,4"), None])
    assert [(c.x, c.y, c.request.prompt, c.request.steps) for c in cells] == [
        (0, 0, "kucing merah", 3), (1, 0, "kucing biru", 3), (0, 1, "kucing merah", 4), (1, 1, "kucing biru", 4)]  # fmt: skip
    assert len({c.request.seed for c in cells}) == 1 and cells[0].request.seed >= 0
    with pytest.raises(InvalidRequestError, match="steps=999"):
        plan_cells(base, [parse_axis("steps=10,999")])
    with pytest.raises(InvalidRequestError, match="'hijau' is not in the prompt"):
        plan_cells(base, [parse_axis("sr=hijau,biru")])


def test_grid_of_real_cells_pixels_labels_and_metadata(engine, tiny_sd15_dir: Path, tmp_path: Path) -> None:
    base = GenerationRequest(prompt="kucing", model=str(tiny_sd15_dir), steps=1, width=64, height=64, seed=4, translate=False, out_dir=str(tmp_path))
    axes = [parse_axis("cfg=2,9"), None, None]
    done = list(run_cells(plan_cells(base, axes), engine))
    images = {(c.x, c.y, c.z): r.images[0].image for c, r in done}
    assert [read_parameters(r.images[0].path)["CFG scale"] for _, r in done] == [2, 9]  # each cell keeps its own metadata
    grid = draw_grid(images, axes, "id")
    assert grid.width == 128 and grid.height > 64  # two cells side by side under a label row
    pixels = np.asarray(grid)
    top = grid.height - 64
    assert np.array_equal(pixels[top:, :64], np.asarray(images[(0, 0, 0)]))
    assert np.array_equal(pixels[top:, 64:], np.asarray(images[(1, 0, 0)]))
    assert (pixels[:top] < 128).any()  # the labels are drawn (dark text on white)
    path = save_grid(grid, tmp_path, grid_parameters(done[0][1].images[0].parameters, axes))
    params = read_parameters(path)
    assert path.name == "grid-00001.png" and params["X Type"] == "cfg" and params["X Values"] == "2, 9" and params["Seed"] == 4


def test_bad_axis_on_the_command_line_is_one_line(cli) -> None:
    proc = cli("grid", "kucing", "--x", "stepz=1,2")
    assert proc.returncode == 2 and "unknown axis field 'stepz'" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
