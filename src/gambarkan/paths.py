"""``safe_join``: the one way a name that came from a user becomes a path under a root we chose.

Used for LoRA/embedding names, image names on the server and any other user-given file name.
It refuses, before touching the disk, every string that could leave the root: absolute
paths, ``..`` in any spelling (``%2e%2e``, ``%252e``, fullwidth ``．．``, overlong UTF-8),
NUL and control characters, Windows drive letters, UNC and backslash paths. Then it resolves
symlinks (realpath) and checks with ``commonpath`` that the result is still inside the root.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes

from gambarkan.errors import InvalidRequestError

_DRIVE = re.compile(r"^[A-Za-z]:")
_MAX_NAME = 1024


class UnsafePathError(InvalidRequestError):
    """A user-given name would leave its folder (or is not a valid file name)."""

    http_status = 400
    code = "invalid_path"


def _spellings(name: str) -> set[str]:
    """``name`` as a filesystem, a URL decoder or a Unicode normaliser might read it."""
    seen = {name}
    current = name
    for _ in range(4):  # %252e%252e -> %2e%2e -> ..
        decoded = unquote(current, errors="surrogateescape")
        if decoded == current:
            break
        seen.add(decoded)
        # overlong UTF-8 (%c0%ae) decodes to nothing valid; read it as latin-1 bytes too
        seen.add(unquote_to_bytes(current.encode("utf-8", "surrogatepass")).decode("latin-1"))
        current = decoded
    normalised = {unicodedata.normalize("NFKC", text) for text in seen}
    overlong = {text.replace("\u00c0\u00ae", ".").replace("\u00c0\u00af", "/") for text in seen}  # overlong '.' and '/'
    return seen | normalised | overlong


def check_name(name: str, what: str = "name") -> str:
    """Raise UnsafePathError unless ``name`` is a relative path that stays where it is put."""
    if not isinstance(name, str) or not name or len(name) > _MAX_NAME:
        raise UnsafePathError(f"invalid {what}", f"give a plain file name of at most {_MAX_NAME} characters")
    try:
        os.fsencode(name)
    except UnicodeError:
        raise UnsafePathError(f"invalid {what}: it is not a valid file name", "give a plain file name") from None
    for text in _spellings(name):
        if any(ord(c) < 32 or ord(c) == 127 for c in text):
            raise UnsafePathError(f"invalid {what}: it contains control characters", "give a plain file name")
        if text.startswith(("/", "\\", "~")) or _DRIVE.match(text) or "\\" in text:
            raise UnsafePathError(f"invalid {what}: absolute paths are not allowed", "give a name inside the folder")
        if any(part in ("..", ".") for part in re.split(r"[/\\]", text)):
            raise UnsafePathError(f"invalid {what}: it would leave its folder", "give a name inside the folder")
    return name


def safe_join(root: Path | str, name: str, what: str = "name") -> Path:
    """``root/name`` with symlinks resolved, guaranteed inside ``root``; UnsafePathError otherwise.

    The file need not exist. ``what`` names the value in the error ("LoRA name", "image name").
    """
    check_name(name, what)
    base = os.path.realpath(os.fspath(root))
    target = os.path.realpath(os.path.join(base, name))
    if os.path.commonpath([base, target]) != base or target == base:
        raise UnsafePathError(f"invalid {what}: it would leave its folder", "give a name inside the folder")
    return Path(target)


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, in words: "a folder", "a FIFO (named pipe)", "a device", ..."""
    import stat

    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def require_regular_file(path: Path | str, what: str = "file") -> Path:
    """``path`` if it is a regular file (symlinks followed); InvalidRequestError naming what it is otherwise.

    Every input file a user names goes through this before it is opened: opening a FIFO
    blocks forever and a device never ends, so neither may reach a reader.
    """
    import errno

    target = Path(path).expanduser()
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        raise InvalidRequestError(f"{what} not found: {target}", "check the path") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidRequestError(f"{what} {target} is a symbolic link loop", "point it at a real file") from None
        raise InvalidRequestError(f"cannot read {what} {target}: {exc.strerror or exc}", "check the path") from None
    except ValueError:  # NUL in the path
        raise InvalidRequestError(f"invalid {what} path: it contains a NUL character", "remove it") from None
    kind = file_kind(mode)
    if kind != "a file":
        raise InvalidRequestError(f"{what} {target} is {kind}, not a regular file", "give the path of a regular file")
    return target
