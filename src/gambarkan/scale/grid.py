"""X/Y/Z plot (A1111's "X/Y/Z plot" script): one request per cell through the engine, one labelled grid.

An axis is ``field=v1,v2,...`` for any request field (``steps=10,20``, ``cfg=4,7``,
``sampler="Euler a","DPM++ 2M"``) or ``sr=search,replace1,...`` (A1111's Prompt S/R: the first
value is looked for in the prompt and each value replaces it). Every cell uses the same seed
unless an axis is ``seed``. Each cell is saved with its own metadata; the grid is one PNG per
call with the axis labels drawn on it (one block per Z value).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gambarkan.errors import InvalidRequestError
from gambarkan.request import GenerationRequest, GenerationResult

ALIASES = {"cfg_scale": "cfg", "sampler_name": "sampler", "negative": "negative_prompt", "prompt_sr": "sr", "prompt s/r": "sr", "s/r": "sr"}
# Axis names as drawn on the grid.
LABELS = {
    "en": {"sr": "prompt", "negative_prompt": "negative", "cfg": "CFG", "steps": "steps", "batch_size": "batch size", "clip_skip": "clip skip"},
    "id": {"sr": "prompt", "negative_prompt": "negatif", "cfg": "CFG", "steps": "langkah", "seed": "seed", "width": "lebar", "height": "tinggi",
           "model": "model", "preset": "paket", "sampler": "sampler", "batch_size": "ukuran batch", "clip_skip": "clip skip"},
}  # fmt: skip


@dataclass
class Axis:
    """One axis: the field it changes and its values (strings as typed; the request converts them)."""

    field: str
    values: list[str]

    def label(self, value: str, lang: str) -> str:
        name = LABELS.get(lang, {}).get(self.field, self.field.replace("_", " "))
        return f"{name}: {value}"


def parse_axis(spec: str) -> Axis:
    """``steps=10,20,30`` -> Axis; quoted values may hold commas (CSV rules)."""
    name, sep, rest = spec.partition("=")
    name = ALIASES.get(name.strip().lower(), name.strip().lower().replace("-", "_"))
    if not sep or not name:
        raise InvalidRequestError(f"axis '{spec}' is not field=values", 'write e.g. --x steps=10,20,30 or --y sampler="Euler a","DPM++ 2M"')
    if name not in GenerationRequest.model_fields and name != "sr":
        from gambarkan.errors import did_you_mean

        raise InvalidRequestError(f"unknown axis field '{name}'", did_you_mean(name, [*GenerationRequest.model_fields, "sr"]) or "use a request field or sr")
    if name == "prompt":
        raise InvalidRequestError("a prompt axis is written sr=search,replacement,...", "e.g. --x sr=kucing,anjing,burung")
    values = [v.strip() for v in next(csv.reader([rest], skipinitialspace=True), [])]
    values = [v for v in values if v]
    if not values:
        raise InvalidRequestError(f"axis '{spec}' has no values", "give one or more values separated by commas")
    return Axis(name, values)


@dataclass
class Cell:
    """One picture of the grid: its position and request."""

    x: int
    y: int
    z: int
    request: GenerationRequest


def plan_cells(base: GenerationRequest, axes: list[Axis | None]) -> list[Cell]:
    """Every cell's request, all checked now (before any model loads); one seed for all unless an axis sets it."""
    if base.seed < 0:
        base = base.merged(seed=random.randint(0, 2**32 - 1 - base.batch_size * base.count))
    padded = [a or Axis("", [""]) for a in (axes + [None, None, None])[:3]]
    for axis in padded:
        if axis.field == "sr" and axis.values[0] not in base.prompt:
            raise InvalidRequestError(f"prompt S/R: '{axis.values[0]}' is not in the prompt", "the first sr value is the text to replace")
    cells: list[Cell] = []
    for z, zv in enumerate(padded[2].values):
        for y, yv in enumerate(padded[1].values):
            for x, xv in enumerate(padded[0].values):
                changes: dict[str, Any] = {}
                prompt = base.prompt
                for axis, value in ((padded[0], xv), (padded[1], yv), (padded[2], zv)):
                    if axis.field == "sr":
                        prompt = prompt.replace(axis.values[0], value)
                    elif axis.field:
                        changes[axis.field] = value
                try:
                    cells.append(Cell(x, y, z, base.merged(prompt=prompt, **changes)))
                except InvalidRequestError as exc:
                    raise InvalidRequestError(f"grid cell ({', '.join(f'{k}={v}' for k, v in changes.items())}): {exc.message}", exc.hint) from None
    return cells


def run_cells(cells: list[Cell], engine: Any, on_progress: Callable[[Any], None] | None = None) -> Iterator[tuple[Cell, GenerationResult]]:
    """Each cell through the one engine, in order."""
    for cell in cells:
        yield cell, engine.generate(cell.request, on_progress=on_progress)


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def draw_grid(images: dict[tuple[int, int, int], Any], axes: list[Axis | None], lang: str = "en") -> Any:
    """The labelled grid: X labels on top, Y labels on the left, one block per Z value with its title."""
    from PIL import Image, ImageDraw

    padded = [a or Axis("", [""]) for a in (axes + [None, None, None])[:3]]
    first = next(iter(images.values()))
    cw, ch = first.size
    font = _font(max(12, cw // 10))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_size(text: str) -> tuple[int, int]:
        left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
        return right - left, bottom - top

    x_labels = [padded[0].label(v, lang) if padded[0].field else "" for v in padded[0].values]
    y_labels = [padded[1].label(v, lang) if padded[1].field else "" for v in padded[1].values]
    z_labels = [padded[2].label(v, lang) if padded[2].field else "" for v in padded[2].values]
    pad = max(6, cw // 20)
    left = max([text_size(t)[0] for t in y_labels] + [0]) + 2 * pad if any(y_labels) else 0
    top = max([text_size(t)[1] for t in x_labels] + [0]) + 2 * pad if any(x_labels) else 0
    title = max([text_size(t)[1] for t in z_labels] + [0]) + 2 * pad if any(z_labels) else 0
    nx, ny, nz = len(padded[0].values), len(padded[1].values), len(padded[2].values)
    block_h = title + top + ny * ch
    grid = Image.new("RGB", (left + nx * cw, nz * block_h), "white")
    draw = ImageDraw.Draw(grid)
    for z in range(nz):
        y0 = z * block_h
        if z_labels[z]:
            draw.text((pad, y0 + pad), z_labels[z], fill="black", font=font)
        for x, label in enumerate(x_labels):
            w, _ = text_size(label)
            draw.text((left + x * cw + (cw - w) // 2, y0 + title + pad), label, fill="black", font=font)
        for y, label in enumerate(y_labels):
            _, h = text_size(label)
            draw.text((pad, y0 + title + top + y * ch + (ch - h) // 2), label, fill="black", font=font)
            for x in range(nx):
                grid.paste(images[(x, y, z)].convert("RGB").resize((cw, ch)), (left + x * cw, y0 + title + top + y * ch))
    return grid


def grid_parameters(first: str, axes: list[Axis | None]) -> str:
    """The grid's PNG text: the first cell's parameters plus A1111's X/Y/Z Type and Values."""
    extra = []
    for letter, axis in zip("XYZ", axes):
        if axis is not None:
            kind = "Prompt S/R" if axis.field == "sr" else axis.field
            extra.append(f'{letter} Type: {kind}, {letter} Values: "{", ".join(axis.values)}"')
    return first + (", " + ", ".join(extra) if extra else "")


def save_grid(image: Any, folder: Path, parameters: str) -> Path:
    """Write the grid as ``grid-NNNNN.png`` (next free number) atomically."""
    from gambarkan.outputs.png import encode_png, write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.stem.split("-")[1]) for p in folder.glob("grid-*.png") if p.stem.split("-")[1].isdigit()]
    path = folder / f"grid-{max(numbers, default=0) + 1:05d}.png"
    write_atomic(path, encode_png(image, parameters))
    return path
