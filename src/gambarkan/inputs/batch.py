"""Batch rows -> requests: plain prompt lines, A1111 "prompts from file" lines, JSONL and CSV.

Every row is checked here, before any model is loaded. A row that cannot become a request
(bad JSON, bad quoting, a value out of range) keeps its line number and its one-line error,
and the other rows still run. A file that cannot be read at all (missing, empty, a field no
request has) is one :class:`BatchInputError` for the whole input.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gambarkan.errors import GambarkanError, InvalidRequestError

Format = Literal["auto", "text", "jsonl", "csv"]
FORMATS: tuple[str, ...] = ("auto", "text", "jsonl", "csv")

# A1111's scripts/prompts_from_file.py tags (and common spellings) -> GenerationRequest fields.
ALIASES: dict[str, str] = {
    "sampler_name": "sampler",
    "cfg_scale": "cfg",
    "n_iter": "count",
    "sd_model": "model",
    "negative": "negative_prompt",
    "out": "out_dir",
}
# A1111 tags that change nothing here: dropped without a word.
IGNORED: frozenset[str] = frozenset({"do_not_save_grid", "prompt_for_display", "outpath_grids"})
# Multi-word values: A1111 joins the words after --prompt / --negative_prompt up to the next option.
_JOINED = ("prompt", "negative_prompt")


class BatchInputError(GambarkanError):
    """The batch input as a whole cannot be used: missing, empty, unreadable, or an unknown field."""

    code = "invalid_batch_input"


@dataclass
class Row:
    """One input row: its line number, the fields it gave, and its request or why it has none."""

    line: int
    fields: dict[str, Any]
    request: Any = None  # GenerationRequest when the row is valid
    error: str | None = None


def request_fields() -> list[str]:
    """The names a row may use (GenerationRequest fields)."""
    from gambarkan.request import GenerationRequest

    return list(GenerationRequest.model_fields)


def _unknown(name: str, where: str) -> BatchInputError:
    from gambarkan.errors import close_names

    close = close_names(name, [*request_fields(), *ALIASES])
    return BatchInputError(code="batch_unknown_field", params={"where": where, "name": name, "close": close, "fields": ", ".join(request_fields()[:12])})


def _normalise(fields: dict[str, Any], where: str) -> dict[str, Any]:
    """Aliases to request field names; an unknown field fails the whole input (it is a file for another tool)."""
    known = set(request_fields())
    out: dict[str, Any] = {}
    for raw_name, value in fields.items():
        name = str(raw_name).strip().replace("-", "_")
        name = ALIASES.get(name, name)
        if name in IGNORED:
            continue
        if name == "do_not_save_samples":
            name, value = "save", str(value).lower() not in ("true", "1", "yes")
        if name not in known:
            raise _unknown(str(raw_name), where)
        out[name] = value
    return out


def parse_a1111_line(line: str) -> dict[str, Any]:
    """``--prompt "a cat" --steps 20 ...`` -> raw field dict (A1111's ``cmdargs``); ValueError when malformed."""
    args = shlex.split(line)
    fields: dict[str, Any] = {}
    pos = 0
    while pos < len(args):
        arg = args[pos]
        if not arg.startswith("--"):
            raise ValueError(f"expected an option starting with '--', got {arg!r}")
        if pos + 1 >= len(args):
            raise ValueError(f"option {arg} has no value")
        tag = arg[2:]
        pos += 1
        if tag.replace("-", "_") in _JOINED:
            words = [args[pos]]
            pos += 1
            while pos < len(args) and not args[pos].startswith("--"):
                words.append(args[pos])
                pos += 1
            fields[tag] = " ".join(words)
            continue
        fields[tag] = args[pos]
        pos += 1
    return fields


def _text_rows(text: str, where: str) -> list[tuple[int, dict[str, Any] | None, str | None]]:
    rows: list[tuple[int, dict[str, Any] | None, str | None]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("--"):
            rows.append((number, {"prompt": line}, None))
            continue
        try:
            fields = parse_a1111_line(line)
        except ValueError as exc:
            rows.append((number, None, f"cannot read the options: {exc}"))
            continue
        rows.append((number, _normalise(fields, f"{where} line {number}"), None))
    return rows


def _jsonl_rows(text: str, where: str) -> list[tuple[int, dict[str, Any] | None, str | None]]:
    rows: list[tuple[int, dict[str, Any] | None, str | None]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append((number, None, f"not valid JSON: {exc.msg} at column {exc.colno}"))
            continue
        if isinstance(value, str):
            value = {"prompt": value}
        if not isinstance(value, dict):
            rows.append((number, None, "a JSON line must be an object like {\"prompt\": \"...\"}"))
            continue
        rows.append((number, _normalise(value, f"{where} line {number}"), None))
    return rows


def _csv_rows(text: str, where: str) -> list[tuple[int, dict[str, Any] | None, str | None]]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise BatchInputError(f"{where}: the CSV has no header row", "the first row names the columns, e.g. prompt,steps,seed")
    names = list(_normalise({h: None for h in header}, f"{where} header"))
    if "prompt" not in names:
        raise BatchInputError(f"{where}: the CSV has no 'prompt' column", "add a prompt column to the header row")
    rows: list[tuple[int, dict[str, Any] | None, str | None]] = []
    for cells in reader:
        number = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(names):
            rows.append((number, None, f"has {len(cells)} cells, the header has {len(names)}"))
            continue
        rows.append((number, {n: c for n, c in zip(names, cells) if c.strip() != ""}, None))  # empty cell: the default
    return rows


def detect_format(name: str, text: str) -> str:
    """The format of an input by its extension, else by its first line ({...} is JSONL)."""
    suffix = Path(name).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return "jsonl" if first.startswith("{") else "text"


def read_text(source: str) -> tuple[str, str]:
    """(name, text) of ``source``: a file path, or ``-`` for stdin."""
    if source == "-":
        return "stdin", sys.stdin.read()
    path = Path(source).expanduser()
    if not path.exists():
        raise BatchInputError(code="batch_file_not_found", params={"path": source})
    if path.is_dir():
        raise BatchInputError(f"{source} is a folder, not a prompt file", "give a .txt, .jsonl or .csv file")
    try:
        return str(path), path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise BatchInputError(f"{source} is not UTF-8 text", "save the prompt file as UTF-8") from None
    except OSError as exc:
        raise BatchInputError(f"cannot read {source}: {exc.strerror or exc}", "check the path and its permissions") from None


def parse_rows(text: str, *, name: str = "input", fmt: str = "auto", defaults: dict[str, Any] | None = None) -> list[Row]:
    """Rows of ``text``; each valid row's request is ``defaults`` overridden by what the row says."""
    from gambarkan.request import GenerationRequest

    if fmt not in FORMATS:
        raise BatchInputError(f"unknown batch format '{fmt}'", "use one of: " + ", ".join(FORMATS))
    if not text.strip():
        raise BatchInputError(code="batch_input_empty", params={"name": name})
    kind = detect_format(name, text) if fmt == "auto" else fmt
    reader = {"text": _text_rows, "jsonl": _jsonl_rows, "csv": _csv_rows}[kind]
    rows: list[Row] = []
    for number, fields, error in reader(text, name):
        row = Row(number, fields or {}, error=error)
        if error is None:
            merged = {**(defaults or {}), **row.fields}
            if not str(merged.get("prompt", "")).strip():
                row.error = "has no prompt"
            else:
                try:
                    request = GenerationRequest(**merged)
                    check_variations(request)
                    row.request = request
                except InvalidRequestError as exc:
                    row.error = str(exc)
        rows.append(row)
    if not rows:
        raise BatchInputError(f"{name} has no rows", "write one prompt per line, or JSONL/CSV rows with a prompt field")
    return rows


def check_variations(request: Any) -> None:
    """Fail now (not after the model loaded) when a wildcard file of the prompt is missing."""
    from gambarkan.prompt.variations import check

    check(request.prompt)
    check(request.negative_prompt)


def read_rows(source: str, *, fmt: str = "auto", defaults: dict[str, Any] | None = None) -> list[Row]:
    """Read and check every row of ``source`` (a path or ``-``)."""
    name, text = read_text(source)
    return parse_rows(text, name=name, fmt=fmt, defaults=defaults)


def request_hash(request: Any) -> str:
    """A short stable hash of everything a request asks for (the manifest's identity of a row).

    Fields left at their defaults are not part of it, so a gambarkan that gains a new request
    field still recognises the rows an older one finished.
    """
    data = json.dumps(request.model_dump(mode="json", exclude_defaults=True), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]
