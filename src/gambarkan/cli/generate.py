"""``gambarkan generate``: make images from a prompt."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import click

from gambarkan.cli.common import err_console, handle_errors, not_empty, print_json, quiet_libraries
from gambarkan.cli.control import control_fields, control_options, save_control_maps
from gambarkan.cli.ip_adapter import ip_adapter_fields, ip_adapter_options

DEVICE_CHOICES = ["auto", "cpu", "cuda", "mps"]
DTYPE_CHOICES = ["auto", "fp32", "fp16", "bf16"]


IMAGE_OPTIONS = [
    click.option("--image", "-i", "init_image", default=None, callback=not_empty, help="Start from this image (img2img); with --mask, repaint part of it."),
    click.option("--strength", type=float, default=None, help="How much of --image to change, 0-1 (A1111 denoising strength; default 0.75)."),
    click.option("--mask", default=None, callback=not_empty, help="Mask image for inpainting: white = repaint, black = keep."),
    click.option("--mask-from-alpha", is_flag=True, default=None, help="Repaint the transparent area of --image."),
    click.option("--mask-blur", type=int, default=None, help="Soften the mask edge by this many pixels (default 4)."),
    click.option("--mask-invert", is_flag=True, default=None, help="Repaint the black part of the mask instead."),
    click.option("--mask-resize", is_flag=True, default=None, help="Resize a mask of another size to the image's."),
    click.option("--inpaint-area", type=click.Choice(["whole", "only-masked"]), default=None, help="only-masked: repaint a crop around the mask at full resolution."),
    click.option("--inpaint-padding", type=int, default=None, help="Pixels around the mask in the only-masked crop (default 32)."),
    click.option("--fill", "inpainting_fill", type=click.Choice(["fill", "original", "latent-noise", "latent-nothing"]), default=None, help="What the masked area starts from (A1111 masked content)."),
    click.option("--resize-mode", type=click.Choice(["just-resize", "crop-and-resize", "resize-and-fill"]), default=None, help="How --image is fitted to --width/--height."),
    click.option("--outpaint", default=None, callback=not_empty, help="Extend the canvas: pixels per side, e.g. left=256,right=256 (or all=64)."),
    click.option("--hires", "hires_scale", type=float, default=None, help="Hires fix: make the image this many times bigger (1-4) with a second pass."),
    click.option("--hires-steps", type=int, default=None, help="Steps of the hires second pass (default: as --steps)."),
    click.option("--hires-strength", type=float, default=None, help="Denoising strength of the hires second pass (default 0.5)."),
    click.option("--upscaler", default=None, callback=not_empty, help="Hires fix upscaler: latent, lanczos or an upscaler model (see: gambarkan upscale --list)."),
]
_HIRES_OPTIONS = {"hires_scale": "scale", "hires_steps": "steps", "hires_strength": "strength", "upscaler": "upscaler"}


def request_options(func: Any) -> Any:
    """The generation options shared by ``generate`` and ``again``."""
    options = [
        click.option("--negative", "-n", "negative_prompt", default=None, help="Negative prompt: what to keep out of the image."),
        click.option("--model", "-m", default=None, callback=not_empty, help="Hugging Face repo id, local diffusers folder, or .safetensors file."),
        click.option("--preset", "-p", default=None, callback=not_empty, help="Model package (see: gambarkan models list)."),
        click.option("--steps", "-s", type=int, default=None, help="Denoising steps (1-150)."),
        click.option("--cfg", "-c", type=float, default=None, help="Guidance scale: how closely to follow the prompt (0-30)."),
        click.option("--width", "-W", type=int, default=None, help="Image width in pixels (multiple of 8)."),
        click.option("--height", "-H", type=int, default=None, help="Image height in pixels (multiple of 8)."),
        click.option("--sampler", "-S", default=None, callback=not_empty, help='A1111 sampler name, e.g. "Euler a" (see: gambarkan samplers).'),
        click.option("--scheduler", default=None, callback=not_empty, help='A1111 schedule type for the sampler, e.g. "Karras", "Exponential", "SGM Uniform".'),
        click.option("--seed", type=int, default=None, help="Seed; -1 for random. Image i of a batch uses seed+i."),
        click.option("--batch-size", "-b", type=int, default=None, help="Images made together in one batch."),
        click.option("--count", "-N", type=int, default=None, help="Number of batches."),
        click.option("--clip-skip", type=int, default=None, help="A1111 clip skip (1 = last layer, 2 = penultimate)."),
        click.option("--out", "-o", "out_dir", default=None, callback=not_empty, help="Output folder (default: a folder per day)."),
        click.option("--device", type=click.Choice(DEVICE_CHOICES), default=None, help="Where to run."),
        click.option("--dtype", type=click.Choice(DTYPE_CHOICES), default=None, help="Number format for the model."),
        click.option("--memory", type=click.Choice(["auto", "high", "low", "minimal"]), default=None, help="Memory mode: low/minimal offload to RAM."),
        click.option("--translator", "-t", default=None, callback=not_empty, help="Translation backend: auto, glossary, marian, nllb, google, none."),
        click.option("--no-translate", is_flag=True, default=False, help="Use the prompt exactly as written."),
        click.option("--no-style", is_flag=True, default=False, help="Leave out the package's style words."),
        click.option("--offline", is_flag=True, default=False, help="Never touch the network; use only downloaded models."),
        click.option("--fast", is_flag=True, default=False, help="Lossy speed-ups: TAESD decoding, bf16 on CPU, DeepCache (marked in the PNG)."),
        click.option("--compile", "compile_", is_flag=True, default=False, help="torch.compile the U-Net (slow first run per size, cached on disk)."),
        click.option("--optimize", default=None, callback=not_empty, help='Speed techniques, e.g. "channels_last,-fused_qkv" or "none" (see benchmarks/RESULTS.md).'),
        *IMAGE_OPTIONS,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def options_to_fields(options: dict[str, Any]) -> dict[str, Any]:
    """Click option values -> GenerationRequest fields (unset options left out)."""
    fields = {k: v for k, v in options.items() if v is not None and k not in ("no_translate", "no_style", "offline", "fast", "compile_")}
    if options.get("no_style"):
        fields["style"] = False
    if options.get("fast"):
        fields["fast"] = True
    if options.get("compile_"):
        fields["optimize"] = ",".join(filter(None, [fields.get("optimize"), "compile"]))
    if options.get("no_translate"):
        fields["translate"] = False
    if options.get("offline"):
        fields["offline"] = True
    hires = {name: fields.pop(option) for option, name in _HIRES_OPTIONS.items() if option in fields}
    if hires:
        if "scale" not in hires:
            from gambarkan.errors import InvalidRequestError

            shown = ", ".join("--" + o.replace("_", "-") for o in _HIRES_OPTIONS if o in options and options[o] is not None)
            raise InvalidRequestError(f"{shown} needs --hires SCALE", "e.g. --hires 2 --hires-steps 10")
        fields["hires"] = hires
    return fields


class StepProgress:
    """A rich progress bar: one task per image batch, advanced per denoising step."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None
        self._loading: Any = None
        self._batch = -1

    def __enter__(self) -> StepProgress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            from gambarkan.cli.common import step_text

            self._progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=err_console(), transient=False,
            )
            self._progress.__enter__()
            # Loading a model can take minutes on a slow disk: say so until the first step arrives.
            self._loading = self._progress.add_task(step_text("loading"), total=None)
        return self

    def __call__(self, event: Any) -> None:
        if not self._progress:
            return
        if self._loading is not None:
            self._progress.remove_task(self._loading)
            self._loading = None
        if event.batch_index != self._batch:
            self._batch = event.batch_index
            label = f"batch {event.batch_index + 1}/{event.batch_count}" if event.batch_count > 1 else "generating"
            self._task = self._progress.add_task(label, total=event.steps)
        self._progress.update(self._task, completed=event.step)

    def __exit__(self, *exc: Any) -> None:
        if self._progress:
            self._progress.__exit__(*exc)


def run_request(request: Any, as_json: bool, quiet: bool, verbose: bool = False) -> Any:
    """Generate ``request`` with a progress bar and print the result (paths or JSON)."""
    from gambarkan.engine.generate import default_engine
    from gambarkan.prompt.syntax import PromptWarning

    quiet_libraries()
    console = err_console()
    show_progress = not quiet and not as_json and sys.stderr.isatty()
    with warnings.catch_warnings(record=True) as caught, show_notices(console):
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", PromptWarning)
        engine = default_engine()
        engine.surface = "cli"
        with StepProgress(show_progress) as progress:
            result = engine.generate(request, on_progress=progress)
    for warning in caught:
        if issubclass(warning.category, PromptWarning) and not quiet:
            console.print(f"gambarkan: warning: {warning.message}", markup=False)
    if verbose:
        print_verbose(result)
    if result.translator and result.prompt != result.original_prompt and not quiet:
        console.print(f"Terjemahan ({result.translator}): {result.prompt}", markup=False)
    for note in result.extra.get("notes", []) if not quiet else []:
        console.print(f"gambarkan: note: {note}", markup=False)
    if as_json:
        print_json(result.to_dict())
        return result
    for image in result.images:
        click.echo(str(image.path) if image.path else f"(not saved) seed {image.seed}")
    if not quiet:
        console.print(
            f"{len(result.images)} image(s), seed {result.seed}, {result.sampler}, {result.steps} steps, "
            f"{result.width}x{result.height}, {result.timings.get('total', 0):.1f}s",
            markup=False,
        )
    return result


@contextlib.contextmanager
def show_notices(console: Any) -> Iterator[None]:
    """Print the engine's notices while they happen (e.g. a first OpenVINO conversion: minutes).

    They come on the ``gambarkan.notice`` logger; --quiet does not hide them (a long wait
    should never be silent), --json keeps them on stderr.
    """
    import logging

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            console.print(f"gambarkan: note: {record.getMessage()}", markup=False)

    logger = logging.getLogger("gambarkan.notice")
    handler = Handler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def print_verbose(result: Any) -> None:
    """Speed techniques in use, their notes, and the timings/memory of the run (stderr)."""
    console = err_console()
    techniques = result.extra.get("optimizations", [])
    console.print(f"optimisations: {', '.join(techniques) or 'none'} ({result.device}, {result.dtype})", markup=False)
    if result.device == "cpu":
        from gambarkan.cpufeatures import detect, torch_threads

        console.print(f"cpu: {detect().describe(torch_threads())}", markup=False)
    for note in result.extra.get("optimization_notes", []):
        console.print(f"  {note}", markup=False)
    shown = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items() if not k.endswith("_mb"))
    memory = ", ".join(f"{k.removesuffix('_mb').replace('_', ' ')} {v:.0f} MB" for k, v in result.timings.items() if k.endswith("_mb"))
    console.print(f"timings: {shown}", markup=False)
    if result.extra.get("memory"):
        console.print(result.extra["memory"], markup=False)  # the memory mode and why it was chosen
    if memory:
        console.print(f"memory: {memory}", markup=False)


@click.command()
@click.argument("prompt", required=False)
@request_options
@click.option("--from", "from_image", type=click.Path(dir_okay=False), default=None, callback=not_empty, help="Re-run the settings stored in a PNG (ours or A1111's).")
@click.option("--lora-dir", "lora_dirs", multiple=True, type=click.Path(file_okay=False), callback=not_empty, help="Extra folder to look for LoRAs in (repeatable).")
@click.option("--embedding-dir", "embedding_dirs", multiple=True, type=click.Path(file_okay=False), callback=not_empty, help="Extra folder to look for textual-inversion embeddings in (repeatable).")
@click.option("--strict", is_flag=True, help="With --from: stop when a LoRA the image used is not installed (default: warn and go on without it).")
@click.option("--no-save", is_flag=True, help="Do not write PNG files (useful with --json in scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with paths, seeds, settings and timings.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or notes.")
@click.option("--verbose", "-v", is_flag=True, help="Also print speed techniques, stage timings and peak memory.")
@control_options
@ip_adapter_options
@handle_errors
def generate(prompt: str | None, from_image: str | None, lora_dirs: tuple[str, ...], embedding_dirs: tuple[str, ...], strict: bool,
             no_save: bool, as_json: bool, quiet: bool, verbose: bool = False, **options: Any) -> None:
    """Make images from PROMPT (Bahasa Indonesia, English, or a mix).

    \b
    Examples:
      gambarkan generate "kucing oranye tidur di atas sofa, cinematic lighting, 8k"
      gambarkan generate "potret petani di sawah" --steps 30 --cfg 6 --seed 42 -b 2
      gambarkan generate --from 00001-42.png --seed 43
      gambarkan generate "lukisan cat minyak" --image foto.png --strength 0.5
      gambarkan generate "kucing" --image foto.png --mask topeng.png
      gambarkan generate "pantai" --image foto.png --outpaint left=128,right=128
      gambarkan generate "kota malam" --hires 2 --hires-steps 10
      gambarkan generate "kucing" --ip-adapter contoh.png:0.6 --ip-adapter-model ip-adapter-sd15
    """
    from gambarkan.errors import InvalidRequestError

    fields: dict[str, Any] = {}
    notes: list[str] = []
    # --lora-dir is for LoRAs only: a LoRA file must never be taken for an embedding (issue 19).
    for name, dirs in (("GAMBARKAN_LORA_DIRS", lora_dirs), ("GAMBARKAN_EMBEDDING_DIRS", embedding_dirs)):
        if dirs:  # read by Settings.from_env() when the engine starts, below
            os.environ[name] = os.pathsep.join([*dirs, *filter(None, [os.environ.get(name)])])
    params: dict[str, Any] = {}
    if from_image:
        from gambarkan.outputs.png import read_parameters
        from gambarkan.outputs.reuse import fields_from_parameters, reuse_notes

        params = read_parameters(from_image)
        fields.update(fields_from_parameters(params))
        notes += reuse_notes(params, fields)
        if prompt is None and not strict and fields.get("prompt"):
            from gambarkan.config import Settings
            from gambarkan.models.loras import search_dirs, without_missing_loras

            fields["prompt"], missing = without_missing_loras(str(fields["prompt"]), search_dirs(Settings.from_env(), "lora"))
            notes += [f"{n} (--strict stops instead)" for n in missing]
    if prompt is not None:
        fields["prompt"] = prompt
    if "prompt" not in fields or not str(fields["prompt"]).strip():
        raise InvalidRequestError("no prompt given", 'write one, e.g. gambarkan generate "kucing lucu di taman"')
    save_maps = options.get("save_control_map")
    fields.update(control_fields(options))  # --control units (pops their options)
    fields.update(ip_adapter_fields(options))  # --ip-adapter reference image
    fields.update(options_to_fields(options))
    if no_save:
        fields["save"] = False
    if from_image:
        notes += reuse_model(fields, params, from_image, options)
    request = build_request(fields, from_image, options)
    if notes and not quiet:
        console = err_console()
        for note in notes:
            console.print(f"gambarkan: note: {note}", markup=False, highlight=False)
    result = run_request(request, as_json, quiet, verbose)
    if save_maps:
        for path in save_control_maps(request, result.width, result.height, save_maps):
            err_console().print(f"control map: {path}", markup=False)


def reuse_model(fields: dict[str, Any], params: dict[str, Any], from_image: str, options: dict[str, Any]) -> list[str]:
    """Put the model a ``--from`` image was made with into ``fields`` (unless -m/-p chose one); notes on VAE/LoRAs."""
    from gambarkan.config import Settings
    from gambarkan.models.recorded import find_model, reuse_notes
    from gambarkan.outputs.reuse import recorded_model, recorded_networks

    settings = Settings.from_env()
    recorded = recorded_model(params)
    if recorded is not None and not options.get("model") and not options.get("preset"):
        fields.update(find_model(recorded, settings, from_image))
    return reuse_notes(recorded, recorded_networks(params), settings)


def build_request(fields: dict[str, Any], from_image: str | None, options: dict[str, Any]) -> Any:
    """The GenerationRequest; a bad value read from a ``--from`` PNG names that PNG (its text is damaged)."""
    from gambarkan.errors import InvalidRequestError
    from gambarkan.request import GenerationRequest

    try:
        return GenerationRequest(**fields)
    except InvalidRequestError as exc:
        if not from_image:
            raise
        try:  # the same request without the PNG's values: if it is fine, the PNG is to blame
            GenerationRequest(prompt="x", **options_to_fields(options))
        except InvalidRequestError:
            raise exc from None
        fix = "its parameters text is damaged; give that setting as an option, e.g. --seed 42 or --steps 20"
        raise InvalidRequestError(f"{from_image}: {exc.message}", f"{exc.hint}; {fix}" if exc.hint else fix) from None
