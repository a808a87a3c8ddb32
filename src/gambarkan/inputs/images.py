"""Images as request values: decoded once, with limits checked before any pixel is decoded.

An image arrives as a path, a PIL image, bytes, base64 or a data URL. ``load_image`` turns it
into an ``ImageInput``: the pixels (RGB, EXIF orientation applied, 16-bit/CMYK/palette
converted, alpha flattened onto white and kept apart for ``mask_from_alpha``) plus where it
came from and its sha256. ``model_dump`` of a request keeps only where the image came from and
its hash (history records provenance, not pixels); ``context={"pixels": True}`` adds the PNG
bytes as base64 for stores that must rebuild an uploaded image (the server's job queue).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import stat
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, SerializationInfo, model_serializer

from gambarkan.errors import InvalidRequestError

MAX_BYTES = 64 * 1024 * 1024
MAX_PIXELS = 4096 * 4096
MAX_SIDE = 16384
_DATA_URL = re.compile(r"^data:image/[\w.+-]+;base64,", re.I)
# Decoders we let see user bytes: the formats people send, nothing exotic.
FORMATS = ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"]


class ImageInput(BaseModel):
    """A decoded, checked image and where it came from; pixels live in ``image`` (RGB)."""

    model_config = ConfigDict(frozen=True)

    source: str  # a file path, or "upload" for bytes/base64/PIL values
    sha256: str
    width: int
    height: int
    notes: tuple[str, ...] = ()
    _image: Any = PrivateAttr(default=None)
    _alpha: Any = PrivateAttr(default=None)

    @property
    def image(self) -> Any:
        """The RGB PIL image (a copy, so callers may draw on it)."""
        return self._image.copy()

    @property
    def alpha(self) -> Any:
        """The alpha channel (PIL "L") when the source had transparency, else None."""
        return None if self._alpha is None else self._alpha.copy()

    @property
    def path(self) -> Path | None:
        return None if self.source == "upload" else Path(self.source)

    def short_hash(self) -> str:
        """The first 10 hex digits of the source bytes' sha256 (as A1111's model hash)."""
        return self.sha256[:10]

    def png_bytes(self) -> bytes:
        """The decoded image as PNG bytes (RGBA when it had alpha)."""
        image = self._image.copy()
        if self._alpha is not None:
            image.putalpha(self._alpha)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any, info: SerializationInfo) -> dict[str, Any]:
        data = handler(self)
        if isinstance(info.context, dict) and info.context.get("pixels"):
            data["data"] = base64.b64encode(self.png_bytes()).decode("ascii")
        return data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImageInput) and (self.sha256, self.source) == (other.sha256, other.source)

    def __hash__(self) -> int:
        return hash((self.sha256, self.source))


def _bad(what: str, message: str, hint: str | None = None) -> InvalidRequestError:
    return InvalidRequestError(f"{what}: {message}", hint)


def _coded(code: str, what: str, **params: str | int | float) -> InvalidRequestError:
    """An image error with its code (English in errors.MESSAGES, Indonesian in i18n.ID)."""
    return InvalidRequestError(code=code, params={"what": what, **params})


def _read_file(path: Path, what: str) -> bytes:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise _coded("image_not_found", what, path=str(path)) from None
    except OSError as exc:
        raise _bad(what, f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise _coded("image_not_regular_file", what, path=str(path))
    if info.st_size > MAX_BYTES:
        raise _coded("image_too_large_bytes", what, size_mb=round(info.st_size / 2**20), limit_mb=MAX_BYTES // 2**20)
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise _bad(what, f"cannot read {path}: {exc.strerror or exc}") from None


def _decode_base64(text: str, what: str) -> bytes:
    body = _DATA_URL.sub("", text.strip(), count=1)
    if len(body) > MAX_BYTES * 4 // 3 + 4:
        raise _coded("image_too_large_bytes", what, size_mb=round(len(body) * 3 / 4 / 2**20), limit_mb=MAX_BYTES // 2**20)
    try:
        return base64.b64decode(re.sub(r"\s+", "", body), validate=True)
    except (binascii.Error, ValueError):
        raise _coded("image_not_base64", what) from None


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or "." in text[-6:] or text.startswith("~")


_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"RIFF", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")


def _is_image_base64(text: str) -> bool:
    """True when ``text`` is base64 whose bytes start like an image file (JPEG's base64 starts with '/')."""
    try:
        body = re.sub(r"\s+", "", text)[:64]
        head = base64.b64decode(body[: len(body) // 4 * 4], validate=False)
    except (binascii.Error, ValueError):
        return False
    return head.startswith(_MAGIC)


def _raw_bytes(value: Any, what: str) -> tuple[bytes | None, Any, str]:
    """(bytes, PIL image, source) of a user value; exactly one of bytes/image is set."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return None, value, "upload"
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if len(data) > MAX_BYTES:
            raise _coded("image_too_large_bytes", what, size_mb=round(len(data) / 2**20), limit_mb=MAX_BYTES // 2**20)
        return data, None, "upload"
    if isinstance(value, Path):
        path = value.expanduser()
        return _read_file(path, what), None, str(path.resolve())
    if isinstance(value, str):
        if not value.strip():
            raise _coded("image_empty", what)
        if "\x00" in value:
            raise _bad(what, "the value contains a NUL character")
        if _DATA_URL.match(value):
            return _decode_base64(value, what), None, "upload"
        if len(value) < 4096:
            path = Path(value).expanduser()
            try:
                exists = path.exists() or path.is_symlink()
            except OSError:
                exists = False
            if exists:
                return _read_file(path, what), None, str(path.resolve())
            if _looks_like_path(value) and not _is_image_base64(value):
                raise _coded("image_not_found", what, path=value)
        return _decode_base64(value, what), None, "upload"
    raise _bad(what, f"cannot use a {type(value).__name__} as an image", "give a path, PIL image, bytes, base64 or a data URL")


def _to_8bit(image: Any) -> Any:
    """16/32-bit grey or float images scaled down to 8-bit "L"."""
    import numpy as np
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype.kind == "f":
        arr = np.clip(arr, 0.0, 1.0 if arr.max() <= 1.0 else 255.0)
        scale = 255.0 if arr.max() <= 1.0 else 1.0
        return Image.fromarray((arr * scale).astype(np.uint8), "L")
    arr = arr.astype(np.int64)
    if arr.max(initial=0) > 255:
        arr = arr >> 8
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")


def _normalise(image: Any) -> tuple[Any, Any]:
    """(RGB image, alpha or None): palette/CMYK/16-bit converted, alpha split off and flattened."""
    from PIL import Image

    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = _to_8bit(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "L" and "transparency" in image.info:
        image = image.convert("RGBA")
    alpha = None
    if image.mode == "RGBA":
        alpha = image.getchannel("A")
        if alpha.getextrema() == (255, 255):
            alpha = None
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        image = background
    elif image.mode != "RGB":
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, L, 1 ...
    return image, alpha


def _pixel_limit_error(what: str, width: int, height: int) -> InvalidRequestError:
    scale = (MAX_PIXELS / (width * height)) ** 0.5
    fit_w, fit_h = max(1, int(width * scale)), max(1, int(height * scale))
    return _coded("image_too_many_pixels", what, width=width, height=height, mp=f"{width * height / 1e6:.1f}",
                  limit_mp=f"{MAX_PIXELS / 1e6:.1f}", fit_width=fit_w, fit_height=fit_h)


def decode(data: bytes, what: str = "image") -> tuple[Any, Any, list[str]]:
    """Decode image bytes into (RGB image, alpha or None, notes), refusing bombs before decoding."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    notes: list[str] = []
    if not data:
        raise _coded("image_empty", what)
    try:
        opened = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise _coded("image_unreadable", what) from None
    except Image.DecompressionBombError:
        raise _coded("image_decompression_bomb", what, limit_mp=f"{MAX_PIXELS / 1e6:.1f}") from None
    except Exception as exc:  # noqa: BLE001 - hostile headers make Pillow raise many types
        raise _bad(what, f"cannot read the image: {_reason(exc)}") from None
    with opened:
        width, height = opened.size
        # The header alone gave the size: refuse before a single pixel is decoded.
        if width <= 0 or height <= 0 or width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
            raise _pixel_limit_error(what, width, height)
        frames = getattr(opened, "n_frames", 1)
        if frames > 1:
            notes.append(f"{what} is animated ({frames} frames): frame 1 is used")
        try:
            opened.seek(0)
            opened.load()
            image = ImageOps.exif_transpose(opened)
            if image is opened:
                image = opened.copy()
        except Image.DecompressionBombError:
            raise _pixel_limit_error(what, width, height) from None
        except Exception as exc:  # noqa: BLE001 - truncated/corrupt data: OSError, SyntaxError, ValueError ...
            raise _coded("image_damaged", what, reason=_reason(exc)) from None
    rgb, alpha = _normalise(image)
    return rgb, alpha, notes


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return text or type(exc).__name__


def load_image(value: Any, what: str = "image") -> ImageInput:
    """An ``ImageInput`` from a path, PIL image, bytes, base64, data URL or a stored record.

    A stored record (``{"source": ..., "sha256": ...}`` from history or ``model_dump``) is read
    again from its file, which must still hold the same bytes; ``{"data": base64}`` carries
    the pixels themselves.
    """
    if isinstance(value, ImageInput):
        return value
    expected: str | None = None
    kept: tuple[str, str] | None = None  # (source, sha256) of a record that carries its pixels
    if isinstance(value, dict):
        if value.get("data"):
            if value.get("sha256"):
                kept = (str(value.get("source") or "upload"), str(value["sha256"]))
            value = str(value["data"])
        elif value.get("source") and value["source"] != "upload":
            expected = value.get("sha256")
            value = Path(str(value["source"]))
            if not value.exists():
                raise _coded("input_image_gone", what, path=str(value))
        else:
            raise _coded("input_image_not_kept", what)
    data, pil, source = _raw_bytes(value, what)
    if pil is not None:
        width, height = pil.size
        if width * height > MAX_PIXELS or width > MAX_SIDE or height > MAX_SIDE:
            raise _pixel_limit_error(what, width, height)
        pil.load()
        rgb, alpha = _normalise(pil)
        notes: list[str] = []
        buffer = io.BytesIO()
        pil.save(buffer, format="PNG")
        digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    else:
        assert data is not None
        digest = hashlib.sha256(data).hexdigest()
        if expected and not digest.startswith(str(expected)):  # PNG metadata keeps the first 10 hex
            raise _coded("input_image_changed", what, path=source, old=str(expected)[:10], new=digest[:10])
        rgb, alpha, notes = decode(data, what)
    if kept is not None:
        source, digest = kept
    result = ImageInput(source=source, sha256=digest, width=rgb.width, height=rgb.height, notes=tuple(notes))
    result._image = rgb
    result._alpha = alpha
    return result


def mask_of(image_input: ImageInput) -> Any:
    """The mask ("L", white = repaint) an image stands for: its luminance."""
    return image_input.image.convert("L")


def effective_mask(request: Any) -> Any:
    """The request's mask ("L", white = repaint) at the init image's size, inverted when asked;
    None for img2img/txt2img. Outpainting builds its own mask (engine.tasks)."""
    from PIL import Image, ImageOps

    init = request.init_image
    if init is None:
        return None
    if request.mask is not None:
        mask = mask_of(request.mask)
        if mask.size != (init.width, init.height):
            mask = mask.resize((init.width, init.height), Image.Resampling.LANCZOS)
    elif request.mask_from_alpha and init.alpha is not None:
        mask = ImageOps.invert(init.alpha)  # transparent = repaint
    else:
        return None
    return ImageOps.invert(mask) if request.mask_invert else mask


def check_image_request(request: Any) -> None:
    """The checks that need several image fields at once; one clear InvalidRequestError each."""
    init = request.init_image
    if init is None:
        for name in ("mask", "outpaint"):
            if getattr(request, name) is not None:
                raise InvalidRequestError(code="needs_init_image", params={"field": name})
        if request.mask_from_alpha:
            raise InvalidRequestError(code="needs_init_image", params={"field": "mask_from_alpha"})
        if request.strength is not None:
            raise InvalidRequestError(code="needs_init_image", params={"field": "strength"})
        return
    if request.hires is not None:
        raise InvalidRequestError("the hires fix is for text-to-image runs", "to make an input image bigger, use `gambarkan upscale` or set width/height")
    if request.mask is not None and request.mask_from_alpha:
        raise InvalidRequestError("give either a mask or mask_from_alpha, not both", "drop --mask or --mask-from-alpha")
    if request.mask_from_alpha and init.alpha is None:
        raise InvalidRequestError(code="mask_no_alpha")
    if request.mask is not None and (request.mask.width, request.mask.height) != (init.width, init.height) and not request.mask_resize:
        raise InvalidRequestError(
            code="mask_size_mismatch",
            params={"mask_width": request.mask.width, "mask_height": request.mask.height, "width": init.width, "height": init.height},
        )
    if request.outpaint is not None:
        if request.mask is not None or request.mask_from_alpha:
            raise InvalidRequestError("outpainting makes its own mask (the new area)", "drop --mask, or inpaint without --outpaint")
        add_w, add_h = request.outpaint.total
        if add_w + add_h == 0:
            raise InvalidRequestError("outpaint adds no pixels", "say how many to add, e.g. --outpaint left=128,right=128")
        width = (request.width or init.width) + add_w
        height = (request.height or init.height) + add_h
        if width > 2048 or height > 2048:
            raise InvalidRequestError(f"the outpainted canvas would be {width}x{height}, over 2048", "add fewer pixels or resize the image first")
        if width % 8 or height % 8:
            raise InvalidRequestError(
                code="outpaint_not_multiple_of_8", params={"width": width, "height": height, "suggestion": f"{_up_to_8(width)}x{_up_to_8(height)}"}
            )
    mask = effective_mask(request)
    if mask is not None:
        low, high = mask.getextrema()
        if high == 0:
            raise InvalidRequestError(code="mask_empty")
        if low == 255:
            raise InvalidRequestError(code="mask_full")


def _up_to_8(value: int) -> int:
    return (value + 7) // 8 * 8
