"""``gambarkan generate``: make images from a prompt."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

import click

from gambarkan.cli.common import err_console, handle_errors, not_empty, print_json, quiet_libraries

DEVICE_CHOICES = ["auto", "cpu", "cuda", "mps"]
DTYPE_CHOICES = ["auto", "fp32", "fp16", "bf16"]


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


def run_request(request: Any, as_json: bool, quiet: bool, verbose: bool = False) -> None:
    """Generate ``request`` with a progress bar and print the result (paths or JSON)."""
    from gambarkan.engine.generate import default_engine
    from gambarkan.prompt.syntax import PromptWarning

    quiet_libraries()
    console = err_console()
    show_progress = not quiet and not as_json and sys.stderr.isatty()
    with warnings.catch_warnings(record=True) as caught:
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
        return
    for image in result.images:
        click.echo(str(image.path) if image.path else f"(not saved) seed {image.seed}")
    if not quiet:
        console.print(
            f"{len(result.images)} image(s), seed {result.seed}, {result.sampler}, {result.steps} steps, "
            f"{result.width}x{result.height}, {result.timings.get('total', 0):.1f}s",
            markup=False,
        )


def print_verbose(result: Any) -> None:
    """Speed techniques in use, their notes, and the timings/memory of the run (stderr)."""
    console = err_console()
    techniques = result.extra.get("optimizations", [])
    console.print(f"optimisations: {', '.join(techniques) or 'none'} ({result.device}, {result.dtype})", markup=False)
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
@click.option("--lora-dir", "lora_dirs", multiple=True, type=click.Path(file_okay=False), callback=not_empty, help="Extra folder to look for LoRAs and embeddings in (repeatable).")
@click.option("--no-save", is_flag=True, help="Do not write PNG files (useful with --json in scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with paths, seeds, settings and timings.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or notes.")
@click.option("--verbose", "-v", is_flag=True, help="Also print speed techniques, stage timings and peak memory.")
@handle_errors
def generate(prompt: str | None, from_image: str | None, lora_dirs: tuple[str, ...], no_save: bool, as_json: bool, quiet: bool, verbose: bool = False, **options: Any) -> None:
    """Make images from PROMPT (Bahasa Indonesia, English, or a mix).

    \b
    Examples:
      gambarkan generate "kucing oranye tidur di atas sofa, cinematic lighting, 8k"
      gambarkan generate "potret petani di sawah" --steps 30 --cfg 6 --seed 42 -b 2
      gambarkan generate --from 00001-42.png --seed 43
    """
    from gambarkan.errors import InvalidRequestError

    fields: dict[str, Any] = {}
    if from_image:
        from gambarkan.outputs.reuse import fields_from_png

        fields.update(fields_from_png(from_image))
    if prompt is not None:
        fields["prompt"] = prompt
    if "prompt" not in fields or not str(fields["prompt"]).strip():
        raise InvalidRequestError("no prompt given", 'write one, e.g. gambarkan generate "kucing lucu di taman"')
    fields.update(options_to_fields(options))
    if no_save:
        fields["save"] = False
    if lora_dirs:  # read by Settings.from_env() when the engine starts, just below
        for name in ("GAMBARKAN_LORA_DIRS", "GAMBARKAN_EMBEDDING_DIRS"):
            os.environ[name] = os.pathsep.join([*lora_dirs, *filter(None, [os.environ.get(name)])])
    run_request(build_request(fields, from_image, options), as_json, quiet, verbose)


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
