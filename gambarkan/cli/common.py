"""Shared CLI plumbing: one-line errors with exit code 2, JSON output, the stderr console."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
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


def fail(message: str, code: int = 2) -> None:
    """Print ``gambarkan: error: message`` on stderr and exit with ``code``."""
    click.echo(f"gambarkan: error: {message}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn GambarkanError (and a few common failures) into one line on stderr and exit 2.

    With ``gambarkan --debug`` the traceback is shown instead.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context(silent=True)
        debug = bool(ctx and ctx.find_root().obj and ctx.find_root().obj.get("debug"))
        try:
            return func(*args, **kwargs)
        except GambarkanError as exc:
            if debug:
                raise
            fail(str(exc), exc.exit_code)
        except BrokenPipeError:
            # The reader went away (`gambarkan history | head`): stop quietly, like other tools.
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except KeyboardInterrupt:
            fail("interrupted; images already saved are kept", 130)
        except MemoryError:
            if debug:
                raise
            fail("out of memory (RAM) (lower --width/--height or --batch-size, or close other programs)")
        except OSError as exc:
            if debug:
                raise
            fail(f"{exc.strerror or exc}{': ' + str(exc.filename) if getattr(exc, 'filename', None) else ''} (check the path and free disk space; --debug shows details)")
        except Exception as exc:  # last resort: still one line, never a traceback
            if debug:
                raise
            fail(f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} (run again with `gambarkan --debug ...` and report it)", 1)

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
