"""Speed and memory techniques for a loaded pipeline, each one switchable and reported.

A request names techniques with ``optimize`` (``"compile,-channels_last"``, ``"none"``) and
``fast``; ``resolve_options`` turns that plus the device into an ``Options`` value, and
``apply`` brings the cached pipeline to exactly that state (turning techniques on *and off*,
so a later request without them gets plain behaviour back). Lossless techniques (output equal
to plain diffusers within float tolerance) may be on by default; lossy ones (TAESD decoding,
bf16 autocast on CPU, DeepCache) only when asked, and they are written into the PNG metadata.

Measured figures and why each default is what it is: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from gambarkan.families import family_of_pipeline, get_family
from gambarkan.optimize_names import LEVELS, TECHNIQUES, parse_spec  # noqa: F401 - names live low, re-exported here

#: Lossless techniques on by default, per device type (measured: benchmarks/RESULTS.md).
DEFAULTS: dict[str, frozenset[str]] = {
    "cpu": frozenset({"threads", "sdpa", "taesd_preview"}),
    "cuda": frozenset({"sdpa", "channels_last", "fused_qkv", "vae_fp32", "taesd_preview"}),
    "mps": frozenset({"sdpa", "taesd_preview"}),
}
#: What ``fast`` adds (lossy, only when asked).
FAST = frozenset({"taesd_decode", "bf16_autocast", "deepcache"})


@dataclass(frozen=True)
class Options:
    """Which techniques should be on; every field is one switch of ``TECHNIQUES``."""

    threads: bool = False
    sdpa: bool = False
    channels_last: bool = False
    fused_qkv: bool = False
    vae_fp32: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    taesd_preview: bool = False
    openvino: bool = False
    bf16_autocast: bool = False
    taesd_decode: bool = False
    deepcache: bool = False

    @property
    def enabled(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name)]

    @property
    def lossy(self) -> list[str]:
        return [name for name in self.enabled if not TECHNIQUES[name][0]]


def resolve_options(spec: str | None, device: str, dtype: str = "fp32", *, fast: bool = False, arch: str = "sd15") -> Options:
    """The techniques to use for ``spec`` on ``device``; unsupported ones are forced off.

    ``GAMBARKAN_OPTIMIZE`` (same syntax) is read first, so a machine can change its defaults.
    """
    base = set(DEFAULTS.get(device, DEFAULTS["cpu"]))
    switches: dict[str, bool] = {}
    for text in (os.environ.get("GAMBARKAN_OPTIMIZE"), spec):
        level, more = parse_spec(text)
        if level == "none":
            base, switches = set(), {}
        elif level == "all-lossless":
            base = {n for n, (lossless, _) in TECHNIQUES.items() if lossless}
        elif level == "fast":
            fast = True
        elif level == "default":
            base, switches = set(DEFAULTS.get(device, DEFAULTS["cpu"])), {}
        switches.update(more)
    wanted = base | (FAST if fast else set())
    wanted |= {n for n, on in switches.items() if on}
    wanted -= {n for n, on in switches.items() if not on}
    return _supported(Options(**{n: True for n in wanted}), device, dtype, arch)


def _supported(opts: Options, device: str, dtype: str, arch: str) -> Options:
    """Turn off what cannot work here (never an error: the same spec works on every machine)."""
    off: dict[str, bool] = {}
    if device != "cpu":
        off.update(threads=False, bf16_autocast=False, openvino=False)
    elif opts.bf16_autocast and (dtype != "fp32" or not cpu_has_bf16()):
        off["bf16_autocast"] = False
    if device != "cuda" or not opts.compile:
        off["cuda_graphs"] = False
    family = get_family(arch)
    if not (device == "cuda" and dtype == "fp16" and family.fp16_vae_overflows):  # MPS casts the VAE back itself
        off["vae_fp32"] = False
    if opts.deepcache and not _deepcache_available():
        off["deepcache"] = False
    if opts.openvino and (dtype != "fp32" or not _openvino_available()):
        off["openvino"] = False
    off.update({name: False for name in family.optimizations_off if getattr(opts, name)})  # e.g. U-Net-only ones on FLUX
    return replace(opts, **off) if off else opts


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 maths (AVX512-BF16 or AMX), where autocast pays off.

    Elsewhere PyTorch emulates bf16 and it is slower than fp32 (``gambarkan.cpufeatures``).
    """
    from gambarkan.cpufeatures import detect

    return detect().bf16


def _openvino_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def _deepcache_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("DeepCache") is not None


def switched_off(name: str, spec: str | None) -> bool:
    """True when ``spec`` (or ``GAMBARKAN_OPTIMIZE``) turns ``name`` off explicitly (``-openvino``, ``none``)."""
    off = False
    for text in (os.environ.get("GAMBARKAN_OPTIMIZE"), spec):
        level, switches = parse_spec(text)
        if level in ("none", "default"):
            off = level == "none"
        if name in switches:
            off = not switches[name]
    return off


def for_request(pipe: Any, spec: str | None, *, fast: bool, device: str, dtype: str, arch: str, model_key: str,
                batch: int, width: int, height: int, cfg: float, cache_dir: Path | None, model_name: str = "") -> Applied:
    """Resolve and apply the techniques of one request; with ``fast`` on a CPU, also pick what pays here.

    ``--fast`` adds OpenVINO when its converted U-Net for this model and size is already on disk
    (``gambarkan models prepare``): it pays on every CPU tried, with or without bf16, but never
    converts on its own (that takes minutes). The one-line ``fast`` note says what applies on this
    CPU and what does not, and why.
    """
    opts = resolve_options(spec, device, dtype, fast=fast, arch=arch)
    fast = fast or any(parse_spec(text)[0] == "fast" for text in (os.environ.get("GAMBARKAN_OPTIMIZE"), spec))
    latent = (batch * (2 if cfg > 1 else 1), height // _scale(pipe), width // _scale(pipe))
    ready = False
    if fast and device == "cpu" and not opts.openvino and not switched_off("openvino", spec):
        ready = _openvino_available() and dtype == "fp32" and "openvino" not in get_family(arch).optimizations_off and openvino_ready(cache_dir, model_key, latent)
        if ready:
            opts = replace(opts, openvino=True)
    shape = (batch, height, width)
    applied = apply(pipe, opts, model_key=model_key, shape=shape, cache_dir=cache_dir)
    if fast and device == "cpu":
        applied.announce.append(fast_note(applied, dtype, arch, model_name, width, height, picked_openvino=ready))
    return applied


def fast_note(applied: Applied, dtype: str, arch: str, model_name: str, width: int, height: int, *, picked_openvino: bool = False) -> str:
    """``--fast`` on this CPU in one line: each technique on or off, and why."""
    from gambarkan.cpufeatures import detect

    cpu = detect()
    opts = applied.options
    parts = []
    if opts.taesd_decode:
        parts.append("TAESD decode on")
    else:
        parts.append("TAESD decode off (no TAESD model on disk; set GAMBARKAN_TAESD)")
    if opts.bf16_autocast:
        parts.append(f"bf16 on ({'AMX' if cpu.amx else 'AVX512-BF16'})")
    elif dtype != "fp32":
        parts.append(f"bf16 off (the model runs in {dtype})")
    elif not cpu.bf16:
        parts.append("bf16 off: this CPU has no AVX512-BF16 or AMX, and emulated bf16 is slower than fp32")
    else:
        parts.append("bf16 off (switched off)")
    if opts.openvino:
        parts.append("OpenVINO on" + (" (prepared for this size)" if picked_openvino else ""))
    elif not _openvino_available():
        parts.append("OpenVINO off (pip install openvino; it pays on every CPU tried)")
    elif "openvino" in get_family(arch).optimizations_off or dtype != "fp32":
        parts.append("OpenVINO off (SD 1.x/2.x in fp32 only)")
    else:
        target = model_name or "MODEL"
        parts.append(f"OpenVINO off: not prepared for {width}x{height} (once, minutes: gambarkan models prepare {target} --size {width}x{height} --optimize openvino)")
    if not opts.deepcache:
        parts.append("DeepCache off (" + ("not installed" if not _deepcache_available() else "switched off") + ")")
    else:
        parts.append("DeepCache on")
    return f"fast on this CPU ({cpu.summary()}): " + "; ".join(parts)


def _scale(pipe: Any) -> int:
    return int(getattr(pipe, "vae_scale_factor", 8) or 8)


# --- applying ----------------------------------------------------------------------------


@dataclass
class State:
    """What is applied to one pipeline now (kept on the pipeline object)."""

    options: Options = field(default_factory=Options)
    originals: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Applied:
    """The outcome of ``apply``: techniques active now, notes for --verbose, a run context."""

    options: Options
    notes: list[str]
    compile_warm: bool | None = None
    announce: list[str] = field(default_factory=list)  # shown to the user on every run (not only --verbose)

    def scope(self, pipe: Any, device: str) -> RunScope:
        """Entered at once; ``close(timings)`` it after the pipeline call (in a finally)."""
        return RunScope(self, pipe, device)

    def context(self) -> contextlib.AbstractContextManager[Any]:
        """Wrap the pipeline call (bf16 autocast when on)."""
        if self.options.bf16_autocast:
            import torch

            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def metadata(self) -> str | None:
        """The PNG ``Optimizations`` value: only techniques that change the output."""
        return ", ".join(self.options.lossy) or None


def state_of(pipe: Any) -> State:
    """The optimisation state stored on ``pipe`` (plain when none was applied)."""
    state = getattr(pipe, "_gambarkan_optimize", None)
    if state is None:
        state = State()
        pipe._gambarkan_optimize = state
    return state


def apply(pipe: Any, opts: Options, *, model_key: str = "", shape: tuple[int, ...] = (), cache_dir: Path | None = None) -> Applied:
    """Bring ``pipe`` to exactly ``opts``: switch on what is asked, switch off what is not.

    Cheap when nothing changes (the usual case for a warm pipeline).
    """
    state = state_of(pipe)
    notes: list[str] = []
    current = state.options
    opts = _guard(pipe, opts, notes)
    layout = ("channels_last", "fused_qkv", "sdpa", "deepcache", "taesd_decode", "vae_fp32", "cuda_graphs", "openvino")
    layout_changed = any(getattr(opts, n) != getattr(current, n) for n in layout)
    compiled = current.compile and "unet" in state.originals
    # Unwrap first: the other switches must see the plain modules (processor names, layouts),
    # and a changed layout means compiling again anyway.
    if compiled and (not opts.compile or layout_changed):
        _compile(pipe, False, state, notes)
        compiled = False
    if opts.openvino and opts.compile:
        opts = replace(opts, compile=False, cuda_graphs=False)
        notes.append("compile off: the U-Net runs in OpenVINO")
    if current.openvino and (not opts.openvino or opts.bf16_autocast != current.bf16_autocast):
        _openvino(pipe, False, state, notes)
        current = replace(current, openvino=False)
    for name in TECHNIQUES:
        want, have = getattr(opts, name), getattr(current, name)
        if name == "compile" or want == have:
            continue
        if name == "openvino":
            _openvino(pipe, want, state, notes, bf16=opts.bf16_autocast, cache_dir=cache_dir, model_key=model_key)
            continue
        _SWITCHES[name](pipe, want, state, notes)
    warm = None
    if opts.compile:
        if not compiled:
            _compile(pipe, True, state, notes, cuda_graphs=opts.cuda_graphs, cache_dir=cache_dir)
        warm = _note_compile_shape(state, model_key, shape, notes)
    state.options = opts
    return Applied(opts, notes, warm)


def revert(pipe: Any) -> None:
    """Undo every technique: ``pipe`` behaves like a freshly loaded diffusers pipeline."""
    apply(pipe, Options())


def _guard(pipe: Any, opts: Options, notes: list[str]) -> Options:
    """Switch off what this pipeline cannot take (LoRA adapters vs fused QKV, no TAESD found)."""
    off: dict[str, bool] = {}
    unet = _base(_denoiser(pipe))
    if opts.fused_qkv and (getattr(unet, "peft_config", None) or _has_added_kv(unet)):
        off["fused_qkv"] = False
        notes.append("fused_qkv off: LoRA adapters or added KV projections are loaded")
    if (opts.fused_qkv or opts.compile) and _sequential_offload(unet):
        off.update(fused_qkv=False, compile=False, cuda_graphs=False)
        notes.append("fused_qkv/compile off: layers are streamed one by one (memory mode minimal)")
    # Previews load TAESD lazily on the first preview (preview_image): a run without previews
    # never reads it. The final decode needs it now.
    if opts.taesd_decode and taesd_for(pipe) is None:
        notes.append("taesd_decode off: no TAESD model found on disk (set GAMBARKAN_TAESD to a diffusers AutoencoderTiny folder)")
        off["taesd_decode"] = False
    return replace(opts, **off) if off else opts


def _sequential_offload(unet: Any) -> bool:
    """True under accelerate's per-layer offload (new modules would miss its device hooks)."""
    return any(hasattr(m, "_hf_hook") for m in list(unet.children())[:3])


def _has_added_kv(unet: Any) -> bool:
    return any("Added" in type(p).__name__ for p in unet.attn_processors.values())


def _base(module: Any) -> Any:
    """The module under a torch.compile wrapper."""
    return getattr(module, "_orig_mod", module)


def _denoiser(pipe: Any) -> Any:
    """The U-Net, or the transformer of FLUX-like pipelines."""
    unet = getattr(pipe, "unet", None)
    return unet if unet is not None else getattr(pipe, "transformer", None)


def _threads(pipe: Any, on: bool, state: State, notes: list[str]) -> None:
    import torch

    if on:
        state.originals["threads"] = torch.get_num_threads()
        wanted = physical_cores()
        if wanted and wanted != torch.get_num_threads():
            torch.set_num_threads(wanted)
            notes.append(f"threads: {wanted} (one per physical core)")
    elif "threads" in state.originals:
        torch.set_num_threads(state.originals.pop("threads"))


def physical_cores() -> int:
    """Physical CPU cores usable by this process (hyper-threads slow SD down on CPU).

    ``GAMBARKAN_THREADS`` overrides it (a machine shared with other work, or benchmarks).
    """
    if os.environ.get("GAMBARKAN_THREADS", "").isdigit():
        return max(1, int(os.environ["GAMBARKAN_THREADS"]))
    try:
        import psutil

        cores = psutil.cpu_count(logical=False) or 0
    except ImportError:  # pragma: no cover - psutil is a dependency
        cores = 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores or usable, usable))


def _sdpa(pipe: Any, on: bool, state: State, notes: list[str]) -> None:
    """On: every classic attention layer switched to SDPA. Off: what was there before comes back
    (diffusers already picks SDPA on torch 2, so usually there is nothing to switch)."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    for name in ("unet", "vae"):
        model = _base(getattr(pipe, name, None))
        if model is None or not hasattr(model, "attn_processors"):
            continue
        key = f"sdpa_{name}"
        if not on:
            if key in state.originals:
                model.set_attn_processor(state.originals.pop(key))
            continue
        processors = model.attn_processors
        if not any(type(p).__name__ == "AttnProcessor" for p in processors.values()):
            continue
        custom = [p for p in processors.values() if type(p).__name__ not in ("AttnProcessor", "AttnProcessor2_0")]
        if custom:
            notes.append(f"sdpa: {name} has custom attention processors ({type(custom[0]).__name__}); left as they are")
            continue
        state.originals[key] = processors
        model.set_attn_processor(AttnProcessor2_0())
        notes.append(f"sdpa: {name} switched from classic attention to SDPA")


def sdpa_report(pipe: Any) -> dict[str, int]:
    """How many attention layers of the U-Net/VAE use SDPA vs. something else (check it is used)."""
    counts = {"sdpa": 0, "other": 0}
    for name in ("unet", "vae"):
        model = _base(getattr(pipe, name, None))
        for proc in (getattr(model, "attn_processors", None) or {}).values():
            counts["sdpa" if "2_0" in type(proc).__name__ else "other"] += 1
    return counts


def _channels_last(pipe: Any, on: bool, state: State, notes: list[str]) -> None:
    import torch

    layout = torch.channels_last if on else torch.contiguous_format
    for name in ("unet", "vae"):
        model = getattr(pipe, name, None)
        if model is not None:
            _base(model).to(memory_format=layout)


def _fused_qkv(pipe: Any, on: bool, state: State, notes: list[str]) -> None:
    for name in ("unet", "vae"):
        model = _base(getattr(pipe, name, None))
        if model is None or not hasattr(model, "fuse_qkv_projections"):
            continue
        if on:
            model.fuse_qkv_projections()
        else:
            model.unfuse_qkv_projections()
            _drop_fused_weights(model)


def _drop_fused_weights(model: Any) -> None:
    """diffusers keeps the concatenated matrices after unfusing; free that memory."""
    from diffusers.models.attention_processor import Attention

    for module in model.modules():
        if isinstance(module, Attention) and getattr(module, "fused_projections", False):
            for attr in ("to_qkv", "to_kv", "to_added_qkv"):
                if hasattr(module, attr):
                    delattr(module, attr)
            module.fused_projections = False


def _vae_fp32(pipe: Any, on: bool, state: State, notes: list[str]) -> None:
    """Keep the VAE in fp32 so diffusers does not cast it up and down on every image."""
    import torch

    vae = _base(pipe.vae)
    if on:
        if not getattr(vae.config, "force_upcast", False) or vae.dtype != torch.float16:
            return  # an fp16-fix VAE (force_upcast False) is fine in fp16: nothing to do
        vae.to(torch.float32)
        first = vae.post_quant_conv if getattr(vae, "post_quant_conv", None) is not None else vae.decoder
        hook = first.register_forward_pre_hook(lambda _m, args: tuple(a.float() if hasattr(a, "float") else a for a in args))
        state.originals["vae_fp32_hook"] = (vae, hook)
        notes.append("vae_fp32: VAE kept in fp32 (it overflows in fp16)")
    else:
        saved = state.originals.pop("vae_fp32_hook", None)
        if saved is not None:
            owner, hook = saved
            hook.remove()
            owner.to(torch.float16)


def _openvino(pipe: Any, on: bool, state: State, notes: list[str], *, bf16: bool = False, cache_dir: Path | None = None, model_key: str = "") -> None:
    from gambarkan.engine.openvino import unet_class

    if on:
        precision = "bf16" if bf16 else "f32"
        state.originals["openvino"] = pipe.unet
        # One wrapper per precision, kept: its compiled models per size survive switching off and on.
        wrappers = state.__dict__.setdefault("openvino_wrappers", {})
        if precision not in wrappers or wrappers[precision].torch_unet is not pipe.unet:
            wrappers[precision] = unet_class()(pipe.unet, precision, cache_dir, model_key, _scale(pipe))
        pipe.unet = wrappers[precision]
        notes.append(f"openvino: U-Net in OpenVINO ({precision}); the first run at a new size converts it (minutes, announced); "
                     "the PyTorch U-Net weights are freed once a size is compiled")
    elif "openvino" in state.originals:
        wrapper = pipe.unet
        if hasattr(wrapper, "ensure_torch_weights"):
            wrapper.ensure_torch_weights()  # plain PyTorch again: its weights come back from disk
        pipe.unet = state.originals.pop("openvino")


def openvino_ready(cache_dir: Path | None, model_key: str, latent: tuple[int, int, int]) -> bool:
    """True when the OpenVINO U-Net for ``model_key`` at latent (batch, height, width) is already converted."""
    from gambarkan.engine.openvino import openvino_ready as ready

    return ready(cache_dir, model_key, latent)


def _cuda_graphs(pipe: Any, on: bool, state: State, notes: list[str]) -> None:
    """Handled by ``_compile`` (mode reduce-overhead); nothing to do on its own."""


def _taesd_preview(pipe: Any, on: bool, state: State, notes: list[str]) -> None:
    """Nothing to place: the engine asks ``preview_image`` for each preview."""


def _taesd_decode(pipe: Any, on: bool, state: State, notes: list[str]) -> None:
    if on:
        state.originals["vae"] = pipe.vae
        tiny = taesd_for(pipe)
        param = next(tiny.parameters())
        if (param.device, param.dtype) != (pipe.unet.device, pipe.unet.dtype):
            tiny.to(device=pipe.unet.device, dtype=pipe.unet.dtype)
        pipe.vae = tiny
    elif "vae" in state.originals:
        pipe.vae = state.originals.pop("vae")


def _bf16_autocast(pipe: Any, on: bool, state: State, notes: list[str]) -> None:
    """A context around the call (Applied.context), nothing to place."""


def _deepcache(pipe: Any, on: bool, state: State, notes: list[str]) -> None:
    if on:
        from DeepCache import DeepCacheSDHelper

        helper = DeepCacheSDHelper(pipe=pipe)
        helper.set_params(cache_interval=3, cache_branch_id=0)
        helper.enable()
        state.originals["deepcache"] = helper
        notes.append("deepcache: U-Net features reused every 3 steps (lossy)")
    elif "deepcache" in state.originals:
        state.originals.pop("deepcache").disable()


def _compile(pipe: Any, on: bool, state: State, notes: list[str], *, cuda_graphs: bool = False, cache_dir: Path | None = None) -> None:
    import torch

    if not on:
        for name in ("unet",):
            if name in state.originals:
                setattr(pipe, name, state.originals.pop(name))
        if "vae_decoder" in state.originals:
            owner, decoder = state.originals.pop("vae_decoder")
            owner.decoder = decoder  # the VAE it was taken from, even if TAESD replaced pipe.vae since
        return
    setup_compile_cache(cache_dir)
    # max-autotune would add tens of minutes of tuning per shape; the default mode gets most of it.
    mode = "reduce-overhead" if cuda_graphs else None
    # GAMBARKAN_COMPILE_BACKEND=eager traces without generating code (tests, debugging).
    backend = os.environ.get("GAMBARKAN_COMPILE_BACKEND", "inductor")
    if backend != "inductor":
        mode = None
    state.originals["unet"] = pipe.unet
    pipe.unet = torch.compile(pipe.unet, backend=backend, mode=mode, dynamic=False)
    vae = _base(pipe.vae)
    if hasattr(vae, "decoder") and "vae_decoder" not in state.originals:
        state.originals["vae_decoder"] = (vae, vae.decoder)
        # The decoder runs once per image: CUDA graphs would only cost memory there.
        decoder_mode = None
        vae.decoder = torch.compile(vae.decoder, backend=backend, mode=decoder_mode, dynamic=False)
    notes.append(f"compile: U-Net and VAE decoder wrapped with torch.compile ({backend}, {mode or 'default'} mode)")


_compiled_shapes: set[tuple[Any, ...]] = set()


def _note_compile_shape(state: State, model_key: str, shape: tuple[int, ...], notes: list[str]) -> bool:
    """True when this process already compiled ``model_key`` at ``shape`` (no compile cost now)."""
    key = (model_key, shape, state.options.cuda_graphs)
    warm = key in _compiled_shapes
    _compiled_shapes.add(key)
    if not warm:
        notes.append(f"compile: first run at {'x'.join(map(str, shape))} compiles (reused from the on-disk cache when present)")
    return warm


def setup_compile_cache(cache_dir: Path | None) -> Path | None:
    """Point TorchInductor's on-disk caches at ``cache_dir/torch-compile`` so compile cost is paid
    once per model and shape across processes (FX graph + AOT autograd caches)."""
    if cache_dir is not None and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        path = Path(cache_dir) / "torch-compile"
        path.mkdir(parents=True, exist_ok=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(path)
    try:
        import torch._inductor.config as inductor_config

        inductor_config.fx_graph_cache = True
    except ImportError:  # pragma: no cover
        return None
    value = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    return Path(value) if value else None


_SWITCHES = {
    "threads": _threads,
    "sdpa": _sdpa,
    "channels_last": _channels_last,
    "fused_qkv": _fused_qkv,
    "vae_fp32": _vae_fp32,
    "compile": _compile,
    "cuda_graphs": _cuda_graphs,
    "taesd_preview": _taesd_preview,
    "openvino": _openvino,
    "bf16_autocast": _bf16_autocast,
    "taesd_decode": _taesd_decode,
    "deepcache": _deepcache,
}


# --- TAESD -------------------------------------------------------------------------------



def set_taesd(pipe: Any, tiny: Any) -> None:
    """Use ``tiny`` (an AutoencoderTiny) as this pipeline's preview/fast decoder."""
    pipe._gambarkan_taesd = tiny.eval()


def taesd_for(pipe: Any) -> Any:
    """The AutoencoderTiny for ``pipe``: set with ``set_taesd``, or found on disk (never downloaded).

    Looked for in ``GAMBARKAN_TAESD`` (a diffusers folder) and in the Hugging Face cache.
    """
    if hasattr(pipe, "_gambarkan_taesd"):
        return pipe._gambarkan_taesd
    import warnings

    tiny = None
    repo = family_of_pipeline(pipe).taesd_repo
    try:
        from diffusers import AutoencoderTiny

        local = os.environ.get("GAMBARKAN_TAESD")
        source = local if local and Path(local).is_dir() else repo
        if source is None:
            raise LookupError("no TAESD for this family")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tiny = AutoencoderTiny.from_pretrained(source, local_files_only=True, torch_dtype=_base(pipe.unet).dtype)
        tiny.to(_base(pipe.unet).device)
    except Exception:  # noqa: BLE001 - not downloaded: previews fall back to the cheap approximation
        tiny = None
    pipe._gambarkan_taesd = tiny.eval() if tiny is not None else None
    return pipe._gambarkan_taesd


def preview_image(pipe: Any, latents: Any) -> Any:
    """The first latent of a batch as a PIL image through TAESD, or None when none is loaded."""
    import torch

    tiny = taesd_for(pipe)
    if tiny is None:
        return None
    with torch.no_grad():
        param = next(tiny.parameters())
        image = tiny.decode(latents[:1].to(param.device, param.dtype)).sample
    from PIL import Image

    array = (image[0].float().clamp(-1, 1) + 1).mul(127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


# --- measuring ---------------------------------------------------------------------------


def reset_peaks(device: str = "auto") -> bool:
    """Start a new peak-memory window (RAM high-water mark on Linux; CUDA peak stats).

    Returns False where the RAM peak cannot be reset (then it is the process lifetime's).
    """
    ok = True
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        ok = False
    if device in ("cuda", "auto"):
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
    return ok


def peak_memory(device: str) -> dict[str, float]:
    """Peak RAM (and CUDA memory) in MiB since the last ``reset_peaks``."""
    peaks = {"peak_ram_mb": _peak_rss_mb()}
    if device == "cuda":
        import torch

        peaks["peak_vram_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return peaks


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


class StageTimer:
    """Seconds spent in the text encoder(s), the U-Net and the VAE decoder during a call.

    Forward hooks on the modules: a clock read each on CPU; on CUDA a pair of CUDA events
    (no synchronisation per step, so timing does not slow the GPU down), read once at the end.
    The rest of the call (scheduler, callbacks, image conversion) is what is left of the total.
    """

    def __init__(self, pipe: Any, device: str) -> None:
        self.pipe = pipe
        self.cuda = device == "cuda"
        self.seconds: dict[str, float] = {"encode": 0.0, "unet": 0.0, "decode": 0.0}
        self._handles: list[Any] = []
        self._events: list[tuple[str, Any, Any]] = []

    def _watch(self, module: Any, stage: str) -> None:
        if module is None or not hasattr(module, "register_forward_pre_hook"):
            return
        started: list[Any] = []

        def before(*_: Any) -> None:
            if self.cuda:
                import torch

                event = torch.cuda.Event(enable_timing=True)
                event.record()
                started.append(event)
            else:
                started.append(time.perf_counter())

        def after(*_: Any) -> None:
            if not started:
                return
            if self.cuda:
                import torch

                end = torch.cuda.Event(enable_timing=True)
                end.record()
                self._events.append((stage, started.pop(), end))
            else:
                self.seconds[stage] += time.perf_counter() - started.pop()

        self._handles.append(module.register_forward_pre_hook(before))
        self._handles.append(module.register_forward_hook(after))

    def __enter__(self) -> StageTimer:
        self._watch(getattr(self.pipe, "text_encoder", None), "encode")
        self._watch(getattr(self.pipe, "text_encoder_2", None), "encode")
        self._watch(_denoiser(self.pipe), "unet")
        vae = _base(getattr(self.pipe, "vae", None))
        self._watch(getattr(vae, "decoder", None), "decode")
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self._events:
            import torch

            torch.cuda.synchronize()
            for stage, start, end in self._events:
                self.seconds[stage] += start.elapsed_time(end) / 1000
            self._events.clear()


class RunScope:
    """Around one pipeline call: the technique's context (bf16 autocast) and the stage timer."""

    def __init__(self, applied: Applied, pipe: Any, device: str) -> None:
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(applied.context())
        self.stages = self._stack.enter_context(StageTimer(pipe, device))

    def close(self, timings: dict[str, float]) -> None:
        """Leave the contexts and add this call's stage seconds to ``timings``."""
        self._stack.close()
        for stage, seconds in self.stages.seconds.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
