"""PNG files with AUTOMATIC1111-compatible ``parameters`` metadata, written atomically.

The text chunk has three parts, exactly as A1111 writes it so A1111, sd-prompt-reader and
civitai read ours and we read theirs::

    <prompt>
    Negative prompt: <negative>
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: ..., Model: ...
"""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path
from typing import IO, Any

from gambarkan.errors import DiskFullError, InvalidRequestError

PARAMETERS_KEY = "parameters"
_NAME_RE = re.compile(r"^(\d{5,})-")
# A1111's re_param: key: value pairs where value may be a JSON-quoted string.
_PARAM_RE = re.compile(r'\s*([\w ,./+\-()]+?):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_SIZE_RE = re.compile(r"^(\d+)x(\d+)$")


def _quote(value: Any) -> str:
    text = str(value)
    if any(c in text for c in ',\n:"'):
        return json.dumps(text, ensure_ascii=False)
    return text


def format_parameters(prompt: str, negative_prompt: str, fields: dict[str, Any]) -> str:
    """Render the A1111 ``parameters`` text; ``None`` values are left out."""
    lines = [prompt]
    if negative_prompt:
        lines.append(f"Negative prompt: {negative_prompt}")
    pairs = [f"{key}: {_quote(value)}" for key, value in fields.items() if value is not None and value != ""]
    lines.append(", ".join(pairs))
    return "\n".join(lines)


def parse_parameters(text: str) -> dict[str, Any]:
    """Parse A1111 ``parameters`` text into a dict: prompt, negative_prompt and each key.

    ``Size`` also gives ``width``/``height``; numbers become int/float; ``Sampler`` plus
    ``Schedule type`` (A1111 >= 1.9) is folded into one sampler name ("DPM++ 2M Karras").
    """
    lines = text.strip("\n").split("\n")
    settings_line = ""
    if lines and len(_PARAM_RE.findall(lines[-1])) >= 3:
        settings_line = lines.pop()
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative_lines if in_negative else prompt_lines).append(line)
    result: dict[str, Any] = {"prompt": "\n".join(prompt_lines).strip(), "negative_prompt": "\n".join(negative_lines).strip()}
    for key, raw in _PARAM_RE.findall(settings_line):
        value: Any = raw.strip()
        if value.startswith('"') and value.endswith('"'):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = value[1:-1]
        key = key.strip()
        # a hash is text even when all its hex digits are decimal ("0123456789" must keep its 0)
        result[key] = value if "hash" in key.lower() else _number(value)
    size = _SIZE_RE.match(str(result.get("Size", "")))
    if size:
        result["width"], result["height"] = int(size.group(1)), int(size.group(2))
    if "Schedule type" in result:
        from gambarkan.sampler_names import sampler_or_none

        result["Sampler"] = sampler_or_none(result.get("Sampler"), result["Schedule type"]) or result.get("Sampler", "")
    return result


def _number(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if re.fullmatch(r"-?\d+\.\d*", value):
        return float(value)
    return value


def read_parameters_text(path: Path | str | IO[bytes]) -> str | None:
    """The raw ``parameters`` text of a PNG (or A1111 JPEG/WebP EXIF comment), or None."""
    from PIL import Image

    from gambarkan.paths import require_regular_file

    if isinstance(path, (str, os.PathLike)):  # bytes in memory (png-info, variations) need no file check
        path = require_regular_file(path, "image file")  # a FIFO named x.png would block the reader forever
    try:
        # Only the formats that carry generation parameters: fewer image decoders see hostile bytes.
        with Image.open(path, formats=["PNG", "JPEG", "WEBP"]) as img:
            img.load()
            text = img.info.get(PARAMETERS_KEY) or getattr(img, "text", {}).get(PARAMETERS_KEY)
            if not text:
                exif = img.getexif().get_ifd(0x8769).get(0x9286)  # UserComment
                if isinstance(exif, bytes):
                    text = exif[8:].decode("utf-16-be" if exif[:8] == b"UNICODE\x00" else "utf-8", "ignore")
                elif isinstance(exif, str):
                    text = exif
    except FileNotFoundError:
        raise InvalidRequestError(f"file not found: {path}", "check the path") from None
    except Exception as exc:  # noqa: BLE001 - hostile files make Pillow raise OSError, ValueError, SyntaxError ...
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise InvalidRequestError(f"cannot read image {path}: {reason}", "is it a PNG made by gambarkan or A1111?") from None
    if text is not None and not isinstance(text, str):
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return text or None


def read_parameters(path: Path | str) -> dict[str, Any]:
    """Parsed generation parameters of an image; clear error if it carries none."""
    text = read_parameters_text(path)
    if not text or text.lstrip().startswith("{"):  # none, or JSON (Fooocus): ask the other tools' readers
        from gambarkan.outputs.foreign import read_foreign

        foreign = read_foreign(path)
        if foreign is not None:
            return foreign
    if not text:
        raise InvalidRequestError(
            f"{path} has no generation parameters",
            "only images saved by gambarkan, AUTOMATIC1111, Fooocus, ComfyUI, InvokeAI or NovelAI carry them",
        )
    parsed = parse_parameters(text)
    parsed["raw"] = text
    return parsed


def _next_number(directory: Path) -> int:
    highest = 0
    for entry in os.scandir(directory):
        match = _NAME_RE.match(entry.name)
        if match:
            highest = max(highest, int(match.group(1)))
    return highest + 1


def _storage_error(exc: OSError, directory: Path) -> DiskFullError:
    if exc.errno == errno.ENOSPC:
        return DiskFullError(code="disk_full", params={"path": str(directory)})
    if exc.errno == errno.EROFS:
        return DiskFullError(code="folder_read_only", params={"path": str(directory)})
    if exc.errno in (errno.EACCES, errno.EPERM):
        return DiskFullError(code="folder_not_writable", params={"path": str(directory)})
    return DiskFullError(f"cannot write to {directory}: {exc.strerror or exc}", "check the folder or choose another --out")


def check_output_dir(directory: Path | str) -> Path:
    """Make sure images can be saved in ``directory`` (created if missing), before any work is done.

    The error names the real reason: a file, device or FIFO where the folder should be, a
    symbolic link loop, a read-only or full disk. A probe file is written and removed.
    """
    import tempfile

    from gambarkan.paths import file_kind

    directory = Path(directory).expanduser()
    where = "choose another --out folder"
    try:
        mode = os.stat(directory).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidRequestError(f"output folder {directory} is a symbolic link loop", where) from None
        if exc.errno == errno.ENOTDIR:
            raise InvalidRequestError(f"cannot create output folder {directory}: a part of the path is not a folder", where) from None
        raise _storage_error(exc, directory) from None
    if mode is not None and file_kind(mode) != "a folder":
        raise InvalidRequestError(f"output folder {directory} is {file_kind(mode)}, not a folder", where)
    if mode is None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # a parent is a file, a device or a dangling link
            raise InvalidRequestError(f"cannot create output folder {directory}: a part of the path is not a folder", where) from None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise InvalidRequestError(f"cannot create output folder {directory}: {exc.strerror}", where) from None
            raise _storage_error(exc, directory) from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".gambarkan-probe-", dir=directory)
        try:
            os.write(fd, b"\0")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise _storage_error(exc, directory) from None
    return directory


def encode_png(image: Any, parameters: str | None = None) -> bytes:
    """PNG bytes of ``image`` with the ``parameters`` text chunk (used by files and the server)."""
    import io

    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if parameters:
        info.add_text(PARAMETERS_KEY, parameters)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def encode_image(image: Any, parameters: str | None = None, fmt: str = "png", quality: int = 100) -> bytes:
    """PNG, JPEG or WebP bytes with the parameters where A1111 puts them in each format.

    PNG: the ``parameters`` text chunk; JPEG/WebP: EXIF UserComment as ``UNICODE\\0`` + UTF-16BE
    (what A1111 writes through piexif), so ``read_parameters`` reads all three back.
    """
    import io

    fmt = fmt.lower()
    if fmt == "png":
        return encode_png(image, parameters)
    from PIL import Image

    exif = Image.Exif()
    if parameters:
        exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + parameters.encode("utf-16-be")
    buffer = io.BytesIO()
    rgb = image.convert("RGB") if fmt == "jpeg" else image
    rgb.save(buffer, format="JPEG" if fmt == "jpeg" else "WEBP", quality=max(1, min(int(quality), 100)), exif=exif)
    return buffer.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via ``path.tmp`` + fsync + os.replace (no partial file on crash).

    Creates the parent folder; a full disk or unwritable folder is one clear StorageError.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _storage_error(exc, path.parent) from None


def save_png(image: Any, out_dir: Path | str, seed: int, parameters: str | None = None) -> Path:
    """Save ``image`` as ``NNNNN-<seed>.png`` in ``out_dir`` atomically, never overwriting a file.

    The PNG is written to a temporary name, fsynced, then hard-linked to the first free
    number (link fails if the name exists, so two processes never clobber each other).
    """
    out_dir = Path(out_dir)
    data = encode_png(image, parameters)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _storage_error(exc, out_dir) from None
    tmp = out_dir / f".gambarkan-{os.getpid()}-{seed}.png.tmp"
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        for _ in range(1000):
            final = out_dir / f"{_next_number(out_dir):05d}-{seed}.png"
            try:
                os.link(tmp, final)
            except FileExistsError:
                continue
            except OSError:
                # Filesystems without hard links (some FUSE mounts such as Google Drive).
                if final.exists():
                    continue
                os.replace(tmp, final)
                return final
            tmp.unlink()
            _fsync_dir(out_dir)
            return final
        raise DiskFullError(f"could not find a free file name in {out_dir}", "choose another --out folder")
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _storage_error(exc, out_dir) from None


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
