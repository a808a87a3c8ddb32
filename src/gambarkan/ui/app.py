"""The web UI: a Gradio Blocks app over the same job queue and engine as every other surface.

``build_ui`` makes the Blocks; ``launch`` serves it alone (``gambarkan ui``); ``mount`` puts it
at ``/`` of the HTTP server (``create_app(..., mount_ui=mount)``), sharing the server's queue,
so the UI shows its place among API jobs. The form only collects values: requests are built
and validated by ``GenerationRequest``, translation previews come from ``prompt.translate``.
"""

# No ``from __future__ import annotations``: Gradio reads handler annotations (gr.Request,
# gr.SelectData, gr.Progress) as real objects to decide what to inject.
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gambarkan.errors import GambarkanError, InvalidRequestError
from gambarkan.ui.i18n import DEFAULT_LANG, LANGUAGES, STRINGS, decimal, explain_error, t

POLL_SECONDS = 0.2
PREVIEW_EVERY = 2  # a latent preview every 2 denoising steps
SHORTCUTS = {"sd": {"portrait": (512, 768), "square": (512, 512), "landscape": (768, 512)},
             "sdxl": {"portrait": (832, 1216), "square": (1024, 1024), "landscape": (1216, 832)}}
CSS = ".gk-status {min-height: 2.5em} .gk-status progress {width: 100%; height: 0.6em}"


@dataclass
class UIContext:
    """What the UI's handlers share: settings, the job queue, and each browser session's job."""

    settings: Any
    queue: Any
    jobs: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


# --- plain helpers (no Gradio), tested directly ------------------------------------------------


def _mb(value: float, lang: str = DEFAULT_LANG) -> str:
    return f"{decimal(value / 1024, lang)} GB" if value >= 1024 else f"{value:.0f} MB"


def package_choices(settings: Any, lang: str = DEFAULT_LANG) -> list[tuple[str, str]]:
    """Dropdown choices ``(label, name)``; a custom GAMBARKAN_MODEL comes first as ``""``."""
    from gambarkan.config import DEFAULT_MODEL
    from gambarkan.models.catalog import load_catalog

    choices = [(f"{spec.title(lang)} ({name})", name) for name, spec in load_catalog(settings).items()]
    if settings.default_model != DEFAULT_MODEL:
        choices.insert(0, (t("package_default", lang), ""))
    return choices


def default_package(settings: Any) -> str:
    from gambarkan.config import DEFAULT_MODEL
    from gambarkan.models.catalog import DEFAULT_PRESET

    return DEFAULT_PRESET if settings.default_model == DEFAULT_MODEL else ""


def package_info(name: str, settings: Any, lang: str = DEFAULT_LANG) -> str:
    """Markdown under the package picker: description, download size, downloaded or not, licence."""
    if not name:
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


def form_fields(form: dict[str, Any], lang: str = DEFAULT_LANG, settings: Any = None) -> dict[str, Any]:
    """GenerationRequest fields from the form's values; 0 / -1 / "package default" mean unset.

    An edited translation preview is used as the prompt with translation switched off (the
    user already decided the English), so the model reads exactly what the preview showed.
    """
    prompt = str(form.get("prompt") or "")
    if not prompt.strip():
        raise InvalidRequestError(t("error_empty_prompt", lang))
    fields: dict[str, Any] = {"prompt": prompt, "negative_prompt": str(form.get("negative") or "")}
    if form.get("package"):
        fields["preset"] = form["package"]
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


def status_markdown(job: Any, position: int | None, lang: str) -> str:
    """The status line while a job waits or runs: queue position, or a progress bar with step counts."""
    if position is not None and position > 0:
        return t("status_queued", lang, position=position)
    if not job.steps:
        return t("status_loading", lang)
    total = max(job.images_total, 1)
    image = min(job.images_done + 1, total)
    bar = f'<progress value="{job.progress:.3f}" max="1"></progress>'
    return f"{t('status_step', lang, step=job.step, steps=job.steps, image=image, images=total)}\n\n{bar}"


HISTORY_COLUMNS = ("col_id", "col_when", "col_status", "col_prompt", "col_package", "col_seed")
MODEL_COLUMNS = ("col_name", "col_title", "col_kind", "col_size", "col_installed", "col_license")


def table(rows: list[list[Any]], columns: tuple[str, ...], lang: str) -> dict[str, Any]:
    """A Dataframe value whose column headers are in ``lang`` (a plain list would keep the old ones)."""
    return {"headers": [t(key, lang) for key in columns], "data": rows}


def run_status(status: str | None, lang: str) -> str:
    """A history row's status (done, cancelled, failed, running, interrupted) in ``lang``."""
    key = f"run_{status}"
    return t(key, lang) if key in STRINGS else str(status or "")


def history_rows(settings: Any, text: str = "", lang: str = DEFAULT_LANG) -> list[list[Any]]:
    from gambarkan.outputs.history import History

    with History.open(settings) as history:
        records = history.search(text or None, limit=50)
    return [[r["id"], (r.get("created_at") or "")[:19].replace("T", " "), run_status(r.get("status"), lang),
             r.get("original_prompt") or r.get("prompt"), r.get("preset") or r.get("model") or "", r.get("seed")] for r in records]


def model_rows(settings: Any, lang: str = DEFAULT_LANG) -> tuple[list[list[Any]], int]:
    """Table rows for the Models tab and the bytes used by downloaded packages."""
    from gambarkan.models import store
    from gambarkan.models.catalog import load_catalog

    rows, used = [], 0
    for name, spec in load_catalog(settings).items():
        try:
            installed = spec.source_type != "hub" or store.is_installed(spec, settings)
            size = store.disk_usage_bytes(spec, settings) if installed and spec.source_type == "hub" else 0
        except Exception:  # noqa: BLE001 - one broken record must not hide the table
            installed, size = False, 0
        used += size
        rows.append([name, spec.title(lang), spec.kind, _mb(size / 2**20, lang) if size else _mb(spec.download_mb, lang),
                     t("yes" if installed else "no", lang), spec.license])
    return rows, used


# --- the Blocks -----------------------------------------------------------------------------------


def _import_gradio() -> Any:
    try:
        import gradio as gr
    except ImportError:
        from gambarkan.errors import DependencyMissingError

        raise DependencyMissingError("the web UI needs gradio", "pip install 'gambarkan[ui]'") from None
    return gr


def _session(request: Any) -> str:
    return getattr(request, "session_hash", None) or "default"


def build_ui(settings: Any = None, queue: Any = None, engine: Any = None, lang: str = DEFAULT_LANG) -> Any:
    """The Gradio Blocks of the UI. Without ``queue`` it makes (and starts) one over ``engine``."""
    gr = _import_gradio()
    from gambarkan.config import Settings
    from gambarkan.prompt.translate import TRANSLATORS
    from gambarkan.sampler_names import MENU_NAMES

    settings = settings or Settings.from_env()
    if queue is None:
        from gambarkan.engine.generate import Engine
        from gambarkan.server.jobs import JobQueue

        queue = JobQueue([engine or Engine(settings, surface="ui")])
        queue.start()
    ctx = UIContext(settings, queue)
    lang = lang if lang in LANGUAGES else DEFAULT_LANG
    labels: list[tuple[Any, dict[str, str]]] = []  # (component, {attribute: string key}) relabelled on a language switch

    def L(component: Any, **keys: str) -> Any:
        labels.append((component, keys))
        return component

    sampler_choices = [t("from_package", lang)] + list(MENU_NAMES)
    with gr.Blocks(title="gambarkan", analytics_enabled=False) as demo:
        lang_state = gr.State(lang)
        results_state = gr.State([])  # [{"path": str, "seed": int, "parameters": str}]
        selected_state = gr.State(-1)
        last_seed = gr.State(-1)
        edited_state = gr.State(False)
        with gr.Row():
            with gr.Column(scale=4):
                L(gr.Markdown(t("title", lang) + "\n\n" + t("tagline", lang), elem_id="gk-header"), value="_header")
            language = L(gr.Radio([(v, k) for k, v in LANGUAGES.items()], value=lang, label=t("language", lang), elem_id="gk-language", scale=1), label="language")
        with gr.Tabs():
            with L(gr.Tab(t("tab_create", lang), id="create"), label="tab_create"):  # noqa: SIM117 - layout reads as nesting
                with gr.Row():
                    with gr.Column(scale=5):
                        prompt = L(gr.Textbox(label=t("prompt", lang), placeholder=t("prompt_placeholder", lang), lines=3, elem_id="gk-prompt"), label="prompt", placeholder="prompt_placeholder")
                        negative = L(gr.Textbox(label=t("negative", lang), placeholder=t("negative_placeholder", lang), lines=2, elem_id="gk-negative"), label="negative", placeholder="negative_placeholder")
                        with gr.Row():
                            translate_on = L(gr.Checkbox(value=True, label=t("translate_on", lang), elem_id="gk-translate"), label="translate_on")
                            translator = L(gr.Dropdown(list(TRANSLATORS[:-1]), value=settings.translator if settings.translator in TRANSLATORS[:-1] else "auto", label=t("translator", lang), elem_id="gk-translator"), label="translator")
                        preview = L(gr.Textbox(label=t("preview", lang), lines=2, interactive=True, elem_id="gk-preview"), label="preview")
                        preview_note = gr.Markdown("", elem_id="gk-preview-note")
                        package = L(gr.Dropdown(package_choices(settings, lang), value=default_package(settings), label=t("package", lang), elem_id="gk-package"), label="package")
                        package_md = gr.Markdown(package_info(default_package(settings), settings, lang), elem_id="gk-package-info")
                        with L(gr.Accordion(t("advanced", lang), open=False, elem_id="gk-advanced"), label="advanced"):
                            sampler = L(gr.Dropdown(sampler_choices, value=sampler_choices[0], label=t("sampler", lang)), label="sampler")
                            with gr.Row():
                                steps = L(gr.Number(0, label=t("steps", lang), precision=0, minimum=0, maximum=150, elem_id="gk-steps"), label="steps")
                                cfg = L(gr.Number(-1, label=t("cfg", lang), minimum=-1, maximum=30, step=0.5, elem_id="gk-cfg"), label="cfg")
                                clip_skip = L(gr.Number(0, label=t("clip_skip", lang), precision=0, minimum=0, maximum=12), label="clip_skip")
                            with gr.Row():
                                width = L(gr.Number(0, label=t("width", lang), precision=0, minimum=0, maximum=2048, step=8, elem_id="gk-width"), label="width")
                                height = L(gr.Number(0, label=t("height", lang), precision=0, minimum=0, maximum=2048, step=8, elem_id="gk-height"), label="height")
                            with gr.Row():
                                portrait = L(gr.Button(t("portrait", lang), size="sm"), value="portrait")
                                square = L(gr.Button(t("square", lang), size="sm"), value="square")
                                landscape = L(gr.Button(t("landscape", lang), size="sm"), value="landscape")
                            with gr.Row():
                                seed = L(gr.Number(-1, label=t("seed", lang), precision=0, minimum=-1, elem_id="gk-seed"), label="seed")
                                seed_random = L(gr.Button(t("seed_random", lang), size="sm"), value="seed_random")
                                seed_reuse = L(gr.Button(t("seed_reuse", lang), size="sm"), value="seed_reuse")
                            with gr.Row():
                                batch_size = L(gr.Slider(1, 8, value=1, step=1, label=t("batch_size", lang)), label="batch_size")
                                count = L(gr.Slider(1, 10, value=1, step=1, label=t("batch_count", lang)), label="batch_count")
                        with gr.Row():
                            generate_btn = L(gr.Button(t("generate", lang), variant="primary", elem_id="gk-generate"), value="generate")
                            cancel_btn = L(gr.Button(t("cancel", lang), variant="stop", elem_id="gk-cancel"), value="cancel")
                    with gr.Column(scale=6):
                        status = gr.Markdown(t("status_ready", lang), elem_id="gk-status", elem_classes="gk-status")
                        live = L(gr.Image(label=t("live_preview", lang), type="pil", interactive=False, height=256, elem_id="gk-live"), label="live_preview")
                        gallery = L(gr.Gallery(label=t("gallery", lang), columns=2, height="auto", buttons=["download", "fullscreen"], elem_id="gk-gallery"), label="gallery")
                        parameters = L(gr.Textbox(label=t("parameters", lang), lines=4, interactive=False, elem_id="gk-parameters"), label="parameters")
                        send_btn = L(gr.Button(t("send_to_prompt", lang), elem_id="gk-send"), value="send_to_prompt")
            with L(gr.Tab(t("tab_history", lang), id="history"), label="tab_history"):
                with gr.Row():
                    history_query = L(gr.Textbox(label=t("history_search", lang), scale=4, elem_id="gk-history-search"), label="history_search")
                    history_btn = L(gr.Button(t("history_refresh", lang), scale=1, elem_id="gk-history-refresh"), value="history_refresh")
                history_table = L(gr.Dataframe(headers=[t(k, lang) for k in HISTORY_COLUMNS],
                                               interactive=False, label=t("history_table", lang), elem_id="gk-history"), label="history_table")
                with gr.Row():
                    history_id = L(gr.Number(None, label=t("history_id", lang), precision=0, elem_id="gk-history-id"), label="history_id")
                    history_reuse = L(gr.Button(t("history_reuse", lang), elem_id="gk-history-reuse"), value="history_reuse")
                    history_delete = L(gr.Button(t("history_delete", lang), variant="stop", elem_id="gk-history-delete"), value="history_delete")
                history_status = gr.Markdown("", elem_id="gk-history-status")
            with L(gr.Tab(t("tab_models", lang), id="models"), label="tab_models"):
                models_table = L(gr.Dataframe(headers=[t(k, lang) for k in MODEL_COLUMNS],
                                              interactive=False, label=t("models_table", lang), elem_id="gk-models"), label="models_table")
                models_disk = gr.Markdown("", elem_id="gk-models-disk")
                with gr.Row():
                    models_pick = L(gr.Dropdown([name for _, name in package_choices(settings) if name], label=t("models_pick", lang)), label="models_pick")
                    models_download = L(gr.Button(t("models_download", lang)), value="models_download")
                    models_refresh = L(gr.Button(t("models_refresh", lang), elem_id="gk-models-refresh"), value="models_refresh")
                models_status = gr.Markdown("")

        form_inputs = [prompt, negative, translate_on, translator, preview, edited_state, package, sampler, steps, cfg, width, height,
                       seed, batch_size, count, clip_skip]
        form_keys = ["prompt", "negative", "translate", "translator", "preview", "edited", "package", "sampler", "steps", "cfg",
                     "width", "height", "seed", "batch_size", "count", "clip_skip"]

        # -- translation preview ---------------------------------------------------------------
        def on_prompt(text: str, enabled: bool, backend: str, lang: str) -> tuple[Any, Any, bool]:
            english, note = preview_translation(text, enabled, backend, ctx.settings, lang)
            return gr.update(value=english, interactive=enabled), note, False

        for trigger in (prompt.change, translate_on.change, translator.change):
            trigger(on_prompt, [prompt, translate_on, translator, lang_state], [preview, preview_note, edited_state], trigger_mode="always_last", show_progress="hidden")
        preview.input(lambda lang: (True, t("preview_info_edited", lang)), [lang_state], [edited_state, preview_note], show_progress="hidden")

        # -- package and shortcuts -----------------------------------------------------------------
        package.change(lambda name, lang: package_info(name, ctx.settings, lang), [package, lang_state], [package_md], show_progress="hidden")
        for button, shape in ((portrait, "portrait"), (square, "square"), (landscape, "landscape")):
            button.click(lambda name, _s=shape: SHORTCUTS[package_kind(name, ctx.settings)][_s], [package], [width, height], show_progress="hidden")
        seed_random.click(lambda: -1, None, [seed], show_progress="hidden")
        seed_reuse.click(lambda last: last, [last_seed], [seed], show_progress="hidden")

        # -- generate / cancel -----------------------------------------------------------------------
        def on_generate(prompt_v: str, negative_v: str, translate_v: bool, translator_v: str, preview_v: str, edited_v: bool,
                        package_v: str, sampler_v: str, steps_v: Any, cfg_v: Any, width_v: Any, height_v: Any, seed_v: Any,
                        batch_size_v: Any, count_v: Any, clip_skip_v: Any, lang: str, request: gr.Request):
            form = dict(zip(form_keys, (prompt_v, negative_v, translate_v, translator_v, preview_v, edited_v, package_v, sampler_v,
                                        steps_v, cfg_v, width_v, height_v, seed_v, batch_size_v, count_v, clip_skip_v)))
            from gambarkan.request import GenerationRequest
            from gambarkan.server.jobs import DONE, Job

            try:
                job = Job(GenerationRequest(**form_fields(form, lang, ctx.settings)), source="ui", preview_every=PREVIEW_EVERY)
                ctx.queue.submit(job)
            except GambarkanError as exc:
                yield explain_error(exc, lang), None, gr.update(), gr.update(), gr.update()
                return
            session = _session(request)
            with ctx.lock:
                ctx.jobs[session] = job
            started = time.perf_counter()
            try:
                shown_preview = None
                while not job.future.done():
                    update_preview = job.preview if job.preview is not shown_preview else gr.update()
                    shown_preview = job.preview
                    yield status_markdown(job, ctx.queue.position(job), lang), update_preview, gr.update(), gr.update(), gr.update()
                    time.sleep(POLL_SECONDS)
            finally:
                with ctx.lock:
                    if ctx.jobs.get(session) is job:
                        del ctx.jobs[session]
            if job.status != DONE or job.result is None:
                yield explain_error(job.error or GambarkanError("failed"), lang), None, gr.update(), gr.update(), gr.update()
                return
            result = job.result
            if hasattr(job, "release"):
                job.release()  # the queue keeps finished jobs; they should not keep our pixels
            items = [(str(img.path) if img.path else img.image, image_caption(img, lang)) for img in result.images]
            results = [{"path": str(img.path) if img.path else None, "seed": img.seed, "parameters": img.parameters} for img in result.images]
            lines = [t("status_done", lang, count=len(result.images), seconds=decimal(time.perf_counter() - started, lang), seed=result.seed)]
            if result.prompt != result.original_prompt:
                lines.append(t("status_translated", lang, prompt=result.prompt))
            yield "\n\n".join(lines), None, items, results, result.seed

        generate_btn.click(on_generate, form_inputs + [lang_state], [status, live, gallery, results_state, last_seed], concurrency_limit=None, show_progress="hidden")

        def on_cancel(lang: str, request: gr.Request) -> str:
            with ctx.lock:
                job = ctx.jobs.get(_session(request))
            if job is None:
                return t("status_nothing", lang)
            try:
                ctx.queue.cancel(job.id)
            except GambarkanError:
                pass  # it finished meanwhile
            return t("status_cancelling", lang)

        cancel_btn.click(on_cancel, [lang_state], [status], concurrency_limit=None, show_progress="hidden")

        # -- gallery: selection, send to prompt ------------------------------------------------------
        def on_select(results: list[dict[str, Any]], evt: gr.SelectData) -> tuple[str, int]:
            index = int(evt.index) if evt.index is not None else -1
            if 0 <= index < len(results):
                return results[index]["parameters"], index
            return "", -1

        gallery.select(on_select, [results_state], [parameters, selected_state], show_progress="hidden")

        reuse_outputs = [prompt, negative, package, sampler, steps, cfg, width, height, seed, clip_skip, translate_on]

        def fields_to_form(fields: dict[str, Any], lang: str) -> list[Any]:
            return [fields.get("prompt", gr.update()), fields.get("negative_prompt", ""), fields.get("preset") or gr.update(),
                    fields.get("sampler") or t("from_package", lang), fields.get("steps") or 0, -1 if fields.get("cfg") is None else fields["cfg"],
                    fields.get("width") or 0, fields.get("height") or 0, fields.get("seed", -1), fields.get("clip_skip") or 0,
                    fields.get("translate", True)]

        def on_send(results: list[dict[str, Any]], index: int, lang: str) -> list[Any]:
            if not 0 <= index < len(results):
                if len(results) == 1:
                    index = 0
                else:
                    return [gr.update()] * len(reuse_outputs) + [t("select_first", lang)]
            from gambarkan.outputs.png import parse_parameters
            from gambarkan.outputs.reuse import fields_from_parameters

            fields = fields_from_parameters(parse_parameters(results[index]["parameters"]))
            return fields_to_form(fields, lang) + [t("sent", lang, seed=results[index]["seed"])]

        send_btn.click(on_send, [results_state, selected_state, lang_state], reuse_outputs + [status], show_progress="hidden")

        # -- history tab ---------------------------------------------------------------------------------
        def on_history(text: str, lang: str) -> tuple[Any, str]:
            try:
                rows = history_rows(ctx.settings, text, lang)
            except GambarkanError as exc:
                return gr.update(), explain_error(exc, lang)
            return table(rows, HISTORY_COLUMNS, lang), "" if rows else t("history_empty", lang)

        history_btn.click(on_history, [history_query, lang_state], [history_table, history_status])
        history_query.submit(on_history, [history_query, lang_state], [history_table, history_status])

        def on_history_reuse(row_id: Any, lang: str) -> list[Any]:
            from gambarkan.outputs.history import History, rerun_fields

            try:
                with History.open(ctx.settings) as history:
                    fields = rerun_fields(history.get(int(row_id)))
            except (GambarkanError, TypeError, ValueError) as exc:
                err = exc if isinstance(exc, GambarkanError) else InvalidRequestError(t("error_bad_number", lang, field=t("history_id", lang)))
                return [gr.update()] * len(reuse_outputs) + [explain_error(err, lang)]
            return fields_to_form(fields, lang) + [t("history_loaded", lang, id=int(row_id))]

        history_reuse.click(on_history_reuse, [history_id, lang_state], reuse_outputs + [history_status])

        def on_history_delete(row_id: Any, text: str, lang: str) -> tuple[Any, str]:
            from gambarkan.outputs.history import History

            try:
                with History.open(ctx.settings) as history:
                    removed = history.delete([int(row_id)], files=True)
            except (GambarkanError, TypeError, ValueError) as exc:
                err = exc if isinstance(exc, GambarkanError) else InvalidRequestError(t("error_bad_number", lang, field=t("history_id", lang)))
                return gr.update(), explain_error(err, lang)
            rows = table(history_rows(ctx.settings, text, lang), HISTORY_COLUMNS, lang)
            return rows, t("history_deleted", lang, id=int(row_id), files=len(removed))

        history_delete.click(on_history_delete, [history_id, history_query, lang_state], [history_table, history_status])

        # -- models tab ------------------------------------------------------------------------------------
        def on_models(lang: str) -> tuple[Any, str]:
            rows, used = model_rows(ctx.settings, lang)
            return table(rows, MODEL_COLUMNS, lang), t("models_disk", lang, size=_mb(used / 2**20, lang))

        models_refresh.click(on_models, [lang_state], [models_table, models_disk])

        def on_download(name: str, lang: str, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple[str, Any, str, str]:  # noqa: B008 - Gradio's idiom
            from gambarkan.models import store
            from gambarkan.models.catalog import get_package

            try:
                if not name:
                    raise InvalidRequestError(t("select_package", lang))
                store.pull(get_package(name, ctx.settings), ctx.settings, show_progress=True)
            except GambarkanError as exc:
                return (explain_error(exc, lang), *on_models(lang), package_info(name or "", ctx.settings, lang))
            return (t("models_downloaded", lang, name=name), *on_models(lang), package_info(name, ctx.settings, lang))

        models_download.click(on_download, [models_pick, lang_state], [models_status, models_table, models_disk, package_md])

        # -- language switch -------------------------------------------------------------------------------
        def on_language(new_lang: str, package_name: str, text: str, enabled: bool, backend: str, sampler_v: str, query: str) -> list[Any]:
            updates = []
            for component, keys in labels:
                changes: dict[str, Any] = {}
                for attribute, key in keys.items():
                    if key == "_header":
                        changes["value"] = t("title", new_lang) + "\n\n" + t("tagline", new_lang)
                    else:
                        changes[attribute] = t(key, new_lang)
                updates.append(gr.update(**changes))
            components = [c for c, _ in labels]
            sampler_names = [t("from_package", new_lang)] + list(MENU_NAMES)
            kept = sampler_v if sampler_v in sampler_names[1:] else sampler_names[0]  # a chosen sampler survives the switch
            updates[components.index(sampler)] = gr.update(label=t("sampler", new_lang), choices=sampler_names, value=kept)
            updates[components.index(package)] = gr.update(label=t("package", new_lang), choices=package_choices(ctx.settings, new_lang))
            models_value, disk = on_models(new_lang)
            updates[components.index(models_table)] = gr.update(label=t("models_table", new_lang), value=models_value)
            history_value, history_note = on_history(query, new_lang)
            rows = {"value": history_value} if "headers" in history_value else {}  # not on a history error
            updates[components.index(history_table)] = gr.update(label=t("history_table", new_lang), **rows)
            _, note = preview_translation(text, enabled, backend, ctx.settings, new_lang)
            return [new_lang, *updates, package_info(package_name, ctx.settings, new_lang), note, t("status_ready", new_lang), disk, history_note]

        language.change(on_language, [language, package, prompt, translate_on, translator, sampler, history_query],
                        [lang_state, *[c for c, _ in labels], package_md, preview_note, status, models_disk, history_status],
                        show_progress="hidden")
        demo.load(on_models, [lang_state], [models_table, models_disk])
        demo.load(on_history, [history_query, lang_state], [history_table, history_status])
    demo.gambarkan = ctx  # type: ignore[attr-defined]
    return demo


def allowed_paths(settings: Any) -> list[str]:
    """Folders Gradio may serve files from: only the outputs (gallery items are the saved PNGs).

    Not ``GAMBARKAN_HOME``: it holds ``history.db``, ``jobs.db``, configs and caches.
    """
    return [str(Path(settings.output_dir).expanduser())]


def blocked_paths(settings: Any) -> list[str]:
    """Files Gradio must never serve, even when the output folder is set to the home folder."""
    home = Path(settings.home).expanduser()
    databases = [db + suffix for db in ("history.db", "jobs.db") for suffix in ("", "-wal", "-shm", "-journal")]
    return [str(home / name) for name in (*databases, "config")]


def launch(share: bool = False, host: str = "127.0.0.1", port: int | None = None, lang: str = DEFAULT_LANG,
           block: bool = True, settings: Any = None, engine: Any = None, auth: Any = None) -> Any:
    """Serve the UI alone (``gambarkan ui``); with ``block=False`` return at once (notebooks, tests)."""
    from gambarkan.config import Settings

    settings = settings or Settings.from_env()
    demo = build_ui(settings, engine=engine, lang=lang)
    demo.queue(default_concurrency_limit=4)
    demo.launch(share=share, server_name=host, server_port=port, prevent_thread_lock=not block, inbrowser=False,
                allowed_paths=allowed_paths(settings), blocked_paths=blocked_paths(settings), auth=auth, css=CSS, footer_links=[], quiet=not block, show_error=True)
    return demo


def mount(app: Any, state: Any, path: str = "/") -> Any:
    """Mount the UI on the server ``app`` at ``path``, over the server's own job queue.

    Pass it to ``create_app(..., mount_ui=mount)``.
    """
    gr = _import_gradio()
    demo = build_ui(state.settings, queue=state.queue)
    demo.queue(default_concurrency_limit=4)
    return gr.mount_gradio_app(app, demo, path=path, allowed_paths=allowed_paths(state.settings), blocked_paths=blocked_paths(state.settings), css=CSS, footer_links=[])
