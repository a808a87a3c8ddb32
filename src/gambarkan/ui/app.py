"""The web UI: a Gradio Blocks app over the same job queue and engine as every other surface.

``build_ui`` makes the Blocks; ``launch`` serves it alone (``gambarkan ui``); ``mount`` puts it
at ``/`` of the HTTP server (``create_app(..., mount_ui=mount)``), sharing the server's queue,
so the UI shows its place among API jobs, and preselecting the model the server was started
with. The form only collects values: requests are built and validated by ``GenerationRequest``,
translation previews come from ``prompt.translate``. Plain helpers live in ``ui/helpers.py``.
"""

# No ``from __future__ import annotations``: Gradio reads handler annotations (gr.Request,
# gr.SelectData, gr.Progress) as real objects to decide what to inject.
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gambarkan.errors import GambarkanError, InvalidRequestError
from gambarkan.ui.helpers import (  # noqa: F401 - re-exported: the UI's plain parts, tested directly
    HISTORY_COLUMNS,
    MODEL_COLUMNS,
    SHORTCUTS,
    ServerDefault,
    default_package,
    eta_seconds,
    form_fields,
    history_details,
    history_records,
    history_rows,
    history_tiles,
    image_caption,
    model_rows,
    package_choices,
    package_info,
    package_kind,
    plain_error,
    preview_translation,
    run_status,
    snap_size,
    status_markdown,
    table,
    translator_choices,
    _mb,
)
from gambarkan.ui.i18n import DEFAULT_LANG, LANGUAGES, decimal, explain_error, t

POLL_SECONDS = 0.2
PREVIEW_EVERY = 2  # a latent preview every 2 denoising steps
CSS = (
    ".gk-status {min-height: 1.5em} .gk-status progress {width: 100%; height: 0.6em}"
    " #gk-package .wrap {flex-direction: column; align-items: stretch} #gk-package label {width: 100%}"
)


@dataclass
class UIContext:
    """What the UI's handlers share: settings, the job queue, the server's model, each browser session's job."""

    settings: Any
    queue: Any
    default: ServerDefault | None = None
    jobs: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


# --- the Blocks -----------------------------------------------------------------------------------


def _import_gradio() -> Any:
    try:
        import gradio as gr
    except ImportError:
        from gambarkan.errors import DependencyMissingError

        raise DependencyMissingError("the web UI needs gradio", "pip install 'gambarkan[ui]'") from None
    return gr


def _header(lang: str) -> str:
    """The page's title line: small, so the prompt and the Gambarkan button fit the first screen."""
    return "### " + t("title", lang).lstrip("# ") + "\n" + t("tagline", lang)


def _session(request: Any) -> str:
    return getattr(request, "session_hash", None) or "default"


def _form_layout(gr: Any, ctx: UIContext, L: Any, lang: str) -> dict[str, Any]:
    """The Create tab: prompt, preview and the Gambarkan button first (inside the first screen), then the rest."""
    from gambarkan.sampler_names import MENU_NAMES

    settings = ctx.settings
    c: dict[str, Any] = {}
    sampler_choices = [t("from_package", lang)] + list(MENU_NAMES)
    translator_default = settings.translator if settings.translator in ("auto", "glossary", "marian", "nllb", "google") else "auto"
    with gr.Row():
        with gr.Column(scale=5):
            # An image-mode selector (text -> image, image -> image, inpaint) belongs here, above the prompt.
            c["prompt"] = L(gr.Textbox(label=t("prompt", lang), placeholder=t("prompt_placeholder", lang), lines=3, elem_id="gk-prompt"), label="prompt", placeholder="prompt_placeholder")
            with gr.Row():
                c["translate"] = L(gr.Checkbox(value=True, label=t("translate_on", lang), elem_id="gk-translate", scale=1), label="translate_on")
                c["translator"] = L(gr.Dropdown(translator_choices(lang), value=translator_default, label=t("translator", lang), elem_id="gk-translator", scale=3), label="translator")
            c["preview"] = L(gr.Textbox(label=t("preview", lang), lines=2, interactive=True, elem_id="gk-preview"), label="preview")
            c["preview_note"] = gr.Markdown("", elem_id="gk-preview-note")
            with gr.Row():
                c["generate"] = L(gr.Button(t("generate", lang), variant="primary", elem_id="gk-generate", scale=3), value="generate")
                c["cancel"] = L(gr.Button(t("cancel", lang), variant="stop", elem_id="gk-cancel", scale=1), value="cancel")
            c["status"] = gr.Markdown(t("status_ready", lang), elem_id="gk-status", elem_classes="gk-status")
            c["negative"] = L(gr.Textbox(label=t("negative", lang), placeholder=t("negative_placeholder", lang), lines=2, elem_id="gk-negative"), label="negative", placeholder="negative_placeholder")
            chosen = default_package(settings, ctx.default)
            c["package"] = L(gr.Radio(package_choices(settings, lang, ctx.default), value=chosen, label=t("package", lang), elem_id="gk-package"), label="package")
            c["package_md"] = gr.Markdown(package_info(chosen, settings, lang, ctx.default), elem_id="gk-package-info")
            with L(gr.Accordion(t("advanced", lang), open=False, elem_id="gk-advanced"), label="advanced"):
                c["sampler"] = L(gr.Dropdown(sampler_choices, value=sampler_choices[0], label=t("sampler", lang), elem_id="gk-sampler"), label="sampler")
                with gr.Row():
                    c["steps"] = L(gr.Number(0, label=t("steps", lang), precision=0, minimum=0, maximum=150, elem_id="gk-steps"), label="steps")
                    c["cfg"] = L(gr.Number(-1, label=t("cfg", lang), minimum=-1, maximum=30, step=0.5, elem_id="gk-cfg"), label="cfg")
                    c["clip_skip"] = L(gr.Number(0, label=t("clip_skip", lang), precision=0, minimum=0, maximum=12), label="clip_skip")
                with gr.Row():  # no min/max here: our own check says what is wrong, in the page's language
                    c["width"] = L(gr.Number(0, label=t("width", lang), precision=0, step=8, elem_id="gk-width"), label="width")
                    c["height"] = L(gr.Number(0, label=t("height", lang), precision=0, step=8, elem_id="gk-height"), label="height")
                with gr.Row():
                    c["portrait"] = L(gr.Button(t("portrait", lang), size="sm"), value="portrait")
                    c["square"] = L(gr.Button(t("square", lang), size="sm"), value="square")
                    c["landscape"] = L(gr.Button(t("landscape", lang), size="sm"), value="landscape")
                c["size_note"] = gr.Markdown("", elem_id="gk-size-note")
                with gr.Row():
                    c["seed"] = L(gr.Number(-1, label=t("seed", lang), precision=0, minimum=-1, elem_id="gk-seed"), label="seed")
                    c["seed_random"] = L(gr.Button(t("seed_random", lang), size="sm"), value="seed_random")
                    c["seed_reuse"] = L(gr.Button(t("seed_reuse", lang), size="sm"), value="seed_reuse")
                with gr.Row():
                    c["batch_size"] = L(gr.Slider(1, 8, value=1, step=1, label=t("batch_size", lang)), label="batch_size")
                    c["count"] = L(gr.Slider(1, 10, value=1, step=1, label=t("batch_count", lang)), label="batch_count")
        with gr.Column(scale=6):
            c["status_out"] = gr.Markdown("", elem_id="gk-status-out", elem_classes="gk-status")
            c["live"] = L(gr.Image(label=t("live_preview", lang), type="pil", interactive=False, height=256, visible=False, elem_id="gk-live"), label="live_preview")
            c["gallery"] = L(gr.Gallery(label=t("gallery", lang), columns=2, height="auto", buttons=["download", "fullscreen"], elem_id="gk-gallery"), label="gallery")
            c["parameters"] = L(gr.Textbox(label=t("parameters", lang), lines=4, interactive=False, elem_id="gk-parameters"), label="parameters")
            c["send"] = L(gr.Button(t("send_to_prompt", lang), elem_id="gk-send"), value="send_to_prompt")
    return c


def build_ui(settings: Any = None, queue: Any = None, engine: Any = None, lang: str = DEFAULT_LANG, default: ServerDefault | None = None) -> Any:
    """The Gradio Blocks of the UI. Without ``queue`` it makes (and starts) one over ``engine``.

    ``default`` is the model the server was started with: preselected, and said so.
    """
    gr = _import_gradio()
    from gambarkan.config import Settings
    from gambarkan.sampler_names import MENU_NAMES
    from gambarkan.ui.history_tab import build_history_tab
    from gambarkan.ui.models_tab import build_models_tab

    settings = settings or Settings.from_env()
    if queue is None:
        from gambarkan.engine.generate import Engine
        from gambarkan.server.jobs import JobQueue

        queue = JobQueue([engine or Engine(settings, surface="ui")])
        queue.start()
    ctx = UIContext(settings, queue, default)
    lang = lang if lang in LANGUAGES else DEFAULT_LANG
    labels: list[tuple[Any, dict[str, str]]] = []  # (component, {attribute: string key}) relabelled on a language switch

    def L(component: Any, **keys: str) -> Any:
        labels.append((component, keys))
        return component

    with gr.Blocks(title="gambarkan", analytics_enabled=False) as demo:
        lang_state = gr.State(lang)
        results_state = gr.State([])  # [{"path": str, "seed": int, "parameters": str}]
        selected_state = gr.State(-1)
        last_seed = gr.State(-1)
        edited_state = gr.State(False)
        with gr.Row():
            with gr.Column(scale=4):
                L(gr.Markdown(_header(lang), elem_id="gk-header"), value="_header")
            language = L(gr.Radio([(v, k) for k, v in LANGUAGES.items()], value=lang, label=t("language", lang), elem_id="gk-language", scale=1), label="language")
        with gr.Tabs() as tabs:
            with L(gr.Tab(t("tab_create", lang), id="create"), label="tab_create"):
                c = _form_layout(gr, ctx, L, lang)
            with L(gr.Tab(t("tab_history", lang), id="history"), label="tab_history"):
                h = build_history_tab(gr, L, lang)
            with L(gr.Tab(t("tab_models", lang), id="models"), label="tab_models"):
                m = build_models_tab(gr, ctx, L, lang)

        prompt, negative, translate_on, translator, preview = c["prompt"], c["negative"], c["translate"], c["translator"], c["preview"]
        package, sampler, status, status_out, live, gallery = c["package"], c["sampler"], c["status"], c["status_out"], c["live"], c["gallery"]
        width, height, seed = c["width"], c["height"], c["seed"]
        form_keys = ["prompt", "negative", "translate", "translator", "preview", "edited", "package", "sampler", "steps", "cfg",
                     "width", "height", "seed", "batch_size", "count", "clip_skip"]
        form_inputs = [edited_state if key == "edited" else c[key] for key in form_keys]

        # -- translation preview ---------------------------------------------------------------
        def on_prompt(text: str, enabled: bool, backend: str, lang: str) -> tuple[Any, Any, bool]:
            english, note = preview_translation(text, enabled, backend, ctx.settings, lang)
            return gr.update(value=english, interactive=enabled), note, False

        for trigger in (prompt.change, translate_on.change, translator.change):
            trigger(on_prompt, [prompt, translate_on, translator, lang_state], [preview, c["preview_note"], edited_state], trigger_mode="always_last", show_progress="hidden")
        preview.input(lambda lang: (True, t("preview_info_edited", lang)), [lang_state], [edited_state, c["preview_note"]], show_progress="hidden")

        # -- package, sizes and shortcuts ------------------------------------------------------------
        package.change(lambda name, lang: package_info(name, ctx.settings, lang, ctx.default), [package, lang_state], [c["package_md"]], show_progress="hidden")
        for button, shape in ((c["portrait"], "portrait"), (c["square"], "square"), (c["landscape"], "landscape")):
            button.click(lambda name, _s=shape: SHORTCUTS[package_kind(name, ctx.settings)][_s], [package], [width, height], show_progress="hidden")

        def on_size(w: Any, h: Any, lang: str) -> tuple[Any, Any, str]:
            snapped_w, snapped_h = snap_size(w), snap_size(h)
            if (snapped_w, snapped_h) == (w, h):
                return gr.update(), gr.update(), ""
            return snapped_w, snapped_h, t("size_snapped", lang, width=snapped_w or "-", height=snapped_h or "-")

        for box in (width, height):
            box.blur(on_size, [width, height, lang_state], [width, height, c["size_note"]], show_progress="hidden")
        c["seed_random"].click(lambda: -1, None, [seed], show_progress="hidden")
        c["seed_reuse"].click(lambda last: last, [last_seed], [seed], show_progress="hidden")

        # -- generate / cancel -----------------------------------------------------------------------
        def failed(error: BaseException, lang: str) -> tuple[Any, ...]:
            gr.Warning(plain_error(error, lang), title=t("error_title", lang))  # a toast, wherever the user has scrolled
            text = explain_error(error, lang)
            return text, text, gr.update(value=None, visible=False), gr.update(), gr.update(), gr.update()

        def on_generate(prompt_v: str, negative_v: str, translate_v: bool, translator_v: str, preview_v: str, edited_v: bool,
                        package_v: str, sampler_v: str, steps_v: Any, cfg_v: Any, width_v: Any, height_v: Any, seed_v: Any,
                        batch_size_v: Any, count_v: Any, clip_skip_v: Any, lang: str, request: gr.Request):
            form = dict(zip(form_keys, (prompt_v, negative_v, translate_v, translator_v, preview_v, edited_v, package_v, sampler_v,
                                        steps_v, cfg_v, width_v, height_v, seed_v, batch_size_v, count_v, clip_skip_v)))
            from gambarkan.request import GenerationRequest
            from gambarkan.server.jobs import CANCELLED, DONE, Job

            try:
                job = Job(GenerationRequest(**form_fields(form, lang, ctx.settings, ctx.default)), source="ui", preview_every=PREVIEW_EVERY)
                ctx.queue.submit(job)
            except GambarkanError as exc:
                yield failed(exc, lang)
                return
            session = _session(request)
            with ctx.lock:
                ctx.jobs[session] = job
            started, first_step = time.perf_counter(), None
            try:
                shown_preview = None
                while not job.future.done():
                    if job.cancel.is_set():  # stop waiting now: the next Gambarkan must not wait for the old run's last step
                        text = t("status_cancelled", lang)
                        yield text, text, gr.update(value=None, visible=False), gr.update(), gr.update(), gr.update()
                        return
                    if first_step is None and job.progress > 0:
                        first_step = (time.perf_counter(), job.progress)
                    eta = eta_seconds(first_step, time.perf_counter(), job.progress)
                    text = status_markdown(job, ctx.queue.position(job), lang, eta)
                    live_update = gr.update(value=job.preview, visible=True) if job.preview is not shown_preview else gr.update(visible=True)
                    shown_preview = job.preview
                    yield text, text, live_update, gr.update(), gr.update(), gr.update()
                    time.sleep(POLL_SECONDS)
            finally:
                with ctx.lock:
                    if ctx.jobs.get(session) is job:
                        del ctx.jobs[session]
            if job.status == CANCELLED:
                text = t("status_cancelled", lang)
                yield text, text, gr.update(value=None, visible=False), gr.update(), gr.update(), gr.update()
                return
            if job.status != DONE or job.result is None:
                yield failed(job.error or GambarkanError("failed"), lang)
                return
            result = job.result
            if hasattr(job, "release"):
                job.release()  # the queue keeps finished jobs; they should not keep our pixels
            items = [(str(img.path) if img.path else img.image, image_caption(img, lang)) for img in result.images]
            results = [{"path": str(img.path) if img.path else None, "seed": img.seed, "parameters": img.parameters} for img in result.images]
            lines = [t("status_done", lang, count=len(result.images), seconds=decimal(time.perf_counter() - started, lang), seed=result.seed)]
            if result.prompt != result.original_prompt:
                lines.append(t("status_translated", lang, prompt=result.prompt))
            text = "\n\n".join(lines)
            yield text, text, gr.update(value=None, visible=False), items, results, result.seed

        run_outputs = [status, status_out, live, gallery, results_state, last_seed]
        # always_last: a click while the previous run is still ending (just cancelled) is kept and runs next, never dropped.
        c["generate"].click(on_generate, form_inputs + [lang_state], run_outputs, concurrency_limit=None, show_progress="hidden",
                            trigger_mode="always_last")

        def on_cancel(lang: str, request: gr.Request) -> tuple[str, str]:
            with ctx.lock:
                job = ctx.jobs.get(_session(request))
            if job is None:
                return t("status_nothing", lang), gr.update()
            try:
                ctx.queue.cancel(job.id)
            except GambarkanError:
                pass  # it finished meanwhile
            return t("status_cancelling", lang), t("status_cancelling", lang)

        c["cancel"].click(on_cancel, [lang_state], [status, status_out], concurrency_limit=None, show_progress="hidden")

        # -- gallery: selection, reuse ---------------------------------------------------------------
        def on_select(results: list[dict[str, Any]], evt: gr.SelectData) -> tuple[str, int]:
            index = int(evt.index) if evt.index is not None else -1
            if 0 <= index < len(results):
                return results[index]["parameters"], index
            return "", -1

        gallery.select(on_select, [results_state], [c["parameters"], selected_state], show_progress="hidden")

        reuse_outputs = [prompt, negative, package, sampler, c["steps"], c["cfg"], width, height, seed, c["clip_skip"], translate_on]

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

        c["send"].click(on_send, [results_state, selected_state, lang_state], reuse_outputs + [status], show_progress="hidden")

        # -- history tab ---------------------------------------------------------------------------------
        def on_history(text: str, lang: str) -> tuple[Any, list[int], str]:
            try:
                records = history_records(ctx.settings, text)
            except GambarkanError as exc:
                return gr.update(), [], explain_error(exc, lang)
            return history_tiles(records, lang), [r["id"] for r in records], "" if records else t("history_empty", lang)

        history_outputs = [h["gallery"], h["ids"], h["status"]]
        h["refresh"].click(on_history, [h["query"], lang_state], history_outputs)
        h["query"].submit(on_history, [h["query"], lang_state], history_outputs)

        def on_history_select(ids: list[int], lang: str, evt: gr.SelectData) -> tuple[str, int]:
            from gambarkan.outputs.history import History

            index = int(evt.index) if evt.index is not None else -1
            if not 0 <= index < len(ids):
                return "", -1
            try:
                with History.open(ctx.settings) as history:
                    record = history.get(ids[index])
            except GambarkanError as exc:
                return explain_error(exc, lang), -1
            return history_details(record, lang), ids[index]

        h["gallery"].select(on_history_select, [h["ids"], lang_state], [h["details"], h["selected"]], show_progress="hidden")

        def on_history_reuse(row_id: int, lang: str) -> list[Any]:
            from gambarkan.outputs.history import History, rerun_fields

            if row_id is None or row_id < 0:
                return [gr.update()] * len(reuse_outputs) + [t("history_pick_first", lang), gr.update(), gr.update()]
            try:
                with History.open(ctx.settings) as history:
                    fields = rerun_fields(history.get(int(row_id)))
            except GambarkanError as exc:
                return [gr.update()] * len(reuse_outputs) + [explain_error(exc, lang), gr.update(), gr.update()]
            done = t("history_loaded", lang, id=int(row_id))
            return fields_to_form(fields, lang) + [done, done, gr.Tabs(selected="create")]

        h["reuse"].click(on_history_reuse, [h["selected"], lang_state], reuse_outputs + [h["status"], status, tabs])

        def on_history_delete(row_id: int, text: str, lang: str) -> tuple[Any, ...]:
            from gambarkan.outputs.history import History

            if row_id is None or row_id < 0:
                return gr.update(), gr.update(), t("history_pick_first", lang), gr.update(), gr.update()
            try:
                with History.open(ctx.settings) as history:
                    removed = history.delete([int(row_id)], files=True)
            except GambarkanError as exc:
                return gr.update(), gr.update(), explain_error(exc, lang), gr.update(), gr.update()
            tiles, ids, _ = on_history(text, lang)
            return tiles, ids, t("history_deleted", lang, id=int(row_id), files=len(removed)), "", -1

        h["delete"].click(on_history_delete, [h["selected"], h["query"], lang_state], [*history_outputs, h["details"], h["selected"]])

        # -- models tab ------------------------------------------------------------------------------------
        def on_models(lang: str) -> tuple[Any, str]:
            rows, used = model_rows(ctx.settings, lang)
            return table(rows, MODEL_COLUMNS, lang), t("models_disk", lang, size=_mb(used / 2**20, lang))

        m["refresh"].click(on_models, [lang_state], [m["table"], m["disk"]])

        def on_download(name: str, lang: str, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple[Any, ...]:  # noqa: B008 - Gradio's idiom
            from gambarkan.models import store
            from gambarkan.models.catalog import get_package

            try:
                if not name:
                    raise InvalidRequestError(t("select_package", lang))
                store.pull(get_package(name, ctx.settings), ctx.settings, show_progress=True)
            except GambarkanError as exc:
                return (explain_error(exc, lang), *on_models(lang), package_info(name or "", ctx.settings, lang, ctx.default), gr.update())
            choices = gr.update(choices=package_choices(ctx.settings, lang, ctx.default))
            return (t("models_downloaded", lang, name=name), *on_models(lang), package_info(name, ctx.settings, lang, ctx.default), choices)

        m["download"].click(on_download, [m["pick"], lang_state], [m["status"], m["table"], m["disk"], c["package_md"], package])

        # -- language switch -------------------------------------------------------------------------------
        def on_language(new_lang: str, package_name: str, text: str, enabled: bool, backend: str, sampler_v: str, query: str) -> list[Any]:
            updates = []
            for component, keys in labels:
                changes: dict[str, Any] = {}
                for attribute, key in keys.items():
                    if key == "_header":
                        changes["value"] = _header(new_lang)
                    else:
                        changes[attribute] = t(key, new_lang)
                updates.append(gr.update(**changes))
            components = [comp for comp, _ in labels]
            sampler_names = [t("from_package", new_lang)] + list(MENU_NAMES)
            kept = sampler_v if sampler_v in sampler_names[1:] else sampler_names[0]  # a chosen sampler survives the switch
            updates[components.index(sampler)] = gr.update(label=t("sampler", new_lang), choices=sampler_names, value=kept)
            updates[components.index(package)] = gr.update(label=t("package", new_lang), choices=package_choices(ctx.settings, new_lang, ctx.default))
            updates[components.index(translator)] = gr.update(label=t("translator", new_lang), choices=translator_choices(new_lang))
            models_value, disk = on_models(new_lang)
            updates[components.index(m["table"])] = gr.update(label=t("models_table", new_lang), value=models_value)
            tiles, ids, history_note = on_history(query, new_lang)
            _, note = preview_translation(text, enabled, backend, ctx.settings, new_lang)
            return [new_lang, *updates, package_info(package_name, ctx.settings, new_lang, ctx.default), note,
                    t("status_ready", new_lang), "", disk, tiles, ids, history_note]

        language.change(on_language, [language, package, prompt, translate_on, translator, sampler, h["query"]],
                        [lang_state, *[comp for comp, _ in labels], c["package_md"], c["preview_note"], status, status_out, m["disk"], *history_outputs],
                        show_progress="hidden")
        demo.load(on_models, [lang_state], [m["table"], m["disk"]])
        demo.load(on_history, [h["query"], lang_state], history_outputs)
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


def server_default(state: Any) -> ServerDefault | None:
    """The model ``serve --model``/``--preset`` was started with, as the UI's first choice (None: the usual packages)."""
    config = getattr(state, "config", None)
    model, preset = getattr(config, "model", None), getattr(config, "preset", None)
    if model:
        from gambarkan.models.catalog import load_catalog

        name = model.strip().lower()
        try:
            if name in load_catalog(state.settings):  # --model anime: the package itself, preselected
                return ServerDefault(name, {"preset": name})
        except GambarkanError:
            pass
        return ServerDefault(state.default_entry.name, {"model": model})
    if preset:
        return ServerDefault(preset.strip().lower(), {"preset": preset.strip().lower()})
    return None


def mount(app: Any, state: Any, path: str = "/") -> Any:
    """Mount the UI on the server ``app`` at ``path``, over the server's own job queue.

    Pass it to ``create_app(..., mount_ui=mount)``.
    """
    gr = _import_gradio()
    demo = build_ui(state.settings, queue=state.queue, default=server_default(state))
    demo.queue(default_concurrency_limit=4)
    return gr.mount_gradio_app(app, demo, path=path, allowed_paths=allowed_paths(state.settings), blocked_paths=blocked_paths(state.settings), css=CSS, footer_links=[])
