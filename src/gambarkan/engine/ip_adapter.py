"""IP-Adapter in the one generate path: a reference image steers the look of the result.

``resolve`` finds the request's IP-Adapter folder before any model is loaded (a missing one
fails at once). ``attached`` loads it into the task's pipeline around each pipeline call and
always unloads it afterwards (U-Net attention processors restored, image encoder and the
feature extractor put back as they were), so the next request starts clean; the weights and
the image encoder are read from disk once and kept on the ``LoadedModel``.
An IP-Adapter folder holds one ``*.safetensors`` file with ``image_proj.*``/``ip_adapter.*``
keys (h94/IP-Adapter's layout) and an ``image_encoder/`` (CLIPVisionModelWithProjection).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gambarkan.errors import InvalidRequestError, ModelLoadError, UnknownModelError, close_names
from gambarkan.inputs.ip_adapter import IPAdapterUnit

if TYPE_CHECKING:
    from gambarkan.config import Settings


@dataclass
class IPAdapterPlan:
    """The request's reference image with the weights file and image encoder it will load."""

    unit: IPAdapterUnit
    name: str  # what the PNG metadata shows
    weights: Path  # the *.safetensors file
    encoder: Path  # the image_encoder folder

    def metadata(self) -> dict[str, str]:
        """``IP-Adapter: <model>, IP-Adapter scale: 0.6, IP-Adapter image hash: ...``."""
        return {"IP-Adapter": self.name, "IP-Adapter scale": f"{self.unit.scale:g}", "IP-Adapter image hash": self.unit.image.short_hash()}


def ip_adapter_dir(settings: Settings) -> Path:
    """Where the user's own IP-Adapter folders go."""
    return settings.home / "ip_adapter"


def local_ip_adapters(settings: Settings) -> dict[str, Path]:
    """The user's IP-Adapter folders by name (each with an ``image_encoder/``)."""
    folder = ip_adapter_dir(settings)
    if not folder.is_dir():
        return {}
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_dir() and (p / "image_encoder").is_dir()}


def resolve(unit: IPAdapterUnit, settings: Settings) -> IPAdapterPlan:
    """The plan for ``unit``: its model found on disk now, or one clear error."""
    local = local_ip_adapters(settings)
    where = str(ip_adapter_dir(settings))
    if unit.model is None:
        if len(local) != 1:
            if local:
                raise UnknownModelError(code="ip_adapter_unnamed", params={"names": ", ".join(local)})
            raise UnknownModelError(code="ip_adapter_none", params={"folder": where})
        name, path = next(iter(local.items()))
    elif unit.model in local:
        name, path = unit.model, local[unit.model]
    else:
        path = Path(unit.model).expanduser()
        name = path.stem if path.is_file() else path.name
        if not path.exists():
            if "/" in unit.model or "\\" in unit.model:
                raise UnknownModelError(code="ip_adapter_missing", params={"name": unit.model})
            raise UnknownModelError(code="ip_adapter_unknown", params={"name": unit.model, "close": close_names(unit.model, local), "folder": where})
    folder = path.parent if path.is_file() else path
    if path.is_file():
        weights = path
    else:
        files = sorted([*folder.glob("*.safetensors"), *folder.glob("models/*.safetensors")])
        if len(files) != 1:
            raise ModelLoadError(
                f"the IP-Adapter folder {folder} has {len(files) or 'no'} weight files (*.safetensors)",
                "give the weights file itself as --ip-adapter-model PATH" if files else "put the IP-Adapter's .safetensors file in it",
            )
        weights = files[0]
    encoder = weights.parent / "image_encoder"
    if not encoder.is_dir():
        raise ModelLoadError(f"the IP-Adapter {name} has no image_encoder folder beside {weights.name}", "put its CLIP image encoder in image_encoder/")
    if weights.suffix.lower() != ".safetensors":
        raise ModelLoadError(f"the IP-Adapter weights {weights.name} are not a .safetensors file", "use the .safetensors version of the IP-Adapter")
    return IPAdapterPlan(unit, name, weights, encoder)


def _weights(plan: IPAdapterPlan, loaded: Any, pipe: Any) -> tuple[dict[str, dict[str, Any]], Any]:
    """The adapter's state dict and image encoder, read (safety-checked) once per loaded model."""
    cache: dict[str, tuple[dict[str, dict[str, Any]], Any]] = loaded.extras.setdefault("ip_adapters", {})
    key = str(plan.weights)
    if key not in cache:
        from safetensors import safe_open
        from transformers import CLIPVisionModelWithProjection

        from gambarkan.models.safety import check_file, check_folder

        check_file(plan.weights)
        check_folder(plan.encoder)
        state: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
        try:
            with safe_open(str(plan.weights), framework="pt", device="cpu") as f:
                for name in f.keys():  # noqa: SIM118 - safe_open is not iterable
                    part, _, rest = name.partition(".")
                    if part in state:
                        state[part][rest] = f.get_tensor(name)
            encoder = CLIPVisionModelWithProjection.from_pretrained(plan.encoder, dtype=pipe.dtype).to(pipe.device)
        except Exception as exc:  # noqa: BLE001 - safetensors/transformers raise many types for a bad file
            raise ModelLoadError(f"the IP-Adapter {plan.name} could not be read: {exc}".splitlines()[0], "check that it is an IP-Adapter folder") from None
        if not state["image_proj"] or not state["ip_adapter"]:
            raise ModelLoadError(f"{plan.weights.name} is not an IP-Adapter (no image_proj/ip_adapter weights)", "use an IP-Adapter .safetensors file")
        cache[key] = (state, encoder)
    return cache[key]


@contextmanager
def attached(plan: IPAdapterPlan | None, loaded: Any, pipe: Any) -> Iterator[dict[str, Any]]:
    """Load the IP-Adapter into ``pipe`` for one call; yields the call's extra arguments and
    always unloads it (also on errors and cancel), restoring the modules it replaced."""
    if plan is None:
        yield {}
        return
    if not hasattr(pipe, "load_ip_adapter"):
        raise InvalidRequestError(f"{type(pipe).__name__} cannot use an IP-Adapter", "use an SD 1.x or SDXL model")
    state, encoder = _weights(plan, loaded, pipe)
    feature_extractor = getattr(pipe, "feature_extractor", None)
    pipe.register_modules(image_encoder=encoder)
    try:
        try:
            pipe.load_ip_adapter(state, subfolder="", weight_name="")
        except Exception as exc:  # noqa: BLE001 - a shape mismatch (another family) surfaces as many types
            raise ModelLoadError(
                f"the IP-Adapter {plan.name} does not fit this model: {exc}".splitlines()[0], "use an IP-Adapter made for this model family"
            ) from None
        pipe.set_ip_adapter_scale(plan.unit.scale)
        yield {"ip_adapter_image": plan.unit.image.image}
    finally:
        pipe.unload_ip_adapter()
        if hasattr(pipe, "image_encoder"):
            pipe.register_modules(image_encoder=None)
        if hasattr(pipe, "feature_extractor") and getattr(pipe, "feature_extractor", None) is not feature_extractor:
            pipe.register_modules(feature_extractor=feature_extractor)
