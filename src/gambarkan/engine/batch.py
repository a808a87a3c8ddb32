"""Several queued requests in one pipeline call, when they share everything but prompt and seed.

The server's queue uses this on a GPU, where a bigger batch uses the card better. On a CPU it
is off by default: one image already keeps the cores busy (4 jobs at 256x256 gained only 1.12x
in ``benchmarks/batching.py``) and the first job would wait for the whole batch.
Each request keeps its own seeds (noise made by its own generators), its own PNG metadata and
its own history row, so its images are the ones it would get alone, within float rounding
(batched matmuls may round differently in the last bit: at most 2/255 in a pixel, the same
tolerance as images inside one request's batch).

Whatever cannot share a call (LoRAs or embeddings, prompt editing, different chunk counts)
runs alone, one request after the other, through the normal ``Engine`` path.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from gambarkan.errors import CancelledError
from gambarkan.request import GeneratedImage, GenerationRequest, GenerationResult

BATCH_MODES = ("auto", "on", "off")
# Fields that may differ between requests sharing one call; everything else must be equal.
PER_REQUEST_FIELDS = frozenset({"prompt", "negative_prompt", "seed", "batch_size", "translate", "translator"})


def batch_key(request: GenerationRequest) -> tuple | None:
    """Requests with equal keys may share one pipeline call; None: this one always runs alone."""
    text = f"{request.prompt}\n{request.negative_prompt}".lower()
    if request.count != 1 or "<lora:" in text or "<lyco:" in text or request.init_image is not None or request.hires is not None or request.controlnet or request.ip_adapter:
        return None
    from gambarkan.prompt.variations import has_variations

    if has_variations(text):  # each image has its own prompt: Engine.generate runs them one by one
        return None
    fields = request.model_dump(exclude=set(PER_REQUEST_FIELDS))
    return tuple(sorted((k, repr(v)) for k, v in fields.items()))


def batching_pays(mode: str, device: str) -> bool:
    """Whether to batch queued jobs: ``on``/``off`` as told; ``auto`` only on a GPU."""
    if mode not in BATCH_MODES:
        raise ValueError(f"batching must be one of {', '.join(BATCH_MODES)}")
    if mode != "auto":
        return mode == "on"
    if device == "auto":
        from gambarkan.engine.device import pick_device

        device = pick_device("auto")
    return device == "cuda"


def generate_batch(
    engine: Any,
    requests: Sequence[GenerationRequest],
    *,
    on_progress: Sequence[Callable[[Any], None] | None] | None = None,
    cancels: Sequence[threading.Event | None] | None = None,
    preview_every: int = 0,
    surfaces: Sequence[str | None] | None = None,
) -> list[GenerationResult | BaseException]:
    """Run ``requests`` (equal ``batch_key``) together; one result or exception per request.

    Every request gets its own history row (under its ``surfaces`` entry, else the engine's),
    as if it had been run alone.
    """
    from gambarkan.engine import generate as single

    n = len(requests)
    progress = list(on_progress or [None] * n)
    stops = list(cancels or [None] * n)
    where = [s or engine.surface for s in (surfaces or [None] * n)]
    with engine._lock:
        run_ids = [single._record_start(r, engine.settings, w) if engine.history else None for r, w in zip(requests, where)]
        try:
            outcomes = _run_together(engine, requests, run_ids, progress, stops, preview_every)
        except BaseException as exc:  # noqa: BLE001 - one failure of the shared call fails every request
            outcomes = [exc] * n
        for request, run_id, outcome, surface in zip(requests, run_ids, outcomes, where):
            if engine.history:
                error = outcome if isinstance(outcome, BaseException) else None
                result = None if error else outcome
                single._record(result, request, error, engine.settings, run_id, surface)
        for outcome in outcomes:
            if isinstance(outcome, (KeyboardInterrupt, SystemExit)):
                raise outcome
        return outcomes


def _one_by_one(engine: Any, requests: Sequence[GenerationRequest], run_ids: list, progress: list, stops: list,
                preview_every: int, done: dict[int, BaseException] | None = None) -> list[GenerationResult | BaseException]:
    """The normal single-request path for every request not in ``done``, each in its own history row."""
    outcomes: dict[int, GenerationResult | BaseException] = dict(done or {})
    for i, request in enumerate(requests):
        if i in outcomes:
            continue
        engine._run_id = run_ids[i]
        try:
            outcomes[i] = engine._generate(request, progress[i], stops[i], preview_every)
        except Exception as exc:  # noqa: BLE001 - handed back per request
            outcomes[i] = exc
    return [outcomes[i] for i in range(len(requests))]


def _run_together(engine: Any, requests: Sequence[GenerationRequest], run_ids: list, progress: list, stops: list,
                  preview_every: int) -> list[GenerationResult | BaseException]:
    import torch

    from gambarkan.engine import generate as single
    from gambarkan.engine.device import choose_memory_mode, pick_device, pick_dtype, run_with_oom_retry
    from gambarkan.engine.samplers import build_scheduler
    from gambarkan.outputs.png import format_parameters, save_png

    n = len(requests)
    everyone = range(n)
    alone = functools.partial(_one_by_one, engine, requests, run_ids, progress, stops, preview_every)
    if n == 1 or len({batch_key(r) for r in requests}) != 1 or batch_key(requests[0]) is None:
        return alone()

    settings = engine.settings
    started = time.perf_counter()
    first = requests[0]
    single._reset_peaks(device_hint=first.device)
    plans = [single._resolve(r, settings) for r in requests]
    translations = [single._prompts(request, plan, settings) for request, plan in zip(requests, plans)]
    timings: dict[str, float] = {"translate": time.perf_counter() - started}

    plan = plans[0]
    device = pick_device(first.device)
    dtype = pick_dtype(device, first.dtype)
    sizes = [r.batch_size for r in requests]
    total = sum(sizes)
    t = time.perf_counter()
    loaded, cached = engine.load(plan, device, dtype, first.offline or settings.offline)
    engine.place(loaded, choose_memory_mode(first.memory, device, loaded.arch, plan.width, plan.height, batch=total))
    timings["load"] = 0.0 if cached else time.perf_counter() - t
    pipe = loaded.pipe
    if not loaded.family.supports("batching"):
        return alone()  # e.g. FLUX: its prompt is text, not embeddings to concatenate

    t = time.perf_counter()
    conds = []
    for translation, p in zip(translations, plans):
        if single._networks(pipe, translation.prompt, translation.negative_prompt, settings):
            break  # embeddings named in a prompt: such requests run alone
        cond, step_hook = single._conditioning(pipe, translation.prompt, translation.negative_prompt, p.clip_skip, p.steps, p.cfg)
        if step_hook is not None:
            break  # prompt editing switches per request: alone
        conds.append(cond)
    shapes = {tuple((k, tuple(v.shape)) for k, v in sorted(c.items()) if v is not None) for c in conds}
    if len(conds) != n or len(shapes) != 1:
        return alone()
    cond_kwargs = {key: torch.cat([c[key].expand(size, *c[key].shape[1:]) for c, size in zip(conds, sizes)])
                   for key in conds[0] if conds[0][key] is not None}
    timings["encode"] = time.perf_counter() - t

    opt = single._optimize(pipe, first.model_copy(update={"batch_size": total}), loaded, device, dtype, plan, settings)
    seeds = [r.seed if r.seed >= 0 else random.randint(0, 2**32 - 1 - r.batch_size) for r in requests]
    image_seeds = [[seed + i for i in range(size)] for seed, size in zip(seeds, sizes)]
    generator_device = "cpu" if device == "mps" else device
    generators = [torch.Generator(generator_device).manual_seed(s) for group in image_seeds for s in group]
    starts = [sum(sizes[:i]) for i in everyone]
    steps_run = [0]

    def on_step_end(p: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        steps_run[0] = step + 1
        if any(stop is not None and stop.is_set() for stop in stops):
            p._interrupt = True
        for i, report in enumerate(progress):
            if report is None:
                continue
            preview = None
            if preview_every and (step + 1) % preview_every == 0 and "latents" in kwargs:
                latents = kwargs["latents"][starts[i] : starts[i] + sizes[i]]
                preview = single._preview(p, opt, latents, loaded.arch, (plan.width, plan.height))
            report(single.Progress(0, 1, step + 1, plan.steps, 0, sizes[i], preview))
        return kwargs

    def run(_memory: Any) -> Any:
        return pipe(
            **cond_kwargs,
            width=plan.width,
            height=plan.height,
            num_inference_steps=plan.steps,
            guidance_scale=plan.cfg,
            num_images_per_prompt=1,
            generator=generators,
            callback_on_step_end=on_step_end,
            callback_on_step_end_tensor_inputs=["latents"],
        )

    pipe.scheduler, notes = build_scheduler(plan.sampler, {**loaded.scheduler_config, **plan.scheduler_options})
    notes[:0] = list(opt.announce)
    t = time.perf_counter()
    scope = opt.scope(pipe, device)
    try:
        output = run_with_oom_retry(run, loaded.extras["memory_plan"], lambda mp: engine.place(loaded, mp), notes.append)
    finally:
        pipe._interrupt = False
        scope.close(timings)
    timings["sample"] = time.perf_counter() - t

    stopped = [i for i in everyone if stops[i] is not None and stops[i].is_set()]
    if stopped:
        # Only the cancelled requests stop; the others were interrupted with them and run again alone.
        return alone(done={i: CancelledError(f"generation cancelled after step {steps_run[0]} of {plan.steps} of image 1",
                                             f"0 of {sizes[i]} images were finished") for i in stopped})

    t = time.perf_counter()
    per_request: list[list[Any]] = [[] for _ in everyone]
    for i in everyone:
        request, p, translation = requests[i], plans[i], translations[i]
        if opt.metadata:
            p.extra["Optimizations"] = opt.metadata
        out_dir = single._output_dir(request, settings) if request.save else None
        for k, (image, seed) in enumerate(zip(output.images[starts[i] : starts[i] + sizes[i]], image_seeds[i])):
            fields = single.metadata_fields(p, loaded.name, loaded.hash, seed, translation, p.extra)
            parameters = format_parameters(translation.prompt, translation.negative_prompt, fields)
            path = save_png(image, out_dir, seed, parameters) if out_dir is not None else None
            if engine.history:
                single._record_image(settings, run_ids[i], path, seed)
            per_request[i].append(GeneratedImage(image, seed, k, path, parameters))
    timings["save"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started
    timings.update(single._peak_memory(device))

    return [
        single.make_result(per_request[i], plans[i], translations[i], loaded, opt, seeds[i], device, dtype, dict(timings),
                           list(translations[i].notes) + notes, batched_with=n - 1)
        for i in everyone
    ]
