"""The one ``generate(request) -> result``: resolve, translate, load, sample, save, record.

Every surface calls ``Engine.generate``. The small ``_resolve``/``_translate``/
``_conditioning``/``_record`` functions are the seams where presets, translation, prompt
weighting and history plug in.
"""

from __future__ import annotations

import datetime as _dt
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gambarkan import __version__
from gambarkan.config import Settings
from gambarkan.errors import CancelledError
from gambarkan.families import Family, get_family
from gambarkan.plan import Plan
from gambarkan.request import GeneratedImage, GenerationRequest, GenerationResult
from gambarkan.sampler_names import infotext_fields

__all__ = ["Engine", "Plan", "Progress", "Translation", "default_engine", "make_result", "metadata_fields"]


@dataclass
class Translation:
    """Prompts as the text encoder will see them, plus what the user typed."""

    prompt: str
    negative_prompt: str
    original_prompt: str
    original_negative_prompt: str
    translator: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Progress:
    """One denoising step of one batch, for progress bars and live previews."""

    batch_index: int
    batch_count: int
    step: int
    steps: int
    images_done: int
    images_total: int
    preview: Any = None  # PIL.Image when previews were asked for


ProgressCallback = Callable[[Progress], None]


def _resolve(request: GenerationRequest, settings: Settings) -> Plan:
    """Fill unset values from the preset (default ``umum``) and then from DEFAULTS; pulls a
    package that is not downloaded yet unless offline (gambarkan.models.resolve_request)."""
    from gambarkan.models import resolve_request

    return resolve_request(request, settings)


def _translate(prompt: str, negative: str, request: GenerationRequest, settings: Settings) -> Translation:
    """Translate Indonesian parts to English; ``translator`` names the backend only when text changed."""
    from gambarkan.prompt.translate import translate_pair

    first, second = translate_pair(
        prompt, negative, request.translator or settings.translator, settings, offline=request.offline or settings.offline
    )
    used = [t.backend for t in (first, second) if t.changed]
    notes = list(dict.fromkeys([*first.notes, *second.notes]))
    return Translation(first.english, second.english, prompt, negative, used[0] if used else None, notes)


def _prompts(request: GenerationRequest, plan: Plan, settings: Settings) -> Translation:
    """The prompt with the package's style words, translated unless the request says not to."""
    prompt = f"{request.prompt}, {plan.style}" if plan.style else request.prompt
    if request.translate:
        return _translate(prompt, plan.negative_prompt, request, settings)
    return Translation(prompt, plan.negative_prompt, prompt, plan.negative_prompt)


def _conditioning(
    pipe: Any, prompt: str, negative: str, clip_skip: int, steps: int, cfg: float = 7.0, family: Family | None = None
) -> tuple[dict[str, Any], Callable | None]:
    """Pipeline kwargs for the text conditioning and an optional per-step hook (prompt issue).

    CLIP families get A1111 semantics: weights, BREAK, prompts past 77 tokens in 75-token
    chunks, clip skip, prompt editing switched per step through ``callback_on_step_end``.
    T5 families (FLUX) get the plain text; ``_family_notes`` says what was dropped.
    """
    from gambarkan.prompt.encode import build_conditioning

    if family is not None and family.prompt_encoding != "clip":
        return {"prompt": plain_prompt(prompt)[0], "max_sequence_length": T5_TOKENS}, None

    cond = build_conditioning(pipe, prompt, negative, clip_skip, steps, guidance=cfg > 1)  # diffusers skips CFG at <= 1
    return cond.pipeline_kwargs, cond.on_step


T5_TOKENS = 256  # FLUX.1-schnell's limit for the T5 prompt (dev allows 512)


def _fit_sampler(plan: Plan, family: Family, asked: str | None) -> list[str]:
    """Use the family's own sampler when the plan's does not apply to it (flow models: Euler only)."""
    from gambarkan.engine.samplers import FLOW_SAMPLERS

    if family.scheduler_kind != "flow" or plan.sampler in FLOW_SAMPLERS:
        return []
    was, plan.sampler = plan.sampler, family.default_sampler
    return [f"{family.title} is a flow-matching model: sampler '{was}' does not apply, {plan.sampler} was used"] if asked else []


def plain_prompt(text: str) -> tuple[str, bool]:
    """``text`` without A1111 weights, BREAK, editing and ``<lora:..>`` tags; True when any was there."""
    from gambarkan.prompt import syntax

    untagged = syntax.extract_tags(text, warn=False)[0]
    schedule = syntax.prompt_schedule(untagged, 1)
    pieces = syntax.parse_attention(schedule[0][1])
    words = [" " if (weight == -1.0 and piece == syntax.BREAK) else piece for piece, weight in pieces]
    plain = " ".join("".join(words).split())
    changed = len(schedule) > 1 or any(weight != 1.0 for _, weight in pieces) or plain != " ".join(untagged.split())
    return plain, changed


def _family_notes(family: Family, prompt: str, negative: str, clip_skip: int) -> list[str]:
    """One note per request value the family cannot use (instead of an error deep in diffusers)."""
    notes: list[str] = []
    if not family.supports("prompt_weights") and plain_prompt(prompt)[1]:
        notes.append(f"{family.title} reads the prompt as plain text: A1111 weights, BREAK and [a:b] editing were removed")
    if not family.supports("negative_prompt") and negative.strip():
        notes.append(f"{family.title} has no negative prompt; it was not used")
    if not family.supports("clip_skip") and clip_skip > 1:
        notes.append(f"{family.title} has no clip skip; it was not used")
    return notes


def _networks(pipe: Any, prompt: str, negative: str, settings: Settings) -> dict[str, str]:
    """Load the prompt's LoRAs / embeddings (unloading others); returns their PNG metadata."""
    from gambarkan.models.loras import apply_networks

    return apply_networks(pipe, prompt, negative, settings).metadata()


def _record_start(request: GenerationRequest, settings: Settings, surface: str | None) -> int | None:
    """Add a "running" history row, so a killed process leaves an interrupted row behind."""
    from gambarkan.outputs.history import record_start

    return record_start(settings, request, surface=surface, out_dir=_output_dir(request, settings) if request.save else None)


def _record_image(settings: Settings, run_id: int | None, path: Path | None, seed: int) -> None:
    """Name one saved image in the running history row."""
    from gambarkan.outputs.history import record_image

    record_image(settings, run_id, path, seed)


def _record(result: GenerationResult | None, request: GenerationRequest, error: BaseException | None, settings: Settings, run_id: int | None = None, surface: str | None = None) -> None:
    """Complete the history row: done with the result, or failed/cancelled with the error."""
    from gambarkan.outputs.history import record_finish

    record_finish(settings, run_id, request, result, error, surface=surface)


def _task(request: GenerationRequest, plan: Plan) -> Any:
    """What the request asks of the pipeline (engine.tasks): working size, images, masks, hires."""
    from gambarkan.engine.tasks import prepare

    return prepare(request, plan)


def _task_pipeline(loaded: Any, kind: str, controlnet: Any = None) -> Any:
    """The loaded pipeline itself (txt2img) or one derived from it with ``from_pipe``."""
    from gambarkan.engine.tasks import pipeline_for

    return pipeline_for(loaded, kind, controlnet)


def _controlnet(task: Any, loaded: Any, device: str, dtype: str, settings: Settings, offline: bool) -> Any:
    """The ControlNet model(s) of the request's control units (None without), loaded once."""
    if task.control is None:
        return None
    from gambarkan.engine import control

    model = control.attach(task.control, loaded, device, dtype, settings, offline)
    control.check_fits(model, loaded.pipe)
    return model


def _ip_adapter(request: GenerationRequest, task: Any, settings: Settings) -> Any:
    """The request's IP-Adapter plan (None without a reference image); its metadata and notes go on the task."""
    if request.ip_adapter is None:
        return None
    from gambarkan.engine.ip_adapter import resolve

    plan = resolve(request.ip_adapter, settings)
    task.metadata.update(plan.metadata())
    if task.hires is not None:
        task.notes.append("the hires fix's second pass runs without the IP-Adapter")
    return plan


def _run_task(task: Any, loaded: Any, pipe: Any, kwargs: dict[str, Any], on_step_end: Callable, new_scheduler: Callable[[], Any]) -> list[Any]:
    """The pipeline call(s) of one batch; returns its finished images (overlay applied)."""
    from gambarkan.engine.tasks import run

    return run(task, loaded, pipe, kwargs, on_step_end, new_scheduler)


def _latent_preview(latents: Any, arch: str, scale: int = 8, pipe: Any = None, size: tuple[int, int] | None = None) -> Any:
    """A cheap RGB approximation of the latents (A1111's "Approx cheap"), no VAE call.

    The factors come from the family (4 channels for SD, 16 for FLUX, whose packed
    (batch, tokens, 64) latents are unpacked first with the pipeline's own helper).
    """
    import torch
    from PIL import Image

    family = get_family(arch)
    factors, bias = [list(row) for row in family.latent_rgb], list(family.latent_bias)
    with torch.no_grad():
        if latents.ndim == 3:  # packed (batch, tokens, channels*4): FLUX
            if pipe is None or size is None or not hasattr(pipe, "_unpack_latents") or latents.shape[1] != (size[0] // (2 * scale)) * (size[1] // (2 * scale)):
                return None
            latents = pipe._unpack_latents(latents, size[1], size[0], scale)
        lat = latents[0].float().cpu()
        rgb = torch.einsum("chw,cr->hwr", lat, torch.tensor(factors)) + torch.tensor(bias)
        rgb = ((rgb + 1) / 2).clamp(0, 1).mul(255).byte().numpy()
    return Image.fromarray(rgb).resize((lat.shape[2] * scale, lat.shape[1] * scale), Image.NEAREST)


def metadata_fields(plan: Plan, loaded_name: str, model_hash: str | None, seed: int, translation: Translation, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The A1111 key/value part of the PNG ``parameters`` chunk, in A1111's order."""
    fields: dict[str, Any] = {
        "Steps": plan.steps,
        # A1111 >= 1.9 style: "Sampler: DPM++ 2M, Schedule type: Karras" (read back in both styles).
        "Sampler": infotext_fields(plan.sampler)[0],
        "Schedule type": infotext_fields(plan.sampler)[1],
        "CFG scale": f"{plan.cfg:g}",
        "Seed": seed,
        "Size": f"{plan.width}x{plan.height}",
        "Model hash": model_hash,
        "Model": loaded_name,
        "Clip skip": plan.clip_skip if plan.clip_skip > 1 else None,
    }
    fields.update(extra or {})
    if translation.translator:
        fields["Original prompt"] = translation.original_prompt
        if translation.original_negative_prompt:
            fields["Original negative prompt"] = translation.original_negative_prompt
        fields["Translator"] = translation.translator
    fields["Preset"] = plan.preset
    fields["Version"] = f"gambarkan {__version__}"
    return fields


def _output_dir(request: GenerationRequest, settings: Settings) -> Path:
    if request.out_dir:
        return Path(request.out_dir).expanduser()
    return settings.output_dir / _dt.date.today().isoformat()


class Engine:
    """Owns the pipeline cache and runs one generation at a time."""

    def __init__(self, settings: Settings | None = None, max_models: int = 1, surface: str = "api", history: bool = True) -> None:
        from gambarkan.engine.pipelines import PipelineCache

        self.settings = settings or Settings.from_env()
        self.cache = PipelineCache(max_models=max_models)
        self._lock = threading.Lock()
        self.surface = surface  # recorded in the history: api, cli, server, ui ...
        self.history = history  # False for bench/doctor runs that are not the user's images

    def register(self, model: str, pipe: Any, arch: str | None = None, device: str = "cpu", dtype: str = "fp32") -> None:
        """Put an already built pipeline in the cache under the name ``model`` (bench, doctor, tests).

        Without ``arch`` the family is told by the pipeline's class (``families.family_of_pipeline``).
        """
        from gambarkan.engine.pipelines import LoadedModel
        from gambarkan.families import family_of_pipeline

        pipe.set_progress_bar_config(disable=True)
        loaded = LoadedModel(pipe, arch or family_of_pipeline(pipe).name, model, model, None)
        self.cache.get((model, device, dtype, None), lambda: loaded)

    def load(self, plan: Plan, device: str, dtype: str, offline: bool) -> tuple[Any, bool]:
        """The loaded model for ``plan`` (from the cache when possible), not yet placed."""
        from gambarkan.engine.pipelines import load_model

        key = (plan.model, device, dtype, plan.config) + ((plan.vae,) if plan.vae else ()) + ((plan.transformer,) if plan.transformer else ())
        load_device = None if device == "cuda" else device  # CUDA placement depends on the memory mode
        return self.cache.get(
            key,
            lambda: load_model(plan.model, load_device, dtype, offline=offline, cache_dir=self.settings.cache_dir, config=plan.config, vae=plan.vae,
                               name=plan.name, transformer=plan.transformer),
        )

    @staticmethod
    def place(loaded: Any, memory_plan: Any) -> None:
        """Put the pipeline where ``memory_plan`` says (GPU, offload, VAE slicing/tiling), once per change."""
        from gambarkan.engine.device import apply_memory_plan

        current = loaded.extras.get("memory_plan")
        if current == memory_plan:
            return
        if current is not None and current.device == "cuda" and current.mode != "high":
            loaded.pipe.remove_all_hooks()  # offload hooks stay on the modules until removed
        apply_memory_plan(loaded.pipe, memory_plan)
        loaded.extras["memory_plan"] = memory_plan

    def generate(
        self,
        request: GenerationRequest,
        *,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        preview_every: int = 0,
        surface: str | None = None,
    ) -> GenerationResult:
        """Run ``request`` and return its result; records it in the history either way.

        ``surface`` names where the request came from in the history when it is not this
        engine's own (the web UI mounted in the server shares the server's engine).
        """
        surface = surface or self.surface
        with self._lock:
            run_id = _record_start(request, self.settings, surface) if self.history else None
            self._run_id = run_id  # each saved image is added to this row at once (see _generate)
            try:
                result = _per_image_variations(self._generate, request, on_progress, cancel, preview_every)
                if result is None:
                    result = self._generate(request, on_progress, cancel, preview_every)
            except BaseException as exc:
                if self.history:
                    _record(None, request, exc, self.settings, run_id, surface)
                raise
            if self.history:
                _record(result, request, None, self.settings, run_id, surface)
            return result

    def _generate(self, request: GenerationRequest, on_progress: ProgressCallback | None, cancel: threading.Event | None, preview_every: int,
                  fields: dict[str, Any] | None = None) -> GenerationResult:
        import torch

        from gambarkan.engine.device import choose_memory_mode, is_black, latents_finite, pick_device, pick_dtype, run_with_oom_retry
        from gambarkan.engine.samplers import build_scheduler, make_scheduler
        from gambarkan.outputs.history import pause_point
        from gambarkan.outputs.png import format_parameters, save_png

        timings: dict[str, float] = {}
        started = time.perf_counter()
        _reset_peaks(device_hint=request.device)
        if request.save:  # a folder that cannot take the images fails now, not after sampling
            from gambarkan.outputs.png import check_output_dir

            check_output_dir(_output_dir(request, self.settings))
        plan = _resolve(request, self.settings)
        plan.extra.update(fields or {})  # e.g. the variations' Template
        task = _task(request, plan)  # txt2img / img2img / inpaint (+ hires): pixels ready, steps checked
        task.ip_adapter = _ip_adapter(request, task, self.settings)  # its folder found before any load

        t = time.perf_counter()
        translation = _prompts(request, plan, self.settings)
        timings["translate"] = time.perf_counter() - t

        device = pick_device(request.device)
        dtype = pick_dtype(device, request.dtype)
        t = time.perf_counter()
        loaded, cached = self.load(plan, device, dtype, request.offline or self.settings.offline)
        memory_plan = choose_memory_mode(request.memory, device, loaded.arch, *task.memory_size, batch=request.batch_size)
        self.place(loaded, memory_plan)
        timings["load"] = 0.0 if cached else time.perf_counter() - t
        pipe = loaded.pipe
        notes = list(translation.notes) + task.notes + _family_notes(loaded.family, translation.prompt, translation.negative_prompt, plan.clip_skip)
        notes += _fit_sampler(plan, loaded.family, request.sampler)
        plan.extra.update(loaded.family.metadata)
        if not loaded.family.supports("prompt_weights") and plain_prompt(translation.prompt)[1]:
            plan.extra["Prompt weights"] = "ignored"

        plan.extra.update(_networks(pipe, translation.prompt, translation.negative_prompt, self.settings))
        opt = _optimize(pipe, request, loaded, device, dtype, plan, self.settings)  # after LoRAs: fused QKV must see them
        if opt.metadata:
            plan.extra["Optimizations"] = opt.metadata  # only techniques that change the output
        notes.extend(opt.announce)  # e.g. what --fast does on this CPU, and why
        controlnet = _controlnet(task, loaded, device, dtype, self.settings, request.offline or self.settings.offline)
        if task.control is not None:
            task.metadata.update(task.control.metadata())
        plan.extra.update(task.metadata)
        task_pipe = _task_pipeline(loaded, task.kind, controlnet)  # the loaded modules, shared (from_pipe)
        seed = request.seed if request.seed >= 0 else random.randint(0, 2**32 - 1 - request.batch_size * request.count)
        out_dir = _output_dir(request, self.settings) if request.save else None
        images: list[GeneratedImage] = []
        total = request.batch_size * request.count
        timings["sample"] = 0.0
        timings["save"] = 0.0
        for batch_index in range(request.count):
            task_pipe.scheduler, scheduler_notes = build_scheduler(plan.sampler, {**loaded.scheduler_config, **plan.scheduler_options})
            notes.extend(n for n in scheduler_notes if n not in notes)
            t = time.perf_counter()
            cond_kwargs, step_hook = _conditioning(pipe, translation.prompt, translation.negative_prompt, plan.clip_skip, plan.steps, plan.cfg, loaded.family)
            timings["encode"] = timings.get("encode", 0.0) + time.perf_counter() - t
            batch_seeds = [seed + batch_index * request.batch_size + i for i in range(request.batch_size)]
            generator_device = "cpu" if device == "mps" else device
            generators = [torch.Generator(generator_device).manual_seed(s) for s in batch_seeds]

            steps_run = [0]  # denoising steps actually run in this batch (named when it is cancelled)
            nonfinite = [False]

            def on_step_end(p: Any, step: int, timestep: Any, kwargs: dict[str, Any], _b: int = batch_index) -> dict[str, Any]:
                pause_point("sample")  # test-only SIGKILL point; a no-op unless GAMBARKAN_TEST_PAUSE_AT is set
                steps_run[0] = step + 1
                if "latents" in kwargs and not latents_finite(kwargs["latents"]):
                    nonfinite[0] = True  # fp16 overflow: never saved as a success (see _precision_retry)
                if step_hook is not None:
                    kwargs = step_hook(p, step, timestep, kwargs) or kwargs
                if cancel is not None and cancel.is_set():
                    p._interrupt = True
                if on_progress is not None:
                    preview = None
                    if preview_every and (step + 1) % preview_every == 0 and "latents" in kwargs:
                        preview = _preview(p, opt, kwargs["latents"], loaded.arch, (task.width, task.height))
                    on_progress(Progress(_b, request.count, step + 1, task.steps_total, len(images), total, preview))
                return kwargs

            t = time.perf_counter()
            scope = opt.scope(pipe, device)  # bf16 autocast when on; stage timings and peak memory

            def run_batch(_memory: Any, _cond: dict[str, Any] = cond_kwargs, _gens: list[Any] = generators, _cb: Callable = on_step_end) -> list[Any]:
                common = dict(_cond, num_inference_steps=plan.steps, guidance_scale=plan.cfg, num_images_per_prompt=request.batch_size, generator=_gens)
                return _run_task(task, loaded, task_pipe, common, _cb, lambda: make_scheduler(plan.sampler, {**loaded.scheduler_config, **plan.scheduler_options}))

            try:
                # Out of memory: free it, step down one memory mode and retry once (then a clear error).
                output = run_with_oom_retry(run_batch, loaded.extras["memory_plan"], lambda mp: self.place(loaded, mp), notes.append)
            finally:
                task_pipe._interrupt = False
                scope.close(timings)
            timings["sample"] += time.perf_counter() - t
            if cancel is not None and cancel.is_set():
                # The unfinished image is never saved (a partial image must not pass for a finished one).
                raise CancelledError(
                    f"generation cancelled after step {steps_run[0]} of {task.steps_total} of image {len(images) + 1}",
                    f"{len(images)} of {total} images were finished",
                )
            if nonfinite[0] or any(is_black(image) for image in output):
                def rerun(_seeds: list[int] = batch_seeds, _pipe: Any = task_pipe) -> list[Any]:
                    _pipe.scheduler = make_scheduler(plan.sampler, {**loaded.scheduler_config, **plan.scheduler_options})
                    gens = [torch.Generator(generator_device).manual_seed(s) for s in _seeds]
                    return run_with_oom_retry(lambda mp: run_batch(mp, _gens=gens), loaded.extras["memory_plan"], lambda mp: self.place(loaded, mp), notes.append)

                output = _precision_retry(loaded, plan, dtype, notes, rerun, nonfinite)

            t = time.perf_counter()
            for i, (image, image_seed) in enumerate(zip(output, batch_seeds)):
                fields = metadata_fields(plan, loaded.name, loaded.hash, image_seed, translation, plan.extra)
                parameters = format_parameters(translation.prompt, translation.negative_prompt, fields)
                path = save_png(image, out_dir, image_seed, parameters) if out_dir is not None else None
                if self.history:  # the row names the image the moment it exists (a kill later loses nothing)
                    _record_image(self.settings, getattr(self, "_run_id", None), path, image_seed)
                pause_point("write")  # test-only, see pause_point
                images.append(GeneratedImage(image, image_seed, batch_index * request.batch_size + i, path, parameters))
            timings["save"] += time.perf_counter() - t

        timings["total"] = time.perf_counter() - started
        timings.update(_peak_memory(device))
        timings.update(_since_process_start())
        return make_result(images, plan, translation, loaded, opt, seed, device, dtype, timings, notes)


def _precision_retry(loaded: Any, plan: Plan, dtype: str, notes: list[str], rerun: Callable[[], Any], nonfinite: list[bool]) -> Any:
    """NaN latents or a black image: retry the batch once with the VAE in fp32 (kept on the cached
    pipeline), say so in a note and the PNG metadata; still bad -> NumericalError, nothing saved."""
    from gambarkan.engine.device import is_black, upcast_vae
    from gambarkan.errors import NumericalError

    why = "NaN latents" if nonfinite[0] else "an all-black image"
    fix = upcast_vae(loaded.pipe)
    notes.append(f"the model gave {why} in {dtype} (a half-precision overflow); retried once with the {fix}")
    plan.extra["Precision fix"] = fix
    nonfinite[0] = False
    output = rerun()
    if nonfinite[0] or any(is_black(image) for image in output):
        raise NumericalError(
            f"the model still gave {'NaN latents' if nonfinite[0] else 'an all-black image'} after retrying with the {fix}; nothing was saved",
            "run with --dtype fp32, or use a VAE made for fp16 (e.g. madebyollin/sdxl-vae-fp16-fix)",
        )
    return output


def _per_image_variations(run: Callable[..., GenerationResult], request: GenerationRequest, on_progress: ProgressCallback | None,
                          cancel: threading.Event | None, preview_every: int) -> GenerationResult | None:
    """Prompt variations (``{a|b}``, ``__name__``): each image runs alone with the prompt its seed expands to.

    None when the prompts have none; the PNGs keep the expanded prompt and the ``Template``.
    """
    from dataclasses import replace

    from gambarkan.prompt.variations import check, expand, has_variations

    if not (has_variations(request.prompt) or has_variations(request.negative_prompt)):
        return None
    check(request.prompt)  # every wildcard file is there before the first image
    check(request.negative_prompt)
    total = request.batch_size * request.count
    base = request.seed if request.seed >= 0 else random.randint(0, 2**32 - 1 - total)
    template = {"Template": request.prompt, "Negative Template": request.negative_prompt or None}
    results: list[GenerationResult] = []
    for i in range(total):
        seed = base + i
        one = request.merged(prompt=expand(request.prompt, seed), negative_prompt=expand(request.negative_prompt, seed, salt="negative"),
                             seed=seed, batch_size=1, count=1)

        def progress(event: Progress, _i: int = i) -> None:
            if on_progress is not None:
                on_progress(Progress(_i, total, event.step, event.steps, _i, total, event.preview))

        results.append(run(one, progress, cancel, preview_every, template))
    result = results[0]
    result.images = [replace(r.images[0], index=i) for i, r in enumerate(results)]
    result.seed = base
    result.extra["prompts"] = [r.prompt for r in results]
    for other in results[1:]:
        for key, value in other.timings.items():
            if key in ("translate", "load", "encode", "sample", "save", "total"):
                result.timings[key] = result.timings.get(key, 0.0) + value
    return result


def make_result(images: list[GeneratedImage], plan: Plan, translation: Translation, loaded: Any, opt: Any, seed: int,
                device: str, dtype: str, timings: dict[str, float], notes: list[str], **extra: Any) -> GenerationResult:
    """The GenerationResult of a finished run (one request; batch.py makes one per batched request)."""
    return GenerationResult(
        images=images,
        prompt=translation.prompt,
        negative_prompt=translation.negative_prompt,
        original_prompt=translation.original_prompt,
        original_negative_prompt=translation.original_negative_prompt,
        model=loaded.name,
        model_hash=loaded.hash,
        sampler=plan.sampler,
        steps=plan.steps,
        cfg=plan.cfg,
        width=plan.width,
        height=plan.height,
        clip_skip=plan.clip_skip,
        seed=seed,
        preset=plan.preset,
        translator=translation.translator,
        device=device,
        dtype=dtype,
        timings=timings,
        extra={
            "optimizations": opt.options.enabled,
            "memory": loaded.extras["memory_plan"].describe(),
            **({"optimization_notes": opt.notes} if opt.notes else {}),
            **({"notes": notes} if notes else {}),
            **extra,
        },
    )


def _peak_memory(device: str) -> dict[str, float]:
    """Peak RAM of this process (and VRAM on CUDA) in MiB since ``_reset_peaks`` (per generation)."""
    from gambarkan.engine.optimize import peak_memory

    return peak_memory(device)


def _reset_peaks(device_hint: str) -> None:
    from gambarkan.engine.optimize import reset_peaks

    reset_peaks(device_hint)


def _optimize(pipe: Any, request: GenerationRequest, loaded: Any, device: str, dtype: str, plan: Plan, settings: Settings) -> Any:
    """Bring the cached pipeline to the speed techniques this request asks for (engine.optimize)."""
    from gambarkan.engine import optimize

    return optimize.for_request(
        pipe, request.optimize, fast=request.fast, device=device, dtype=dtype, arch=loaded.arch, model_key=f"{loaded.source}|{device}|{dtype}",
        batch=request.batch_size, width=plan.width, height=plan.height, cfg=plan.cfg, cache_dir=settings.cache_dir,
        model_name=request.preset or request.model or plan.preset or "",
    )


def _preview(pipe: Any, opt: Any, latents: Any, arch: str, size: tuple[int, int] | None = None) -> Any:
    """A live preview: TAESD when it is loaded and on, else the cheap latent approximation."""
    from gambarkan.engine.optimize import preview_image

    image = preview_image(pipe, latents) if opt.options.taesd_preview and get_family(arch).supports("taesd") else None
    return image if image is not None else _latent_preview(latents, arch, getattr(pipe, "vae_scale_factor", 8), pipe, size)


def _since_process_start() -> dict[str, float]:
    """Seconds from process start to the end of the first generation (cold start), once per process."""
    global _first_done
    if _first_done:
        return {}
    _first_done = True
    try:
        import psutil

        return {"cold_start": time.time() - psutil.Process().create_time()}
    except Exception:  # noqa: BLE001 - a missing figure is fine
        return {}


_first_done = False


_default_engine: Engine | None = None
_default_lock = threading.Lock()


def default_engine() -> Engine:
    """The process-wide engine behind ``gambarkan.generate`` (created on first use)."""
    global _default_engine
    with _default_lock:
        if _default_engine is None:
            _default_engine = Engine()
        return _default_engine
