"""``gambarkan.generate_many``: results as rows finish, bad rows reported not raised, resume by manifest."""

from __future__ import annotations

from pathlib import Path

import gambarkan


def test_generate_many_yields_each_row_and_resumes(engine, tiny_sd15_dir: Path, tmp_path: Path) -> None:
    base = {"model": str(tiny_sd15_dir), "steps": 1, "width": 64, "height": 64, "translate": False, "out_dir": str(tmp_path)}
    rows = [{"prompt": "kucing", "seed": 1, **base}, {"prompt": "x", "steps": 999}, {"prompt": "anjing", "seed": 2, **base}]
    manifest = tmp_path / "m.jsonl"
    first = list(gambarkan.generate_many(rows, manifest=manifest, engine=engine))
    assert [(r.line, r.status) for r in first] == [(1, "done"), (2, "failed"), (3, "done")]
    assert "steps" in first[1].error and first[0].result.seeds == [1] and Path(first[2].images[0]).is_file()
    again = list(gambarkan.generate_many(rows, manifest=manifest, engine=engine))
    assert [(r.line, r.status) for r in again] == [(1, "skipped"), (3, "skipped"), (2, "failed")]  # done rows come first
    assert again[0].images == first[0].images
    assert len(list(tmp_path.glob("*.png"))) == 2
