"""Shared CLI plumbing: one-line errors with exit code 2, JSON output, the stderr console."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

from gambarkan.errors import GambarkanError

F = TypeVar("F", bound=Callable[..., Any])


def err_console() -> Any:
    """A rich console on stderr (progress, notes), so stdout stays clean for --json.

    Soft wrap keeps each note on one line in logs and pipes, where rich would cut at 80 columns.
    """
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def one_line(text: str) -> str:
    """``text`` with control characters escaped, so a name holding a newline or NUL stays on one line."""
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


def cli_lang() -> str:
    """The CLI's language: ``GAMBARKAN_LANG=id|en``, else the locale (Indonesian locale -> id), else English."""
    from gambarkan.i18n import cli_language

    return cli_language()


#: Step lines shown while the terminal would otherwise sit silent for minutes.
STEPS = {
    "loading": {"id": "Memuat model…", "en": "Loading the model…"},
    "server": {"id": "Menyiapkan server…", "en": "Preparing the server…"},
}


def step_text(key: str) -> str:
    """A step line (``Memuat model…``) in the CLI's language."""
    return STEPS[key][cli_lang()]


@contextlib.contextmanager
def spinner(key: str, enabled: bool | None = None) -> Iterator[None]:
    """A spinner with a step line on a terminal while a long silent step runs; nothing in pipes and logs."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield
        return
    with err_console().status(step_text(key), spinner="dots"):
        yield


def fail(message: str, code: int = 2) -> None:
    """Print ``gambarkan: error: message`` on stderr (always one line) and exit with ``code``."""
    click.echo(f"gambarkan: error: {one_line(message)}", err=True)
    sys.exit(code)


def not_empty(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Click callback: a value given as an empty string is a mistake, not "use the default"."""
    for item in value if isinstance(value, tuple) else (value,):
        if isinstance(item, str) and not item.strip():
            hint = "leave the option out to use the default" if isinstance(param, click.Option) else "give a value"
            raise click.BadParameter(f"must not be empty ({hint})")
    return value


def finite(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Click callback: reject ``nan`` (FloatRange lets it through, every comparison with it is false)."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds")
    return value


class RunId(click.ParamType):
    """A history id: a positive whole number that fits SQLite's INTEGER."""

    name = "ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if not 1 <= number < 2**63:
            self.fail(f"'{value}' is not a history id (see the ids with: gambarkan history)", param, ctx)
        return number


def debug_on(ctx: click.Context | None) -> bool:
    """Whether ``gambarkan --debug`` was given."""
    root = ctx.find_root() if ctx else None
    return bool(root and isinstance(root.obj, dict) and root.obj.get("debug"))


def report(exc: BaseException) -> None:
    """Turn an exception into one line on stderr and an exit code (the rules of ``handle_errors``)."""
    if isinstance(exc, GambarkanError):
        from gambarkan.i18n import error_line

        click.echo(one_line(error_line(exc, cli_lang())), err=True)
        sys.exit(exc.exit_code)
    if isinstance(exc, BrokenPipeError):
        # The reader went away (`gambarkan history | head`): stop quietly, like other tools.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    if isinstance(exc, KeyboardInterrupt):
        fail("interrupted; images already saved are kept", 130)
    if isinstance(exc, MemoryError):
        fail("out of memory (RAM) (lower --width/--height or --batch-size, or close other programs)")
    if isinstance(exc, ValueError) and "null" in str(exc) and ("byte" in str(exc) or "character" in str(exc)):
        fail("a path or name contains a NUL character (remove it)")
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        fail(f"{exc.strerror or exc}{where} (check the path and free disk space; --debug shows details)")
    first = str(exc).splitlines()[0] if str(exc) else ""
    fail(f"unexpected {type(exc).__name__}: {first} (run again with `gambarkan --debug ...` and report it)", 1)


def handle_errors(func: F) -> F:
    """Turn GambarkanError (and a few common failures) into one line on stderr and exit 2.

    With ``gambarkan --debug`` the traceback is shown instead.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click prints these itself (one line, see gambarkan.cli.LazyGroup.main)
        except (KeyboardInterrupt, BrokenPipeError) as exc:  # never a traceback, even with --debug
            report(exc)
        except Exception as exc:  # last resort included: still one line, never a traceback
            if debug_on(click.get_current_context(silent=True)):
                raise
            report(exc)

    return wrapper  # type: ignore[return-value]


def print_json(data: Any) -> None:
    """Print one JSON object on stdout."""
    click.echo(json.dumps(data, ensure_ascii=False, default=str))


def quiet_libraries() -> None:
    """Silence diffusers/transformers progress bars and chatty warnings on our terminal."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    try:
        from diffusers.utils import logging as dlog

        dlog.set_verbosity_error()
        dlog.disable_progress_bar()
    except ImportError:
        pass
    try:
        from transformers.utils import logging as tlog

        tlog.set_verbosity_error()
        tlog.disable_progress_bar()
    except ImportError:
        pass
    logging.getLogger("torch").setLevel(logging.ERROR)
