"""The ``gambarkan`` command: a click group whose subcommands load lazily.

Each feature keeps its commands in ``gambarkan/cli/<feature>.py`` and registers them in
``LAZY_COMMANDS`` so ``gambarkan --help`` never imports torch or diffusers.
"""

from __future__ import annotations

import importlib
import sys
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
    "upscale": "gambarkan.cli.upscale:upscale",
    "control-map": "gambarkan.cli.control:control_map",
    "preprocessors": "gambarkan.cli.control:preprocessors",
    "batch": "gambarkan.cli.batch:batch",
    "grid": "gambarkan.cli.grid:grid",
}

_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            module_name, attr = LAZY_COMMANDS[name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; a failure while click reads its arguments (a NUL in a path) is one line too."""
        from gambarkan.cli.common import debug_on, report

        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if debug_on(ctx):
                raise
            report(exc)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Click's main, but a usage mistake (bad option value, unknown command) is one line on stderr, exit 2."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except _NO_ARGS_IS_HELP as exc:  # `gambarkan models` alone shows its help (click >= 8.2)
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            from gambarkan.cli.common import fail

            where = " ".join(["gambarkan", *(exc.ctx.command_path.split()[1:] if exc.ctx else [])])
            fail(f"{exc.format_message().rstrip('.')} (see: {where} --help)", exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


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
    check_folders()


def check_folders() -> None:
    """A GAMBARKAN_HOME or GAMBARKAN_OUTPUT_DIR that names a file fails here, once, in one line."""
    from gambarkan.cli.common import fail
    from gambarkan.config import Settings

    settings = Settings.from_env()
    for variable, path in (("GAMBARKAN_HOME", settings.home), ("GAMBARKAN_OUTPUT_DIR", settings.output_dir)):
        if path.exists() and not path.is_dir():
            fail(f"{variable} points at a file, not a folder: {path} (point it at a folder, or unset it)")


def run(*args: Any, **kwargs: Any) -> Any:
    """Entry point alias used by ``python -m gambarkan``."""
    return main(*args, **kwargs)
