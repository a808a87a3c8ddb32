"""The manifest: append-only lines, a line torn by a kill is ignored, done means PNGs on disk."""

from __future__ import annotations

from pathlib import Path

from gambarkan.inputs.batch import parse_rows
from gambarkan.outputs.manifest import Manifest
from gambarkan.scale.runner import make_jobs, split_done


def test_torn_last_line_is_ignored_and_the_next_append_starts_clean(tmp_path: Path) -> None:
    manifest = Manifest.in_folder(tmp_path)
    manifest.append({"key": "a-1", "status": "done", "images": []})
    with open(manifest.path, "ab") as handle:
        handle.write(b'{"key": "b-1", "status": "do')  # SIGKILL in the middle of a write
    assert [e["key"] for e in manifest.entries()] == ["a-1"]
    manifest.append({"key": "c-1", "status": "failed"})
    assert [e["key"] for e in manifest.entries()] == ["a-1", "c-1"]
    assert manifest.path.read_bytes().count(b"\n") == 3


def test_done_rows_are_skipped_only_while_their_pngs_exist(tmp_path: Path) -> None:
    jobs = make_jobs(parse_rows("kucing\nanjing\nkucing\n--steps 0 --prompt x\n", name="p.txt"))
    assert [j.key.rsplit("-", 1)[1] for j in jobs[:3]] == ["1", "1", "2"] and jobs[0].key != jobs[1].key
    png = tmp_path / "00001-1.png"
    png.write_bytes(b"png")
    manifest = Manifest.in_folder(tmp_path)
    manifest.append({"key": jobs[0].key, "status": "done", "images": [str(png)], "seeds": [1]})
    manifest.append({"key": jobs[1].key, "status": "failed", "error": "boom"})
    skipped, pending = split_done(jobs, manifest)
    assert [s.key for s in skipped] == [jobs[0].key] and skipped[0].images == [str(png)]
    assert [j.key for j in pending] == [jobs[1].key, jobs[2].key, jobs[3].key] and pending[2].request is None
    png.unlink()  # a deleted image makes its row "missing" again
    assert split_done(jobs, manifest)[0] == []


def test_the_row_hash_ignores_fields_left_at_their_defaults() -> None:
    from gambarkan.inputs.batch import request_hash
    from gambarkan.request import GenerationRequest

    plain = GenerationRequest(prompt="kucing", steps=3)
    assert request_hash(plain) == request_hash(GenerationRequest(prompt="kucing", steps=3, fast=False, negative_prompt=""))
    assert request_hash(plain) != request_hash(GenerationRequest(prompt="kucing", steps=4))
