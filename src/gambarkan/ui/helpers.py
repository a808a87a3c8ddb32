"""The UI's plain parts (no Gradio): package choices, form -> request fields, status lines, history tiles.

Kept apart from the Blocks in ``app.py`` so each is tested directly, without a browser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gambarkan.errors import GambarkanError, InvalidRequestError
from gambarkan.ui.i18n import DEFAULT_LANG, STRINGS, decimal, explain_error, t

SHORTCUTS = {"sd": {"portrait": (512, 768), "square": (512, 512), "landscape": (768, 512)},
             "sdxl": {"portrait": (832, 1216), "square": (1024, 1024), "landscape": (1216, 832)}}

#: The translators in plain words (the codes are what ``--translator`` takes).
TRANSLATOR_KEYS = ("auto", "glossary", "marian", "nllb", "google")


@dataclass
class ServerDefault:
    """The model the server was started with (``serve --model DIR`` / ``--preset``): the UI's first choice."""

    name: str  # what the user reads: the folder name, or the package name
    fields: dict[str, Any] = field(default_factory=dict)  # request fields: {"model": DIR} or {"preset": NAME}


def _mb(value: float, lang: str = DEFAULT_LANG) -> str:
    return f"{decimal(value / 1024, lang)} GB" if value >= 1024 else f"{value:.0f} MB"


def translator_choices(lang: str = DEFAULT_LANG) -> list[tuple[str, str]]:
    """Dropdown choices ``(plain words, code)`` for the translator."""
    return [(t(f"translator_{key}", lang), key) for key in TRANSLATOR_KEYS]


def purpose(spec: Any, lang: str = DEFAULT_LANG) -> str:
    """A package's one-line purpose: the first sentence of its description."""
    text = spec.description(lang).strip()
    first = text.split(". ")[0].rstrip(".")
    return first


def speed_class(spec: Any, lang: str = DEFAULT_LANG) -> str:
    """``cepat`` / ``sedang`` / ``lambat``: few steps is fast, SDXL's big U-Net is slow."""
    if spec.steps and spec.steps <= 8:
        key = "speed_fast"
    elif spec.kind == "sdxl" or (spec.width or 0) >= 1024:
        key = "speed_slow"
    else:
        key = "speed_medium"
    return t(key, lang)


def _installed(spec: Any, settings: Any) -> bool:
    from gambarkan.models import store

    try:
        return spec.source_type != "hub" or store.is_installed(spec, settings)
    except Exception:  # noqa: BLE001 - one broken record must not hide the list
        return False


def package_label(spec: Any, settings: Any, lang: str = DEFAULT_LANG) -> str:
    """One line per package: title — purpose · size · downloaded or not · speed · licence."""
    installed = _installed(spec, settings)
    size = t("local_folder", lang) if spec.source_type != "hub" else _mb(spec.download_mb, lang)
    state = t("downloaded_short" if installed else "not_downloaded_short", lang)
    licence = t("license_unknown_short", lang) if spec.license.startswith("unknown") else spec.license
    return f"{spec.title(lang)} — {purpose(spec, lang)} · {size} · {state} · {speed_class(spec, lang)} · {licence}"


def package_choices(settings: Any, lang: str = DEFAULT_LANG, default: ServerDefault | None = None) -> list[tuple[str, str]]:
    """Choices ``(label, name)``; the server's own model (or a custom GAMBARKAN_MODEL) comes first as ``""``."""
    from gambarkan.config import DEFAULT_MODEL
    from gambarkan.models.catalog import load_catalog

    catalog = load_catalog(settings)
    choices = [(package_label(spec, settings, lang), name) for name, spec in catalog.items()]
    if default is not None and default.fields.get("preset"):
        return choices  # the server's default is a package: it is preselected among them
    if default is not None:
        choices.insert(0, (t("server_model", lang, model=default.name), ""))
    elif settings.default_model != DEFAULT_MODEL:
        choices.insert(0, (t("package_default", lang), ""))
    return choices


def default_package(settings: Any, default: ServerDefault | None = None) -> str:
    """The choice preselected: the server's model ("" ), its package, or the catalog's default package."""
    from gambarkan.config import DEFAULT_MODEL
    from gambarkan.models.catalog import DEFAULT_PRESET

    if default is not None:
        return str(default.fields.get("preset") or "").strip().lower()
    return DEFAULT_PRESET if settings.default_model == DEFAULT_MODEL else ""


def package_info(name: str, settings: Any, lang: str = DEFAULT_LANG, default: ServerDefault | None = None) -> str:
    """Markdown under the package picker: description, download size, downloaded or not, licence."""
    if not name:
        if default is not None:
            return t("server_model_info", lang, model=default.name)
        return t("default_model_info", lang, model=settings.default_model)
    from gambarkan.models import store
    from gambarkan.models.catalog import get_package

    try:
        spec = get_package(name, settings)
        local = spec.source_type != "hub"
        installed = local or store.is_installed(spec, settings)
    except GambarkanError as exc:
        return explain_error(exc, lang)
    license_name = t("license_unknown", lang) if spec.license.startswith("unknown") else spec.license
    if local:  # a user's own folder or file: nothing to download, so no download size
        return t("package_info_local", lang, description=spec.description(lang), source=Path(spec.source).name, license=license_name)
    state = t("downloaded" if installed else "not_downloaded", lang)
    return t("package_info", lang, description=spec.description(lang), size=_mb(spec.download_mb, lang), state=state, license=license_name)


def package_kind(name: str, settings: Any) -> str:
    if not name:
        return "sd"
    from gambarkan.models.catalog import get_package

    try:
        return "sdxl" if get_package(name, settings).kind == "sdxl" else "sd"
    except GambarkanError:
        return "sd"


def snap_size(value: Any) -> Any:
    """A typed width/height moved to the nearest multiple of 8 (0 = package default stays 0)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    if not math.isfinite(number) or number <= 0:
        return value
    return int(round(number / 8)) * 8 or 8


def preview_translation(text: str, enabled: bool, translator: str, settings: Any, lang: str = DEFAULT_LANG) -> tuple[str, str]:
    """(English the model will read, a one-line note) for the live preview under the prompt."""
    if not enabled:
        return text, t("preview_info_off", lang)
    if not text.strip():
        return "", ""
    from gambarkan.prompt.translate import translate_prompt

    try:
        result = translate_prompt(text, translator or "auto", settings, offline=settings.offline)
    except GambarkanError as exc:
        return text, explain_error(exc, lang)
    if not result.changed:
        return result.english, t("preview_info_same", lang)
    return result.english, t("preview_info_auto", lang, backend=result.backend)


def _number(value: Any, key: str, lang: str, kind: type = int) -> Any:
    """A form number, or None when empty; ``key`` is the field's label key, named in the error."""
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        label = t(key, lang).split(" (")[0].split(":")[0]  # "Langkah (0 = bawaan paket)" -> "Langkah"
        raise InvalidRequestError(t("error_bad_number", lang, field=label)) from None


def form_fields(form: dict[str, Any], lang: str = DEFAULT_LANG, settings: Any = None, default: ServerDefault | None = None) -> dict[str, Any]:
    """GenerationRequest fields from the form's values; 0 / -1 / "package default" mean unset.

    An edited translation preview is used as the prompt with translation switched off (the
    user already decided the English), so the model reads exactly what the preview showed.
    The "server's model" choice ("") sends the model the server was started with.
    """
    prompt = str(form.get("prompt") or "")
    if not prompt.strip():
        raise InvalidRequestError(t("error_empty_prompt", lang))
    fields: dict[str, Any] = {"prompt": prompt, "negative_prompt": str(form.get("negative") or "")}
    if form.get("package"):
        fields["preset"] = form["package"]
    elif default is not None:
        fields.update(default.fields)
    sampler = form.get("sampler")
    if sampler and sampler not in (t("from_package", "id"), t("from_package", "en")):
        fields["sampler"] = sampler
    for key, name, kind, unset in (("steps", "steps", int, 0), ("cfg", "cfg", float, -1), ("width", "width", int, 0),
                                   ("height", "height", int, 0), ("clip_skip", "clip_skip", int, 0)):
        value = _number(form.get(key), key, lang, kind)
        if value is not None and value != unset and not (unset == -1 and value < 0):
            fields[name] = value
    seed = _number(form.get("seed"), "seed", lang)
    fields["seed"] = -1 if seed is None or seed < 0 else seed
    fields["batch_size"] = _number(form.get("batch_size"), "batch_size", lang) or 1
    fields["count"] = _number(form.get("count"), "batch_count", lang) or 1
    if not form.get("translate", True):
        fields["translate"] = False
    elif form.get("edited") and str(form.get("preview") or "").strip():
        fields["prompt"] = str(form["preview"])
        fields["translate"] = False
        if fields["negative_prompt"].strip():
            from gambarkan.prompt.translate import translate_prompt

            fields["negative_prompt"] = translate_prompt(fields["negative_prompt"], form.get("translator") or "auto", settings).english
    elif form.get("translator"):
        fields["translator"] = form["translator"]
    return fields


def image_caption(image: Any, lang: str) -> str:
    return t("caption", lang, seed=image.seed)


def eta_seconds(started: tuple[float, float] | None, now: float, progress: float) -> float | None:
    """Seconds left, from the (time, progress) first seen while sampling and the progress now."""
    if started is None or progress <= started[1] or progress >= 1:
        return None
    rate = (progress - started[1]) / max(now - started[0], 1e-6)
    return (1 - progress) / rate


def status_markdown(job: Any, position: int | None, lang: str, eta: float | None = None) -> str:
    """The status line while a job waits or runs: queue position, or a progress bar with steps and ETA."""
    if position is not None and position > 0:
        return t("status_queued", lang, position=position)
    if not job.steps:
        return t("status_loading", lang)
    total = max(job.images_total, 1)
    image = min(job.images_done + 1, total)
    bar = f'<progress value="{job.progress:.3f}" max="1"></progress>'
    line = t("status_step", lang, step=job.step, steps=job.steps, image=image, images=total)
    if eta is not None:
        line += " · " + t("status_eta", lang, seconds=max(1, round(eta)))
    return f"{line}\n\n{bar}"


MODEL_COLUMNS = ("col_name", "col_title", "col_purpose", "col_family", "col_size", "col_installed", "col_speed", "col_license")
FAMILIES = {"sd15": "Stable Diffusion 1.5", "sd2": "Stable Diffusion 2", "sdxl": "Stable Diffusion XL", "flux": "FLUX"}


def table(rows: list[list[Any]], columns: tuple[str, ...], lang: str) -> dict[str, Any]:
    """A Dataframe value whose column headers are in ``lang`` (a plain list would keep the old ones)."""
    return {"headers": [t(key, lang) for key in columns], "data": rows}


def run_status(status: str | None, lang: str) -> str:
    """A history row's status (done, cancelled, failed, running, interrupted) in ``lang``."""
    key = f"run_{status}"
    return t(key, lang) if key in STRINGS else str(status or "")


def model_rows(settings: Any, lang: str = DEFAULT_LANG) -> tuple[list[list[Any]], int]:
    """Table rows for the Models tab (with what each is good for) and the bytes used by downloaded packages."""
    from gambarkan.models import store
    from gambarkan.models.catalog import load_catalog

    rows, used = [], 0
    for name, spec in load_catalog(settings).items():
        installed = _installed(spec, settings)
        try:
            size = store.disk_usage_bytes(spec, settings) if installed and spec.source_type == "hub" else 0
        except Exception:  # noqa: BLE001 - one broken record must not hide the table
            size = 0
        used += size
        shown = _mb(size / 2**20, lang) if size else (t("local_folder", lang) if spec.source_type != "hub" else _mb(spec.download_mb, lang))
        licence = t("license_unknown_short", lang) if spec.license.startswith("unknown") else spec.license
        rows.append([name, spec.title(lang), purpose(spec, lang), FAMILIES.get(spec.kind, spec.kind), shown,
                     t("yes" if installed else "no", lang), speed_class(spec, lang), licence])
    return rows, used


# --- history as a gallery ----------------------------------------------------------------------


def history_records(settings: Any, text: str = "", limit: int = 60) -> list[dict[str, Any]]:
    """History rows newest first (every word of ``text`` in the prompt)."""
    from gambarkan.outputs.history import History

    with History.open(settings) as history:
        return history.search(text or None, limit=limit)


def _placeholder(status: str | None) -> Any:
    """A grey tile for a run that left no image (cancelled, failed)."""
    from PIL import Image

    shade = {"cancelled": (200, 200, 200), "failed": (230, 190, 190)}.get(status or "", (215, 215, 215))
    return Image.new("RGB", (96, 96), shade)


def history_tiles(records: list[dict[str, Any]], lang: str) -> list[tuple[Any, str]]:
    """Gallery items ``(image path or grey tile, caption)`` for history ``records``."""
    tiles = []
    for record in records:
        paths = [p for p in record.get("paths") or [] if p and Path(p).is_file()]
        prompt = (record.get("original_prompt") or record.get("prompt") or "")[:60]
        caption = f"#{record['id']} · {run_status(record.get('status'), lang)} · {prompt}"
        tiles.append((paths[0] if paths else _placeholder(record.get("status")), caption))
    return tiles


def history_details(record: dict[str, Any], lang: str) -> str:
    """The parameters of one history entry as text a person reads (what the A1111 box would show)."""
    lines = [record.get("original_prompt") or record.get("prompt") or ""]
    if record.get("prompt") and record.get("prompt") != record.get("original_prompt"):
        lines.append(t("status_translated", lang, prompt=record["prompt"]))
    if record.get("negative_prompt"):
        lines.append(f"{t('negative', lang).split(' (')[0]}: {record['negative_prompt']}")
    parts = [f"{t('col_id', lang)} {record['id']}", run_status(record.get("status"), lang), (record.get("created_at") or "")[:19].replace("T", " ")]
    for label, key in (("Seed", "seed"), ("Steps", "steps"), ("CFG", "cfg"), ("Sampler", "sampler"), ("Size", None),
                       (t("col_package", lang), "preset"), ("Model", "model")):
        value = f"{record.get('width')}x{record.get('height')}" if key is None and record.get("width") else record.get(key) if key else None
        if value not in (None, ""):
            parts.append(f"{label}: {value}")
    lines.append(", ".join(str(p) for p in parts if p))
    return "\n".join(lines)


HISTORY_COLUMNS = ("col_id", "col_when", "col_status", "col_prompt", "col_package", "col_seed")


def history_rows(settings: Any, text: str = "", lang: str = DEFAULT_LANG) -> list[list[Any]]:
    """History as table rows (id, when, status, prompt, package, seed): the gallery's captions in columns."""
    return [[r["id"], (r.get("created_at") or "")[:19].replace("T", " "), run_status(r.get("status"), lang),
             r.get("original_prompt") or r.get("prompt"), r.get("preset") or r.get("model") or "", r.get("seed")]
            for r in history_records(settings, text, limit=50)]


def plain_error(error: BaseException, lang: str) -> str:
    """An error as one plain line for a toast: its own text in ``lang``, or its kind's sentence and the detail."""
    from gambarkan.i18n import has_text, kind_sentence, render

    if isinstance(error, GambarkanError):
        if error.code != error.kind and has_text(error, lang):
            return render(error, lang)
        return f"{kind_sentence(error, lang)} {error}"
    return t("error_unexpected", lang, kind=type(error).__name__).replace("`", "")
