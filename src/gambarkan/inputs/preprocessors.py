"""ControlNet preprocessors: turn a picture into the map a ControlNet reads (edges, lines, tiles).

The weight-free ones follow sd-webui-controlnet's definitions (same names, same slider
meanings, same resize-with-pad to the processor resolution), so a map made here matches the
one A1111's extension makes for the same picture and settings. OpenCV does the image work
(``pip install "gambarkan[control]"``); it is imported only when a map is made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gambarkan.errors import DependencyMissingError, InvalidRequestError, did_you_mean

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image


@dataclass(frozen=True)
class Slider:
    """One of a preprocessor's two numeric settings (A1111's threshold_a / threshold_b)."""

    label: str
    default: float
    low: float
    high: float


@dataclass(frozen=True)
class Preprocessor:
    """A named way to make a control map; ``needs_weights`` ones load a model first."""

    name: str
    label: str
    run: Callable[..., np.ndarray] | None
    slider_a: Slider | None = None
    slider_b: Slider | None = None
    needs_weights: str | None = None  # what it would download, for the error when it cannot
    aliases: tuple[str, ...] = ()


def _cv2():  # noqa: ANN202 - the cv2 module
    try:
        import cv2
    except ImportError:
        raise DependencyMissingError(
            "control maps need OpenCV, which is not installed", 'pip install "gambarkan[control]"'
        ) from None
    return cv2


def _hwc3(x: np.ndarray) -> np.ndarray:
    """Any uint8 image array as 3-channel RGB (alpha composited on white, as the extension does)."""
    import numpy as np

    x = x.astype(np.uint8)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.shape[2] == 1:
        return np.concatenate([x, x, x], axis=2)
    if x.shape[2] == 4:
        color = x[:, :, :3].astype(np.float32)
        alpha = x[:, :, 3:4].astype(np.float32) / 255.0
        return (color * alpha + 255.0 * (1.0 - alpha)).clip(0, 255).astype(np.uint8)
    return x


def _pad64(x: int) -> int:
    return (x + 63) // 64 * 64 - x


def _resize_with_pad(img: np.ndarray, resolution: int) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Scale so the short side is ``resolution``, pad to a multiple of 64 by repeating the edge."""
    import numpy as np

    cv2 = _cv2()
    img = _hwc3(img)
    h_raw, w_raw = img.shape[:2]
    k = float(resolution) / float(min(h_raw, w_raw))
    interpolation = cv2.INTER_CUBIC if k > 1 else cv2.INTER_AREA
    h, w = int(np.round(h_raw * k)), int(np.round(w_raw * k))
    img = cv2.resize(img, (w, h), interpolation=interpolation)
    padded = np.pad(img, [[0, _pad64(h)], [0, _pad64(w)], [0, 0]], mode="edge")
    return np.ascontiguousarray(padded), lambda x: np.ascontiguousarray(x[:h, :w].copy())


def _none(img: np.ndarray, resolution: int, a: float, b: float) -> np.ndarray:
    return _hwc3(img)


def _invert(img: np.ndarray, resolution: int, a: float, b: float) -> np.ndarray:
    padded, unpad = _resize_with_pad(img, resolution)
    return 255 - unpad(padded)


def _canny(img: np.ndarray, resolution: int, a: float, b: float) -> np.ndarray:
    padded, unpad = _resize_with_pad(img, resolution)
    return unpad(_cv2().Canny(padded, int(a), int(b)))


def _threshold(img: np.ndarray, resolution: int, a: float, b: float) -> np.ndarray:
    import numpy as np

    padded, unpad = _resize_with_pad(img, resolution)
    out = np.zeros_like(padded, dtype=np.uint8)
    out[np.min(padded, axis=2) > a] = 255
    return unpad(out)


def _scribble_xdog(img: np.ndarray, resolution: int, a: float, b: float) -> np.ndarray:
    import numpy as np

    cv2 = _cv2()
    padded, unpad = _resize_with_pad(img, resolution)
    g1 = cv2.GaussianBlur(padded.astype(np.float32), (0, 0), 0.5)
    g2 = cv2.GaussianBlur(padded.astype(np.float32), (0, 0), 5.0)
    dog = (255 - np.min(g2 - g1, axis=2)).clip(0, 255).astype(np.uint8)
    out = np.zeros_like(padded, dtype=np.uint8)
    out[2 * (255 - dog) > a] = 255
    return unpad(out)


def _lineart_standard(img: np.ndarray, resolution: int, a: float, b: float) -> np.ndarray:
    import numpy as np

    cv2 = _cv2()
    padded, unpad = _resize_with_pad(img, resolution)
    x = padded.astype(np.float32)
    g = cv2.GaussianBlur(x, (0, 0), 6.0)
    intensity = np.min(g - x, axis=2).clip(0, 255)
    intensity /= max(16, float(np.median(intensity[intensity > 8])) if (intensity > 8).any() else 16)
    intensity *= 127
    return unpad(intensity.clip(0, 255).astype(np.uint8))


def _tile_resample(img: np.ndarray, resolution: int, a: float, b: float) -> np.ndarray:
    cv2 = _cv2()
    img = _hwc3(img)
    if a <= 1.0:
        return img
    h, w = img.shape[:2]
    return cv2.resize(img, (int(w / a), int(h / a)), interpolation=cv2.INTER_AREA)


def _blur(img: np.ndarray, resolution: int, a: float, b: float) -> np.ndarray:
    padded, unpad = _resize_with_pad(img, resolution)
    return unpad(_cv2().GaussianBlur(padded, (0, 0), float(a)))


PREPROCESSORS: dict[str, Preprocessor] = {
    p.name: p
    for p in (
        Preprocessor("none", "none", _none),
        Preprocessor(
            "canny",
            "Canny",
            _canny,
            Slider("Canny low threshold", 100, 1, 255),
            Slider("Canny high threshold", 200, 1, 255),
        ),
        Preprocessor("invert", "invert (from white bg & black line)", _invert),
        Preprocessor("threshold", "Threshold", _threshold, Slider("Binarization Threshold", 127, 0, 255)),
        Preprocessor("scribble_xdog", "scribble_xdog", _scribble_xdog, Slider("XDoG Threshold", 32, 1, 64), aliases=("scribble",)),
        Preprocessor("lineart_standard", "lineart_standard (from white bg & black line)", _lineart_standard, aliases=("lineart",)),
        Preprocessor("tile_resample", "tile_resample", _tile_resample, Slider("Down Sampling Rate", 1.0, 1.0, 8.0), aliases=("tile",)),
        Preprocessor("blur_gaussian", "blur_gaussian", _blur, Slider("Sigma", 9.0, 0.01, 64.0)),
        Preprocessor("depth_midas", "depth_midas", None, needs_weights="a depth model (Intel/dpt-hybrid-midas)", aliases=("depth",)),
        Preprocessor("openpose", "openpose", None, needs_weights="a pose model (lllyasviel/Annotators)", aliases=("openpose_full",)),
    )
}
_ALIASES = {alias: p.name for p in PREPROCESSORS.values() for alias in (p.label.lower(), *p.aliases)}


def get_preprocessor(name: str) -> Preprocessor:
    """The preprocessor called ``name`` (its own name, A1111's label or an alias), or a clear error."""
    key = (name or "none").strip().lower()
    key = _ALIASES.get(key, key)
    if key not in PREPROCESSORS:
        hint = did_you_mean(name, [*PREPROCESSORS, *(p for a in PREPROCESSORS.values() for p in a.aliases)])
        raise InvalidRequestError(
            f"unknown preprocessor '{name}'", f"{hint + ' ' if hint else ''}choose one of: {', '.join(PREPROCESSORS)}"
        )
    return PREPROCESSORS[key]


def _setting(value: float | None, slider: Slider | None) -> float:
    """A slider value, A1111's ``-1`` meaning "the default"; out of range is an error."""
    if slider is None:
        return 0.0
    if value is None or value == -1:
        return slider.default
    if not slider.low <= value <= slider.high:
        raise InvalidRequestError(
            f"{slider.label} {value:g} is out of range", f"use a value from {slider.low:g} to {slider.high:g}"
        )
    return float(value)


def make_control_map(
    name: str,
    image: Image.Image,
    resolution: int = 512,
    threshold_a: float | None = None,
    threshold_b: float | None = None,
) -> Image.Image:
    """The control map ``name`` makes of ``image`` (RGB), at the processor resolution given."""
    import numpy as np
    from PIL import Image as PILImage

    pre = get_preprocessor(name)
    if pre.run is None:
        raise DependencyMissingError(
            f"preprocessor '{pre.name}' needs {pre.needs_weights}, which gambarkan cannot load yet",
            "make the map elsewhere and pass it with preprocessor 'none'",
        )
    if not 64 <= resolution <= 2048:
        raise InvalidRequestError(f"preprocessor resolution {resolution} is out of range", "use a value from 64 to 2048")
    a, b = _setting(threshold_a, pre.slider_a), _setting(threshold_b, pre.slider_b)
    out = pre.run(np.asarray(image.convert("RGBA") if image.mode in ("RGBA", "LA", "P") else image.convert("RGB")), resolution, a, b)
    return PILImage.fromarray(_hwc3(out))


def pixel_perfect_resolution(image_size: tuple[int, int], target_size: tuple[int, int], resize_mode: str = "crop") -> int:
    """sd-webui-controlnet's "pixel perfect": the processor resolution that maps the picture 1:1
    onto the generated size (``resize_mode`` "crop" scales to cover, "fill" to fit inside)."""
    raw_w, raw_h = image_size
    target_w, target_h = target_size
    k0 = target_h / raw_h
    k1 = target_w / raw_w
    k = max(k0, k1) if resize_mode == "crop" else min(k0, k1)
    return int(round(k * min(raw_w, raw_h)))
