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
from gambarkan.request import GeneratedImage, GenerationRequest, GenerationResult


@dataclass
class Plan:
    """A request with every value decided: what will actually run."""

    model: str
    sampler: str
    steps: int
    cfg: float
    width: int
    height: int
    clip_skip: int
    negative_prompt: str
    preset: str | None = None
    style: str = ""
    config: str | None = None  # local config folder for single-file checkpoints
    vae: str | None = None  # replacement VAE folder (e.g. SDXL fp16-fix)
    name: str | None = None  # what PNG metadata calls the model (package source), else derived
    extra: dict[str, Any] = field(default_factory=dict)


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


def _conditioning(pipe: Any, prompt: str, negative: str, clip_skip: int, steps: int, cfg: float = 7.0) -> tuple[dict[str, Any], Callable | None]:
    """Pipeline kwargs for the text conditioning and an optional per-step hook (prompt issue).

    A1111 semantics: weights, BREAK, prompts past 77 tokens in 75-token chunks, clip skip,
    prompt editing switched per step through ``callback_on_step_end``.
    """
    from gambarkan.prompt.encode import build_conditioning

    cond = build_conditioning(pipe, prompt, negative, clip_skip, steps, guidance=cfg > 1)  # diffusers skips CFG at <= 1
    return cond.pipeline_kwargs, cond.on_step


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


def _latent_preview(latents: Any, arch: str, scale: int = 8) -> Any:
    """A cheap RGB approximation of SD latents (A1111's "Approx cheap"), no VAE call."""
    import torch
    from PIL import Image

    if arch == "sdxl":
        factors = [[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068], [0.1076, 0.1111, -0.0362], [-0.3165, -0.2492, -0.2188]]
        bias = [0.1084, -0.0175, -0.0011]
    else:
        factors = [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]]
        bias = [0.0, 0.0, 0.0]
    with torch.no_grad():
        lat = latents[0].float().cpu()
        rgb = torch.einsum("chw,cr->hwr", lat, torch.tensor(factors)) + torch.tensor(bias)
        rgb = ((rgb + 1) / 2).clamp(0, 1).mul(255).byte().numpy()
    return Image.fromarray(rgb).resize((lat.shape[2] * scale, lat.shape[1] * scale), Image.NEAREST)


def _sampler_label(name: str) -> str:
    return name


def metadata_fields(plan: Plan, loaded_name: str, model_hash: str | None, seed: int, translation: Translation, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The A1111 key/value part of the PNG ``parameters`` chunk, in A1111's order."""
    fields: dict[str, Any] = {
        "Steps": plan.steps,
        "Sampler": _sampler_label(plan.sampler),
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

    def register(self, model: str, pipe: Any, arch: str = "sd15", device: str = "cpu", dtype: str = "fp32") -> None:
        """Put an already built pipeline in the cache under the name ``model`` (bench, doctor, tests)."""
        from gambarkan.engine.pipelines import LoadedModel

        pipe.set_progress_bar_config(disable=True)
        loaded = LoadedModel(pipe, arch, model, model, None)
        self.cache.get((model, device, dtype, None), lambda: loaded)

    def load(self, plan: Plan, device: str, dtype: str, offline: bool) -> tuple[Any, bool]:
        """The loaded model for ``plan`` (from the cache when possible), not yet placed."""
        from gambarkan.engine.pipelines import load_model

        key = (plan.model, device, dtype, plan.config) + ((plan.vae,) if plan.vae else ())
        load_device = None if device == "cuda" else device  # CUDA placement depends on the memory mode
        return self.cache.get(
            key,
            lambda: load_model(plan.model, load_device, dtype, offline=offline, cache_dir=self.settings.cache_dir, config=plan.config, vae=plan.vae, name=plan.name),
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
                result = self._generate(request, on_progress, cancel, preview_every)
            except BaseException as exc:
                if self.history:
                    _record(None, request, exc, self.settings, run_id, surface)
                raise
            if self.history:
                _record(result, request, None, self.settings, run_id, surface)
            return result

    def _generate(self, request: GenerationRequest, on_progress: ProgressCallback | None, cancel: threading.Event | None, preview_every: int) -> GenerationResult:
        import torch

        from gambarkan.engine.device import choose_memory_mode, pick_device, pick_dtype, run_with_oom_retry
        from gambarkan.engine.samplers import make_scheduler
        from gambarkan.outputs.history import pause_point
        from gambarkan.outputs.png import format_parameters, save_png

        timings: dict[str, float] = {}
        started = time.perf_counter()
        _reset_peaks(device_hint=request.device)
        plan = _resolve(request, self.settings)

        t = time.perf_counter()
        translation = _prompts(request, plan, self.settings)
        timings["translate"] = time.perf_counter() - t

        device = pick_device(request.device)
        dtype = pick_dtype(device, request.dtype)
        t = time.perf_counter()
        loaded, cached = self.load(plan, device, dtype, request.offline or self.settings.offline)
        memory_plan = choose_memory_mode(request.memory, device, loaded.arch, plan.width, plan.height, batch=request.batch_size)
        self.place(loaded, memory_plan)
        timings["load"] = 0.0 if cached else time.perf_counter() - t
        pipe = loaded.pipe
        notes = list(translation.notes)

        plan.extra.update(_networks(pipe, translation.prompt, translation.negative_prompt, self.settings))
        opt = _optimize(pipe, request, loaded, device, dtype, plan, self.settings)  # after LoRAs: fused QKV must see them
        if opt.metadata:
            plan.extra["Optimizations"] = opt.metadata  # only techniques that change the output
        notes.extend(opt.announce)  # e.g. what --fast does on this CPU, and why
        seed = request.seed if request.seed >= 0 else random.randint(0, 2**32 - 1 - request.batch_size * request.count)
        out_dir = _output_dir(request, self.settings) if request.save else None
        images: list[GeneratedImage] = []
        total = request.batch_size * request.count
        timings["sample"] = 0.0
        timings["save"] = 0.0
        for batch_index in range(request.count):
            pipe.scheduler = make_scheduler(plan.sampler, loaded.scheduler_config)
            t = time.perf_counter()
            cond_kwargs, step_hook = _conditioning(pipe, translation.prompt, translation.negative_prompt, plan.clip_skip, plan.steps, plan.cfg)
            timings["encode"] = timings.get("encode", 0.0) + time.perf_counter() - t
            batch_seeds = [seed + batch_index * request.batch_size + i for i in range(request.batch_size)]
            generator_device = "cpu" if device == "mps" else device
            generators = [torch.Generator(generator_device).manual_seed(s) for s in batch_seeds]

            steps_run = [0]  # denoising steps actually run in this batch (named when it is cancelled)

            def on_step_end(p: Any, step: int, timestep: Any, kwargs: dict[str, Any], _b: int = batch_index) -> dict[str, Any]:
                pause_point("sample")  # test-only SIGKILL point; a no-op unless GAMBARKAN_TEST_PAUSE_AT is set
                steps_run[0] = step + 1
                if step_hook is not None:
                    kwargs = step_hook(p, step, timestep, kwargs) or kwargs
                if cancel is not None and cancel.is_set():
                    p._interrupt = True
                if on_progress is not None:
                    preview = None
                    if preview_every and (step + 1) % preview_every == 0 and "latents" in kwargs:
                        preview = _preview(p, opt, kwargs["latents"], loaded.arch)
                    on_progress(Progress(_b, request.count, step + 1, plan.steps, len(images), total, preview))
                return kwargs

            t = time.perf_counter()
            scope = opt.scope(pipe, device)  # bf16 autocast when on; stage timings and peak memory

            def run_batch(_memory: Any, _cond: dict[str, Any] = cond_kwargs, _gens: list[Any] = generators, _cb: Callable = on_step_end) -> Any:
                return pipe(
                    **_cond,
                    width=plan.width,
                    height=plan.height,
                    num_inference_steps=plan.steps,
                    guidance_scale=plan.cfg,
                    num_images_per_prompt=request.batch_size,
                    generator=_gens,
                    callback_on_step_end=_cb,
                    callback_on_step_end_tensor_inputs=["latents"],
                )

            try:
                # Out of memory: free it, step down one memory mode and retry once (then a clear error).
                output = run_with_oom_retry(run_batch, loaded.extras["memory_plan"], lambda mp: self.place(loaded, mp), notes.append)
            finally:
                pipe._interrupt = False
                scope.close(timings)
            timings["sample"] += time.perf_counter() - t
            if cancel is not None and cancel.is_set():
                # The unfinished image is never saved (a partial image must not pass for a finished one).
                raise CancelledError(
                    f"generation cancelled after step {steps_run[0]} of {plan.steps} of image {len(images) + 1}",
                    f"{len(images)} of {total} images were finished",
                )

            t = time.perf_counter()
            for i, (image, image_seed) in enumerate(zip(output.images, batch_seeds)):
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


def _preview(pipe: Any, opt: Any, latents: Any, arch: str) -> Any:
    """A live preview: TAESD when it is loaded and on, else the cheap latent approximation."""
    from gambarkan.engine.optimize import preview_image

    image = preview_image(pipe, latents) if opt.options.taesd_preview else None
    return image if image is not None else _latent_preview(latents, arch, getattr(pipe, "vae_scale_factor", 8))


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
