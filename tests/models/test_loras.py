"""LoRAs and textual inversions on tiny real pipelines: find, load, weights, unload, metadata."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from gambarkan.config import Settings
from gambarkan.errors import GambarkanError, ModelLoadError, UnknownModelError, UnsafeFileError
from gambarkan.models.loras import apply_networks, file_hash, find, list_files, loaded_loras
from gambarkan.prompt.encode import build_conditioning, encode_prompt
from gambarkan.testing import tiny_pipeline

ATTN = ["to_q", "to_k", "to_v", "to_out.0"]
CLIP_ATTN = ["q_proj", "k_proj", "v_proj", "out_proj"]


def make_tiny_lora(path: Path, arch: str = "sd15", seed: int = 3, kohya: bool = False) -> Path:
    """Train-free tiny LoRA: random peft adapters on a tiny pipeline, saved as .safetensors."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
    from safetensors.torch import save_file

    src = tiny_pipeline(arch)
    torch.manual_seed(seed)
    src.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=ATTN))
    encoders = {"text_encoder": src.text_encoder}
    if arch == "sdxl":
        encoders["text_encoder_2"] = src.text_encoder_2
    for enc in encoders.values():
        inject_adapter_in_model(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=CLIP_ATTN), enc)
    for module in [src.unet, *encoders.values()]:
        for name, param in module.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(param, std=0.5)
    layers = {"unet": get_peft_model_state_dict(src.unet)}
    layers.update({k: get_peft_model_state_dict(e) for k, e in encoders.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    if kohya:
        prefixes = {"unet": "lora_unet_", "text_encoder": "lora_te_", "text_encoder_2": "lora_te2_"}
        if arch == "sdxl":
            prefixes["text_encoder"] = "lora_te1_"
        state = {}
        for component, layer in layers.items():
            middle = "" if component == "unet" else "text_model_"
            for key, value in layer.items():
                module, kind = key.rsplit(".lora_", 1)
                base = prefixes[component] + middle + module.replace(".", "_")
                state[f"{base}.lora_{'down' if kind.startswith('A') else 'up'}.weight"] = value.contiguous()
                state[f"{base}.alpha"] = torch.tensor(4.0)
        save_file(state, str(path))
        return path
    cls = StableDiffusionXLPipeline if arch == "sdxl" else StableDiffusionPipeline
    kwargs = {f"{k}_lora_layers": v for k, v in layers.items()}
    cls.save_lora_weights(str(path.parent), weight_name=path.name, **kwargs)
    return path


def make_embedding(path: Path, dim: int = 32, vectors: int = 2, sdxl: bool = False, seed: int = 5) -> Path:
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(seed)
    if sdxl:
        data = {"clip_l": torch.randn(vectors, dim, generator=gen), "clip_g": torch.randn(vectors, dim, generator=gen)}
    else:
        data = {"emb_params": torch.randn(vectors, dim, generator=gen)}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(data, str(path))
    return path


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("networks") / "loras"
    make_tiny_lora(d / "Sketchy.safetensors", seed=3)
    make_tiny_lora(d / "sub" / "watercolor.safetensors", seed=4)
    make_tiny_lora(d / "sketchy_kohya.safetensors", seed=3, kohya=True)
    make_tiny_lora(d / "xl_only.safetensors", arch="sdxl", seed=6)
    (d / "pickled.pt").write_bytes(b"not really a pickle")
    make_embedding(d.parent / "emb" / "kucingku.safetensors")
    make_embedding(d.parent / "emb" / "xl_emb.safetensors", sdxl=True)
    return d


@pytest.fixture()
def settings(lora_dir, tmp_path) -> Settings:
    s = Settings.from_env({"GAMBARKAN_HOME": str(tmp_path / "home")})
    s.lora_dirs = [lora_dir, *s.lora_dirs]
    s.embedding_dirs = [lora_dir.parent / "emb", *s.embedding_dirs]
    return s


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline("sd15")


@pytest.fixture(scope="module")
def fresh_image():
    return _image(tiny_pipeline("sd15"), "a photo of a cat")


def _image(pipe, prompt: str, negative: str = "") -> np.ndarray:
    cond = build_conditioning(pipe, prompt, negative, steps=2)
    out = pipe(**cond.pipeline_kwargs, num_inference_steps=2, guidance_scale=5.0, width=64, height=64,
               generator=torch.Generator().manual_seed(0), output_type="np")
    return out.images[0]


def _run(pipe, prompt, settings, negative=""):
    networks = apply_networks(pipe, prompt, negative, settings)
    return networks, _image(pipe, prompt, negative)


# --- finding files -----------------------------------------------------------------------------


def test_find_by_name_case_and_subfolder(lora_dir):
    assert find("Sketchy", [lora_dir]).path == lora_dir / "Sketchy.safetensors"
    assert find("sketchy", [lora_dir]).name == "Sketchy"
    assert find("watercolor", [lora_dir]).path == lora_dir / "sub" / "watercolor.safetensors"
    assert find("Sketchy.safetensors", [lora_dir]).name == "Sketchy"
    assert find("sub/watercolor.safetensors", [lora_dir]).name == "watercolor"
    with pytest.raises(GambarkanError, match="absolute paths"):  # names never reach outside the LoRA folders
        find(str(lora_dir / "Sketchy.safetensors"), [lora_dir])
    assert [f.name for f in list_files([lora_dir])] == ["Sketchy", "sketchy_kohya", "watercolor", "xl_only"]


def test_unknown_name_lists_closest(lora_dir):
    with pytest.raises(UnknownModelError) as info:
        find("watercolour", [lora_dir])
    assert "unknown LoRA 'watercolour'" in str(info.value) and "'watercolor'" in str(info.value)
    assert "gambarkan loras" in str(info.value)


def test_pickle_files_are_refused(lora_dir):
    with pytest.raises(UnsafeFileError, match="pickle"):
        find("pickled", [lora_dir])


# --- loading and unloading -------------------------------------------------------------------------


def test_lora_changes_pixels_and_unload_restores_them_exactly(pipe, settings, fresh_image):
    _, base = _run(pipe, "a photo of a cat", settings)
    assert np.array_equal(base, fresh_image)

    networks, full = _run(pipe, "a photo of a cat <lora:Sketchy:1>", settings)
    assert np.abs(full - base).max() > 1e-2
    assert [(f.name, w) for f, w in networks.loras] == [("Sketchy", 1.0)]

    _, half = _run(pipe, "a photo of a cat <lora:Sketchy:0.5>", settings)
    assert np.abs(half - base).max() > 1e-3 and np.abs(half - full).max() > 1e-3

    networks, after = _run(pipe, "a photo of a cat", settings)
    assert networks.loras == [] and loaded_loras(pipe) == {}
    assert np.array_equal(after, fresh_image)  # bit for bit what a fresh pipeline gives


def test_several_loras_then_one(pipe, settings):
    _, both = _run(pipe, "a photo of a cat <lora:Sketchy:0.8> <lora:watercolor:0.6>", settings)
    assert len(loaded_loras(pipe)) == 2
    _, one = _run(pipe, "a photo of a cat <lora:watercolor:0.6>", settings)
    assert len(loaded_loras(pipe)) == 1
    other = tiny_pipeline("sd15")
    _, expected = _run(other, "a photo of a cat <lora:watercolor:0.6>", settings)
    assert np.array_equal(one, expected) and not np.array_equal(one, both)
    _run(pipe, "a photo of a cat", settings)


def test_kohya_and_diffusers_formats_give_the_same_image(pipe, settings):
    _, diffusers_format = _run(pipe, "a cat <lora:Sketchy:0.7>", settings)
    _, kohya_format = _run(pipe, "a cat <lora:sketchy_kohya:0.7>", settings)
    assert np.allclose(diffusers_format, kohya_format, atol=1e-5)
    _run(pipe, "a cat", settings)


def test_unknown_lora_fails_before_touching_the_pipeline(pipe, settings):
    _run(pipe, "a photo of a cat <lora:Sketchy:1>", settings)
    with pytest.raises(UnknownModelError):
        apply_networks(pipe, "a cat <lora:Sketchy:1> <lora:nope:1>", "", settings)
    assert len(loaded_loras(pipe)) == 1
    apply_networks(pipe, "a photo of a cat", "", settings)
    assert loaded_loras(pipe) == {}


def test_lora_for_another_architecture_is_a_clear_error(pipe, settings):
    with pytest.raises(ModelLoadError, match="xl_only"):
        apply_networks(pipe, "a cat <lora:xl_only:1>", "", settings)
    assert loaded_loras(pipe) == {} and all(not a for a in pipe.get_list_adapters().values())


def test_lora_hashes_metadata(settings, lora_dir):
    pipe = tiny_pipeline("sd15")
    networks = apply_networks(pipe, "x <lora:Sketchy:1> <lora:watercolor:0.5>", "", settings)
    data = (lora_dir / "Sketchy.safetensors").read_bytes()
    header = int.from_bytes(data[:8], "little")
    addnet = hashlib.sha256(data[8 + header :]).hexdigest()[:12]
    meta = networks.metadata()
    assert meta["Lora hashes"].startswith(f"Sketchy: {addnet}, watercolor: ")
    assert "TI hashes" not in meta


def test_sdxl_lora_loads_and_unloads(settings):
    pipe = tiny_pipeline("sdxl")
    _, base = _run(pipe, "a photo of a cat", settings)
    _, styled = _run(pipe, "a photo of a cat <lora:xl_only:1>", settings)
    assert np.abs(styled - base).max() > 1e-3
    _, after = _run(pipe, "a photo of a cat", settings)
    assert np.array_equal(after, base)


# --- textual inversion ------------------------------------------------------------------------------


def test_embedding_activates_when_named(settings, lora_dir):
    pipe = tiny_pipeline("sd15")
    before, _ = encode_prompt(pipe, "a photo of a cat")
    networks = apply_networks(pipe, "a photo of a cat", "", settings)
    assert networks.embeddings == []
    networks = apply_networks(pipe, "a photo of a cat", "kucingku, blurry", settings)
    assert [f.name for f in networks.embeddings] == ["kucingku"]
    sha = hashlib.sha256((lora_dir.parent / "emb" / "kucingku.safetensors").read_bytes()).hexdigest()[:12]
    assert networks.metadata() == {"TI hashes": f"kucingku: {sha}"}
    with_emb, _ = encode_prompt(pipe, "a photo of kucingku")
    plain, _ = encode_prompt(pipe, "a photo of a cat")
    assert torch.equal(plain, before)  # loading an embedding changes nothing else
    ids = pipe.tokenizer("kucingku", add_special_tokens=False).input_ids
    assert len(ids) == 1  # the name is one added token; the second vector comes from maybe_convert_prompt
    token_vectors = pipe.text_encoder.get_input_embeddings().weight[-2:]
    from safetensors.torch import load_file

    assert torch.equal(token_vectors, load_file(str(lora_dir.parent / "emb" / "kucingku.safetensors"))["emb_params"])
    assert with_emb.shape == plain.shape
    from gambarkan.prompt.encode import chunk_tokens

    added = [pipe.tokenizer.convert_tokens_to_ids(t) for t in ("kucingku", "kucingku_1")]
    assert chunk_tokens(pipe, pipe.tokenizer, "a (kucingku:1.2)")[0].tokens[-2:] == added
    assert chunk_tokens(pipe, pipe.tokenizer, "a (kucingku:1.2)")[0].weights[-2:] == [1.2, 1.2]


def test_sdxl_embedding_and_wrong_kind(settings):
    pipe = tiny_pipeline("sdxl")
    networks = apply_networks(pipe, "xl_emb portrait", "", settings)
    assert [f.name for f in networks.embeddings] == ["xl_emb"]
    assert "xl_emb_1" in pipe.tokenizer_2.get_vocab()
    with pytest.raises(ModelLoadError, match="not an SDXL embedding"):
        apply_networks(pipe, "kucingku portrait", "", settings)


def test_file_hash_is_cached_and_addnet_differs(lora_dir):
    path = lora_dir / "Sketchy.safetensors"
    assert file_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_hash(path, addnet=True) != file_hash(path)


# --- through the engine and the CLI -----------------------------------------------------------------


def test_engine_applies_loras_and_records_hashes(tiny_sd15_dir, lora_dir, tmp_path, monkeypatch):
    from gambarkan.engine.generate import Engine
    from gambarkan.outputs.png import read_parameters
    from gambarkan.request import GenerationRequest

    monkeypatch.setenv("GAMBARKAN_LORA_DIRS", str(lora_dir))
    monkeypatch.setenv("GAMBARKAN_EMBEDDING_DIRS", str(lora_dir.parent / "emb"))
    engine = Engine()
    small = dict(model=str(tiny_sd15_dir), steps=2, width=64, height=64, seed=3, translate=False, out_dir=str(tmp_path))
    plain = engine.generate(GenerationRequest(prompt="a (red:1.2) cat", **small)).images[0]
    styled = engine.generate(GenerationRequest(prompt="a (red:1.2) cat <lora:Sketchy:0.8>", negative_prompt="kucingku", **small)).images[0]
    again = engine.generate(GenerationRequest(prompt="a (red:1.2) cat", **small)).images[0]
    assert np.asarray(plain.image).tolist() != np.asarray(styled.image).tolist()
    assert np.array_equal(np.asarray(plain.image), np.asarray(again.image))
    params = read_parameters(styled.path)
    assert params["prompt"] == "a (red:1.2) cat <lora:Sketchy:0.8>"  # tags stay in the record, like A1111
    assert params["Lora hashes"].startswith("Sketchy: ") and params["TI hashes"].startswith("kucingku: ")
    assert "Lora hashes" not in read_parameters(plain.path)
    with pytest.raises(UnknownModelError, match="did you mean 'Sketchy'"):
        engine.generate(GenerationRequest(prompt="a cat <lora:Sketchi:1>", **small))


def test_loras_command_lists_files(cli, lora_dir, tmp_path):
    import json

    out = cli("loras", "--json", "--lora-dir", str(lora_dir))
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [f["name"] for f in data["files"]] == ["Sketchy", "sketchy_kohya", "watercolor", "xl_only"]
    assert data["skipped"] == [str(lora_dir / "pickled.pt")]
    text = cli("loras", "--embeddings", env={"GAMBARKAN_EMBEDDING_DIRS": str(lora_dir.parent / "emb")})
    assert text.returncode == 0 and "kucingku" in text.stdout and "xl_emb" in text.stdout


def test_lora_dir_is_not_an_embedding_folder(cli, lora_dir, tiny_sd15_dir, tmp_path):
    # Issue 19: --lora-dir also fed the embedding search, so "Sketchy" in <lora:Sketchy:..> was
    # loaded as an embedding ("not an SD 1.x/2.x embedding").
    small = ["-m", str(tiny_sd15_dir), "-W", "64", "-H", "64", "-s", "2", "--seed", "3", "--no-translate", "--json"]
    run = cli("generate", "a cat <lora:Sketchy:0.8>", "--lora-dir", str(lora_dir), "-o", str(tmp_path), *small)
    assert run.returncode == 0, run.stderr
    from gambarkan.outputs.png import read_parameters

    import json

    path = json.loads(run.stdout)["images"][0]["path"]
    params = read_parameters(path)
    assert params["Lora hashes"].startswith("Sketchy: ") and "TI hashes" not in params
    # embeddings get their own flag
    run = cli("generate", "a cat kucingku", "--embedding-dir", str(lora_dir.parent / "emb"), "-o", str(tmp_path), *small)
    assert run.returncode == 0, run.stderr
    assert read_parameters(json.loads(run.stdout)["images"][0]["path"])["TI hashes"].startswith("kucingku: ")


def test_from_with_a_missing_lora_warns_and_goes_on_unless_strict(cli, lora_dir, tiny_sd15_dir, tmp_path):
    from gambarkan.outputs.png import format_parameters, read_parameters, save_png

    from PIL import Image
    import json

    text = format_parameters("a cat <lora:Sketchy:0.8> <lora:NotHere:1>", "", {"Steps": 2, "Sampler": "Euler", "Seed": 5, "Size": "64x64"})
    source = save_png(Image.new("RGB", (64, 64)), tmp_path / "src", 5, text)
    args = ["generate", "--from", str(source), "-m", str(tiny_sd15_dir), "--lora-dir", str(lora_dir), "-o", str(tmp_path / "out"), "--json"]
    run = cli(*args)
    assert run.returncode == 0, run.stderr
    assert "LoRA 'NotHere' is not installed (looked in " in run.stderr and str(lora_dir) in run.stderr
    params = read_parameters(json.loads(run.stdout)["images"][0]["path"])
    assert params["prompt"].startswith("a cat <lora:Sketchy:0.8>") and "NotHere" not in params["prompt"]
    assert params["Lora hashes"].startswith("Sketchy: ")
    strict = cli(*args, "--strict")
    assert strict.returncode == 2 and "unknown LoRA 'NotHere'" in strict.stderr and "Traceback" not in strict.stderr
