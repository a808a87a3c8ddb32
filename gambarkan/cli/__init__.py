"""The ``gambarkan`` command: a click group whose subcommands load lazily.

Each feature keeps its commands in ``gambarkan/cli/<feature>.py`` and registers them in
``LAZY_COMMANDS`` so ``gambarkan --help`` never imports torch or diffusers.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from gambarkan import __version__

# name -> "module:attribute", loaded only when the command runs (or --help lists it).
LAZY_COMMANDS: dict[str, str] = {
    "generate": "gambarkan.cli.generate:generate",
    "info": "gambarkan.cli.info:info",
    "samplers": "gambarkan.cli.info:samplers",
    "doctor": "gambarkan.cli.doctor:doctor",
    "bench": "gambarkan.cli.bench:bench",
    "models": "gambarkan.cli.models:models",
    "serve": "gambarkan.cli.serve:serve",
    "ui": "gambarkan.cli.ui:ui",
    "translate": "gambarkan.cli.translate:translate",
    "history": "gambarkan.cli.history:history",
    "again": "gambarkan.cli.history:again",
    "loras": "gambarkan.cli.loras:loras",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            module_name, attr = LAZY_COMMANDS[name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="gambarkan")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """gambarkan: turn a prompt (Bahasa Indonesia or English) into images with Stable Diffusion.

    \b
    Examples:
      gambarkan generate "kucing oranye tidur di atas sofa, cinematic lighting"
      gambarkan generate "pemandangan pantai saat senja" --steps 30 --seed 42
      gambarkan info 00001-42.png
      gambarkan doctor
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def run(*args: Any, **kwargs: Any) -> Any:
    """Entry point alias used by ``python -m gambarkan``."""
    return main(*args, **kwargs)
