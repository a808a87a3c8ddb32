"""Upscaling: ``lanczos``/``nearest`` (no weights), ``latent`` (hires fix), and upscaler models.

Model upscalers (ESRGAN / Real-ESRGAN / SwinIR / DAT ...) load through ``spandrel`` when it is
installed and importable; without it the ESRGAN family (RRDBNet: Real-ESRGAN x4plus, its
anime 6B variant, 4x-UltraSharp) still loads through the small built-in ``RRDBNet`` below, so
the common upscalers work with a bare CPU install. Weights are safetensors; a ``.pth`` file is
refused unless the user allows pickles, and then it is scanned (models.safety) and read with
``torch.load(weights_only=True)``, which rebuilds tensors and cannot run code. Big images are
upscaled in overlapping tiles, so memory stays flat whatever the size.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gambarkan.errors import ModelLoadError, UnknownModelError

TILE = 256  # input pixels per tile side
TILE_OVERLAP = 16


@dataclass
class UpscalerModel:
    """A loaded upscaler model: the torch module, its scale and where it came from."""

    module: Any
    scale: int
    name: str
    path: Path
    backend: str  # spandrel | builtin


_cache: dict[tuple[str, str], UpscalerModel] = {}
_cache_lock = threading.Lock()


def upscale_latents(latents: Any, width: int, height: int, mode: str, vae_scale: int = 8) -> Any:
    """Resize SD latents to the latent size of ``width`` x ``height`` (A1111's "Latent" modes)."""
    import torch.nn.functional as F

    from gambarkan.models.upscalers import LATENT_MODES

    interp, antialias = LATENT_MODES[mode]
    size = (height // vae_scale, width // vae_scale)
    kwargs: dict[str, Any] = {"antialias": antialias} if interp in ("bilinear", "bicubic") else {}
    if interp in ("bilinear", "bicubic"):
        kwargs["align_corners"] = False
    return F.interpolate(latents, size=size, mode=interp, **kwargs)


def upscale_to(image: Any, width: int, height: int, upscaler: str, loaded: Any = None, *, settings: Any = None, offline: bool = False, allow_pickle: bool = False) -> Any:
    """``image`` at exactly ``width`` x ``height``: a model upscaler's passes, then Lanczos to size."""
    from PIL import Image

    if upscaler in ("lanczos", "none") or upscaler.startswith("latent"):
        return image.resize((width, height), Image.Resampling.LANCZOS)
    if upscaler == "nearest":
        return image.resize((width, height), Image.Resampling.NEAREST)
    device = _device_of(loaded)
    model = load_upscaler(upscaler, settings=settings, device=device, offline=offline, allow_pickle=allow_pickle)
    current = image.convert("RGB")
    while current.width < width or current.height < height:
        current = run_model(model, current, device)
        if model.scale == 1:
            break
    return current.resize((width, height), Image.Resampling.LANCZOS) if current.size != (width, height) else current


def upscale(image: Any, scale: float = 4.0, upscaler: str = "lanczos", *, settings: Any = None, device: str = "auto", offline: bool = False, allow_pickle: bool = False) -> Any:
    """``image`` (a path, PIL image, bytes or base64) made ``scale`` times bigger with ``upscaler``."""
    from gambarkan.engine.device import pick_device
    from gambarkan.errors import InvalidRequestError
    from gambarkan.inputs.images import load_image
    from gambarkan.models.upscalers import canonical_name

    if not 1.0 <= float(scale) <= 8.0:
        raise InvalidRequestError(f"scale {scale!r} is out of range", "use a value from 1 to 8")
    name = canonical_name(upscaler, settings)
    if name.startswith("latent"):
        raise InvalidRequestError("the latent upscaler only works inside the hires fix", "use lanczos or an upscaler model")
    source = load_image(image, "image")
    width, height = round(source.width * scale), round(source.height * scale)
    from gambarkan.inputs.images import MAX_PIXELS

    if width * height > MAX_PIXELS * 4:
        raise InvalidRequestError(f"the upscaled image would be {width}x{height}, over {MAX_PIXELS * 4 / 1e6:.0f} MP", "use a smaller scale")
    dev = pick_device(device)
    if name in ("lanczos", "nearest", "none"):
        return upscale_to(source.image, width, height, name)
    model = load_upscaler(name, settings=settings, device=dev, offline=offline, allow_pickle=allow_pickle)
    current = source.image
    while current.width < width or current.height < height:
        current = run_model(model, current, dev)
        if model.scale == 1:
            break
    from PIL import Image

    return current.resize((width, height), Image.Resampling.LANCZOS) if current.size != (width, height) else current


def _device_of(loaded: Any) -> str:
    if loaded is None:
        return "cpu"
    plan = loaded.extras.get("memory_plan") if hasattr(loaded, "extras") else None
    return getattr(plan, "device", None) or "cpu"


def resolve_file(name: str, settings: Any = None, *, offline: bool = False) -> Path:
    """The weights file of upscaler ``name``: the user's upscalers folder, or a path."""
    from gambarkan.models.upscalers import BUILTIN, local_upscalers

    path = Path(name).expanduser()
    if path.is_file():
        return path
    found = local_upscalers(settings).get(name.lower())
    if found is not None and found.path is not None:
        return found.path
    if name in BUILTIN:
        raise UnknownModelError(f"'{name}' needs no weights file", "use it as an upscaler name directly")
    from gambarkan.models.upscalers import upscaler_dirs

    raise UnknownModelError(
        f"the weights of upscaler '{name}' are not here" + (" and offline mode is on" if offline else ""),
        f"put its .safetensors file in {upscaler_dirs(settings)[0]}",
    )


def read_state_dict(path: Path, *, allow_pickle: bool = False) -> dict[str, Any]:
    """Tensors of an upscaler file without running any code (safetensors, or a scanned state dict)."""
    from gambarkan.models.safety import check_file

    header = check_file(path, allow_pickle=allow_pickle)
    if header:
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)  # tensors only: no code runs
    except Exception as exc:  # noqa: BLE001 - torch's unpickler refuses with many types
        raise ModelLoadError(f"{path.name} is not a plain state dict ({str(exc).splitlines()[0][:160]})", "use a .safetensors version") from None
    for key in ("params_ema", "params", "state_dict"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path.name} holds no state dict", "use a .safetensors version")
    return data


def load_upscaler(name: str, *, settings: Any = None, device: str = "cpu", offline: bool = False, allow_pickle: bool = False) -> UpscalerModel:
    """Load (and cache) upscaler ``name`` on ``device``: spandrel when it imports, else built-in RRDBNet."""
    path = resolve_file(name, settings, offline=offline)
    key = (str(path.resolve()), device)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        state = read_state_dict(path, allow_pickle=allow_pickle)
        model = _with_spandrel(state, name, path) or _with_builtin(state, name, path)
        model.module.to(device).eval()
        _cache.clear()  # one upscaler in memory at a time
        _cache[key] = model
        return model


def _with_spandrel(state: dict[str, Any], name: str, path: Path) -> UpscalerModel | None:
    try:
        import spandrel
    except Exception:  # noqa: BLE001 - missing, or broken by a torch/torchvision mismatch
        return None
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - an unknown architecture
        if _is_rrdb(state):
            return None
        raise ModelLoadError(f"{path.name} is no upscaler architecture spandrel knows ({str(exc)[:120]})", "use an ESRGAN, Real-ESRGAN, SwinIR or DAT model") from None
    return UpscalerModel(descriptor.model, int(descriptor.scale), name, path, "spandrel")


# --- built-in RRDBNet (ESRGAN / Real-ESRGAN), for installs without a working spandrel ---

_OLD_KEYS = [
    (re.compile(r"^model\.0\.(weight|bias)$"), r"conv_first.\1"),
    (re.compile(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$"), r"body.\1.rdb\2.conv\3.\4"),
    (re.compile(r"^model\.3\.(weight|bias)$"), r"conv_up1.\1"),
    (re.compile(r"^model\.6\.(weight|bias)$"), r"conv_up2.\1"),
    (re.compile(r"^model\.8\.(weight|bias)$"), r"conv_hr.\1"),
    (re.compile(r"^model\.10\.(weight|bias)$"), r"conv_last.\1"),
]


def _canonical(state: dict[str, Any]) -> dict[str, Any]:
    """Old ESRGAN key names (``model.1.sub.0.RDB1.conv1.0``) in Real-ESRGAN's layout."""
    if "conv_first.weight" in state:
        return state
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"^model\.1\.sub\.(\d+)\.RDB", k))}
    trunk = max(blocks) + 1 if blocks else 0
    out: dict[str, Any] = {}
    for key, value in state.items():
        if key.startswith(f"model.1.sub.{trunk}."):
            out[key.replace(f"model.1.sub.{trunk}.", "conv_body.")] = value
            continue
        for pattern, repl in _OLD_KEYS:
            if pattern.match(key):
                out[pattern.sub(repl, key)] = value
                break
    return out


def _is_rrdb(state: dict[str, Any]) -> bool:
    canon = _canonical(state)
    return "conv_first.weight" in canon and "body.0.rdb1.conv1.weight" in canon and "conv_last.weight" in canon


def _with_builtin(state: dict[str, Any], name: str, path: Path) -> UpscalerModel:
    if not _is_rrdb(state):
        raise ModelLoadError(
            f"{path.name} is not an ESRGAN/Real-ESRGAN model, and spandrel (for the other families) is not usable here",
            "install it: pip install 'gambarkan[upscale]' (spandrel needs a torchvision that matches torch)",
        )
    canon = _canonical(state)
    module = build_rrdbnet(canon)
    try:
        module.load_state_dict(canon, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"{path.name} does not fit the ESRGAN layout ({str(exc).splitlines()[0][:160]})", "is it a complete upscaler file?") from None
    return UpscalerModel(module, module.scale, name, path, "builtin")


def build_rrdbnet(state: dict[str, Any]) -> Any:
    """An RRDBNet whose sizes are read from ``state`` (Real-ESRGAN key layout)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    num_feat, in_ch = state["conv_first.weight"].shape[:2]
    num_grow = state["body.0.rdb1.conv1.weight"].shape[0]
    num_block = len({k.split(".")[1] for k in state if k.startswith("body.")})
    out_ch = state["conv_last.weight"].shape[0]
    ups = sum(1 for k in ("conv_up1.weight", "conv_up2.weight") if k in state)
    unshuffle = {3: 1, 12: 2, 48: 4}.get(int(in_ch) // max(1, int(out_ch) // 3), 1)
    scale = (2**ups) // unshuffle

    class RDB(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for i in range(5):
                setattr(self, f"conv{i + 1}", nn.Conv2d(num_feat + i * num_grow, num_feat if i == 4 else num_grow, 3, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            feats = [x]
            for i in range(4):
                feats.append(F.leaky_relu(getattr(self, f"conv{i + 1}")(torch.cat(feats, 1)), 0.2))
            return self.conv5(torch.cat(feats, 1)) * 0.2 + x

    class RRDB(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rdb1, self.rdb2, self.rdb3 = RDB(), RDB(), RDB()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x

    class RRDBNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = scale
            self.unshuffle = unshuffle
            self.conv_first = nn.Conv2d(in_ch, num_feat, 3, 1, 1)
            self.body = nn.Sequential(*[RRDB() for _ in range(num_block)])
            self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.ups = ups
            for i in range(ups):
                setattr(self, f"conv_up{i + 1}", nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_last = nn.Conv2d(num_feat, out_ch, 3, 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.unshuffle > 1:
                x = F.pixel_unshuffle(x, self.unshuffle)
            feat = self.conv_first(x)
            feat = feat + self.conv_body(self.body(feat))
            for i in range(self.ups):
                feat = F.leaky_relu(getattr(self, f"conv_up{i + 1}")(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
            return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))

    return RRDBNet()


def run_model(model: UpscalerModel, image: Any, device: str = "cpu", tile: int = TILE, overlap: int = TILE_OVERLAP) -> Any:
    """One pass of ``model`` over ``image`` (PIL RGB), in overlapping tiles; returns PIL RGB."""
    import numpy as np
    import torch
    from PIL import Image

    arr = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    param = next(model.module.parameters())
    s = model.scale
    _, _, height, width = arr.shape
    out = torch.zeros((1, 3, height * s, width * s))
    weight = torch.zeros_like(out)
    step = max(1, tile - overlap)
    with torch.inference_mode():
        for top in range(0, height, step):
            for left in range(0, width, step):
                bottom, right = min(height, top + tile), min(width, left + tile)
                y0, x0 = max(0, bottom - tile), max(0, right - tile)
                piece = arr[:, :, y0:bottom, x0:right].to(device=param.device, dtype=param.dtype)
                result = model.module(piece).float().clamp(0, 1).cpu()
                out[:, :, y0 * s : bottom * s, x0 * s : right * s] += result
                weight[:, :, y0 * s : bottom * s, x0 * s : right * s] += 1
                if right == width:
                    break
            if bottom == height:
                break
    pixels = (out / weight.clamp(min=1)).mul(255).round().byte()[0].permute(1, 2, 0).numpy()
    return Image.fromarray(pixels, "RGB")
