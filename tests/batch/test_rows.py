"""Batch input rows: A1111 "prompts from file" lines, JSONL, CSV, defaults, and what fails where."""

from __future__ import annotations

import pytest

from gambarkan.inputs.batch import BatchInputError, parse_a1111_line, parse_rows, read_rows


def test_a1111_line_joins_prompt_words_and_maps_names() -> None:
    fields = parse_a1111_line('--prompt kucing "oranye tidur" --negative_prompt jelek buram --steps 20 --cfg_scale 6.5 --sampler_name "Euler a" --n_iter 2')
    assert fields == {"prompt": "kucing oranye tidur", "negative_prompt": "jelek buram", "steps": "20", "cfg_scale": "6.5", "sampler_name": "Euler a", "n_iter": "2"}
    (row,) = parse_rows('--prompt kucing --cfg_scale 6.5 --sampler_name "Euler a" --n_iter 2 --seed 5\n', name="p.txt")
    req = row.request
    assert (req.prompt, req.cfg, req.sampler, req.count, req.seed) == ("kucing", 6.5, "Euler a", 2, 5)


def test_text_lines_rows_override_defaults_and_keep_line_numbers() -> None:
    text = "kucing\n\n--prompt anjing --steps 9\n--steps 999 --prompt x\n--prompt 'unclosed\n"
    rows = parse_rows(text, name="p.txt", defaults={"steps": 3, "seed": 7})
    assert [r.line for r in rows] == [1, 3, 4, 5]
    assert (rows[0].request.prompt, rows[0].request.steps, rows[0].request.seed) == ("kucing", 3, 7)
    assert rows[1].request.steps == 9  # the row wins over the command line
    assert rows[2].request is None and "steps" in rows[2].error and "999" in rows[2].error
    assert rows[3].request is None and "cannot read the options" in rows[3].error


def test_jsonl_and_csv_rows() -> None:
    rows = parse_rows('{"prompt": "a", "seed": 3}\n"just a prompt"\n{"prompt": "b", "steps": "x"}\n[1]\n{bad\n', name="r.jsonl")
    assert rows[0].request.seed == 3 and rows[1].request.prompt == "just a prompt"
    assert [r.request is None for r in rows] == [False, False, True, True, True]
    assert rows[4].line == 5 and "not valid JSON" in rows[4].error
    csv_rows = parse_rows('prompt,steps,cfg_scale\n"kucing, lucu",4,\nanjing,5,3\n', name="r.csv", defaults={"cfg": 9})
    assert [(r.request.prompt, r.request.steps, r.request.cfg) for r in csv_rows] == [("kucing, lucu", 4, 9.0), ("anjing", 5, 3.0)]
    assert [r.line for r in csv_rows] == [2, 3]


@pytest.mark.parametrize(
    ("text", "name", "needle"),
    [
        ("", "p.txt", "is empty"),
        ("\n  \n", "p.txt", "is empty"),
        ('{"prompt": "a", "stpes": 3}\n', "r.jsonl", "line 1: unknown field 'stpes'"),
        ("--prompt a --tiling true\n", "p.txt", "line 1: unknown field 'tiling'"),
        ("prompt,colour\nx,y\n", "r.csv", "unknown field 'colour'"),
        ("steps\n3\n", "r.csv", "no 'prompt' column"),
    ],
)
def test_whole_input_errors_are_one_line(text: str, name: str, needle: str) -> None:
    with pytest.raises(BatchInputError) as info:
        parse_rows(text, name=name)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(BatchInputError, match="file not found"):
        read_rows(str(tmp_path / "nope.txt"))


def test_missing_wildcard_is_a_row_error_before_anything_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GAMBARKAN_WILDCARDS", str(tmp_path))
    (tmp_path / "warna.txt").write_text("merah\n")
    rows = parse_rows("kucing __warna__\nkucing __bentuk__\n", name="p.txt")
    assert rows[0].request is not None
    assert rows[1].request is None and "__bentuk__" in rows[1].error
