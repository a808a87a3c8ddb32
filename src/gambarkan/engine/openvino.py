"""The ``openvino`` technique: the pipeline's U-Net run by OpenVINO on the CPU, one compiled model per shape.

Memory: the PyTorch U-Net is needed only to trace a new shape. Once a shape is converted and
saved, its weights are dropped (moved to the meta device) and reloaded from disk only when
they are needed again (a new size, inputs OpenVINO was not converted for, switching off), so
a process holds one copy of the U-Net, not two. The saved IR is read memory-mapped.

Time: the first conversion at a size takes minutes; it is announced before it starts (an
estimate, then a progress line) on the ``gambarkan.notice`` logger, and can be done ahead with
``gambarkan models prepare``.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

NOTICE = logging.getLogger("gambarkan.notice")
#: Measured conversions of an SD 1.5 / SD 2.x U-Net (865 M parameters): 135-187 CPU s on a
#: 2-core Zen 5, 6.5 min wall on a loaded 2-core AVX2 machine (benchmarks/RESULTS.md).
SECONDS_PER_MPARAM = (0.16, 0.45)
_CLASS: list[Any] = []


def ir_dir(cache_dir: Path | str | None) -> Path | None:
    return Path(cache_dir) / "openvino" if cache_dir else None


def _model_hash(model_key: str) -> str:
    return hashlib.sha256(model_key.encode()).hexdigest()[:16]


def ir_path(cache_dir: Path | str | None, model_key: str, sample: tuple[int, ...], context: tuple[int, ...]) -> Path | None:
    """Where the converted U-Net for this model and these input shapes is saved (None: no cache)."""
    folder = ir_dir(cache_dir)
    if folder is None or not model_key:
        return None
    return folder / f"unet-{_model_hash(model_key)}-{'x'.join(map(str, sample))}-{'x'.join(map(str, context))}.xml"


def openvino_ready(cache_dir: Path | str | None, model_key: str, latent: tuple[int, int, int]) -> bool:
    """True when a U-Net IR for ``model_key`` at latent (batch, height, width) is on disk."""
    folder = ir_dir(cache_dir)
    if folder is None or not folder.is_dir():
        return False
    batch, height, width = latent
    return any(folder.glob(f"unet-{_model_hash(model_key)}-{batch}x*x{height}x{width}-*.xml"))


def estimate(params: int) -> str:
    """``about 2-6 minutes`` for a U-Net of ``params`` parameters on a small CPU."""
    low, high = (params / 1e6 * s for s in SECONDS_PER_MPARAM)
    if high < 60:
        return "under a minute"
    return f"about {max(1, round(low / 60))}-{max(2, round(high / 60))} minutes"


def _trim_heap() -> None:
    """Give freed tensor memory back to the OS now (glibc keeps large freed blocks otherwise)."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the allocator returns it in its own time
        pass


class _Ticker:
    """A progress line every ``every`` seconds while a long step runs."""

    def __init__(self, what: str, every: float = 30.0) -> None:
        self.what, self.every = what, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.perf_counter()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            NOTICE.warning("openvino: still %s (%.0f s so far)", self.what, time.perf_counter() - self.started)

    def __enter__(self) -> _Ticker:  # noqa: PYI034 - Python 3.10 has no typing.Self
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def unet_class() -> Any:
    """The nn.Module subclass, built on first use so importing this module never imports torch."""
    if _CLASS:
        return _CLASS[0]
    import torch

    class OpenVINOUNet(torch.nn.Module):
        """Stands in for the pipeline's U-Net; keeps its config, dtype and device for diffusers."""

        def __init__(self, unet: Any, precision: str, cache_dir: Path | None, model_key: str, scale: int = 8) -> None:
            super().__init__()
            self.scale = scale  # latent -> pixel (the VAE's factor), for the sizes the notices name
            self.torch_unet = unet
            self._config, self._dtype, self._device = unet.config, unet.dtype, unet.device
            self.precision = precision
            self.cache_dir = Path(cache_dir) if cache_dir else None
            self.model_key = model_key
            self._compiled: dict[tuple[Any, ...], Any] = {}
            self.conversions = 0  # shapes converted in this process (tests, bench)

        @property
        def config(self) -> Any:
            return self._config

        @property
        def dtype(self) -> Any:
            return self._dtype

        @property
        def device(self) -> Any:
            return self._device

        # --- the PyTorch weights: dropped after compiling, reloaded when needed -------------
        # The state lives on the PyTorch U-Net itself: the f32 and bf16 wrappers share it.

        @property
        def weights_dropped(self) -> bool:
            return getattr(self.torch_unet, "_gambarkan_reload", None) is not None

        def _reload_source(self) -> tuple[str, Path] | None:
            """The U-Net's own folder when its weights there are what runs, else a saved copy."""
            unet = self.torch_unet
            if getattr(unet, "peft_config", None):
                return None  # LoRA layers live only in memory: keep the weights
            folder = Path(str(getattr(unet.config, "_name_or_path", "") or ""))
            fused = any(getattr(m, "fused_projections", False) for m in unet.modules())  # in-memory layout differs from the files
            if not fused and folder.is_dir() and any(folder.glob("diffusion_pytorch_model*.safetensors")) and not any(folder.glob("*.bin")):
                return ("folder", folder)
            if self.cache_dir is None or not self.model_key:
                return None
            copy = ir_dir(self.cache_dir) / f"unet-{_model_hash(self.model_key)}-weights.safetensors"  # type: ignore[operator]
            if not copy.is_file():
                from safetensors.torch import save_file

                copy.parent.mkdir(parents=True, exist_ok=True)
                tmp = copy.with_suffix(".part")
                save_file({k: v.contiguous() for k, v in unet.state_dict().items()}, str(tmp))
                tmp.replace(copy)
            return ("copy", copy)

        def drop_torch_weights(self) -> bool:
            """Free the PyTorch U-Net's weights (the compiled OpenVINO model runs without them)."""
            if self.weights_dropped:
                return True
            source = self._reload_source()
            if source is None:
                return False
            unet = self.torch_unet
            persistent = set(unet.state_dict())
            kept = {n: b for n, b in unet.named_buffers() if n not in persistent}
            unet.to("meta")
            unet._gambarkan_reload = (*source, kept)
            _trim_heap()
            return True

        def ensure_torch_weights(self) -> Any:
            """The PyTorch U-Net with its weights (reloaded from disk when they were dropped)."""
            if not self.weights_dropped:
                return self.torch_unet
            unet = self.torch_unet
            kind, path, kept = unet._gambarkan_reload
            if kind == "folder":
                fresh = type(unet).from_pretrained(str(path), torch_dtype=self._dtype)
                state = fresh.state_dict()
                del fresh
            else:
                from safetensors.torch import load_file

                state = load_file(str(path))
            unet.load_state_dict(state, strict=True, assign=True)
            for name, buffer in kept.items():
                owner, _, leaf = name.rpartition(".")
                unet.get_submodule(owner).register_buffer(leaf, buffer, persistent=False)
            unet.to(self._device)
            unet._gambarkan_reload = None
            return unet

        # --- converting and compiling ----------------------------------------------------

        def _convert(self, sample: Any, timestep: Any, context: Any, xml: Path | None) -> Any:
            import warnings

            import openvino as ov

            unet = self.ensure_torch_weights()
            params = sum(p.numel() for p in unet.parameters())
            batch, _, h, w = sample.shape
            width, height = w * self.scale, h * self.scale
            need = params * 4 * 2 / 2**20  # the traced fp32 weights and the saved IR, shared while converting
            ram = f"{need / 1024:.1f} GB" if need >= 1024 else f"{need:.0f} MB"
            model_name = self.model_key.split("|")[0] or "MODEL"
            NOTICE.warning(
                "openvino: converting the U-Net for %dx%d (batch %d) once: %s on this CPU, about %s RAM; later runs reuse it "
                "(do it ahead with: gambarkan models prepare %s --size %dx%d --optimize openvino)",
                width, height, batch, estimate(params), ram, model_name, width, height,
            )

            class Plain(torch.nn.Module):
                def __init__(self) -> None:
                    super().__init__()
                    self.unet = unet

                def forward(self, x: Any, t: Any, e: Any) -> Any:
                    return self.unet(x, t, encoder_hidden_states=e, return_dict=False)[0]

            started = time.perf_counter()
            # Trace the plain fp32 graph even inside --fast's bf16 autocast: OpenVINO applies its
            # own bf16 precision hint.
            with _Ticker("converting"), torch.no_grad(), torch.autocast("cpu", enabled=False), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer warnings about shape checks: shapes are static here
                NOTICE.warning("openvino: step 1/2: tracing and converting the U-Net (the long part)")
                model = ov.convert_model(Plain(), example_input=(sample, timestep, context))
                if xml is not None:
                    NOTICE.warning("openvino: step 2/2: saving it (%.0f s so far)", time.perf_counter() - started)
                    xml.parent.mkdir(parents=True, exist_ok=True)
                    part = xml.with_name(xml.stem + ".part.xml")
                    ov.save_model(model, str(part), compress_to_fp16=False)
                    part.with_suffix(".bin").replace(xml.with_suffix(".bin"))
                    part.replace(xml)  # the .xml last: it is what marks the IR as complete
            self.conversions += 1
            NOTICE.warning("openvino: converted in %.0f s%s", time.perf_counter() - started, f" (saved in {xml.parent})" if xml else "")
            return model

        def _model_for(self, sample: Any, timestep: Any, context: Any) -> Any:
            import openvino as ov

            key = (tuple(sample.shape), tuple(context.shape))
            if key in self._compiled:
                return self._compiled[key]
            xml = ir_path(self.cache_dir, self.model_key, *key)
            source: Any = str(xml) if xml is not None and xml.is_file() else self._convert(sample, timestep, context, xml)
            if xml is not None:
                source = str(xml)  # compile from the file (memory-mapped), not the traced copy
                gc.collect()
                self.drop_torch_weights()
            config = {"INFERENCE_PRECISION_HINT": self.precision, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": torch.get_num_threads()}
            started = time.perf_counter()
            compiled = ov.Core().compile_model(source, "CPU", config)
            if time.perf_counter() - started > 10:
                NOTICE.warning("openvino: compiled for this CPU (%s) in %.0f s", self.precision, time.perf_counter() - started)
            del source
            self._compiled[key] = compiled.create_infer_request()
            return self._compiled[key]

        def forward(self, sample: Any, timestep: Any, encoder_hidden_states: Any, *args: Any, return_dict: bool = True, **kwargs: Any) -> Any:
            extra = [v for k, v in kwargs.items() if v is not None and k not in ("timestep_cond",)] + [a for a in args if a is not None]
            if extra or kwargs.get("timestep_cond") is not None:  # LoRA scale, ControlNet, SDXL ids: PyTorch
                return self.ensure_torch_weights()(sample, timestep, encoder_hidden_states, *args, return_dict=return_dict, **kwargs)
            t = torch.as_tensor(timestep, dtype=torch.float32).reshape(-1).expand(sample.shape[0]).contiguous()
            request = self._model_for(sample, t, encoder_hidden_states)
            result = request.infer([sample.float().numpy(), t.numpy(), encoder_hidden_states.float().numpy()])
            out = torch.from_numpy(next(iter(result.values())).copy()).to(sample.dtype)
            if not return_dict:
                return (out,)
            from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

            return UNet2DConditionOutput(sample=out)

    _CLASS.append(OpenVINOUNet)
    return OpenVINOUNet


def prepare(model: str, width: int, height: int, *, batch_size: int = 1, offline: bool = False, settings: Any = None) -> dict[str, Any]:
    """Convert ``model``'s U-Net for OpenVINO at this size now, so the next generate only loads it.

    Runs one real 1-step generation through the engine (nothing saved, no history), so exactly
    the shapes a later run uses are converted (CFG batch, text length, the package's own values).
    Returns what was written.
    """
    from gambarkan.engine.generate import Engine
    from gambarkan.request import GenerationRequest

    engine = Engine(settings, history=False)
    folder = ir_dir(engine.settings.cache_dir)
    before = set(folder.glob("unet-*.xml")) if folder and folder.is_dir() else set()
    request = GenerationRequest(prompt="a photo of a cat", model=model, width=width, height=height, steps=1, batch_size=batch_size,
                                device="cpu", dtype="fp32", optimize="openvino", save=False, translate=False, offline=offline)
    started = time.perf_counter()
    result = engine.generate(request)
    if "openvino" not in result.extra.get("optimizations", []):
        from gambarkan.errors import InvalidRequestError

        raise InvalidRequestError(code="openvino_unavailable", params={"model": result.model})
    after = set(folder.glob("unet-*.xml")) if folder and folder.is_dir() else set()
    return {"model": result.model, "width": width, "height": height, "batch_size": batch_size, "seconds": time.perf_counter() - started,
            "written": sorted(str(p) for p in after - before), "already_prepared": not (after - before)}
