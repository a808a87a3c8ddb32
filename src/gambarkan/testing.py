"""Tiny offline Stable Diffusion models for tests, ``doctor`` and ``bench``.

Real diffusers/transformers classes with random (seeded) weights, like diffusers' own
``get_dummy_components``; a small CLIP BPE tokenizer is trained on a built-in word list so
nothing is downloaded. ``python -m gambarkan.testing tiny-model DIR [--arch sd15|sdxl|flux|lightning]``.
The FLUX build has a tiny FluxTransformer2DModel, CLIP and T5 encoders (a T5 Unigram
tokenizer is built from the same word list) and a 16-channel AutoencoderKL.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

_CORPUS = """
a photo of a cat dog bird horse cow fish tree house car boat train city street forest beach sea
mountain river lake sky cloud sun moon star night day morning evening sunset sunrise rain snow
red orange yellow green blue purple pink white black brown gray gold silver colorful bright dark
small big large tall old young beautiful cute happy sad portrait painting drawing sketch anime
realistic cinematic lighting detailed highly masterpiece best quality high resolution 8k 4k
sharp focus soft light girl boy man woman child people person farmer soldier dragon castle
garden flower rose rice field temple palace mosque market food street lamp window door road
sleeping sitting standing running flying eating walking on in at of with the and under above
wearing hair eyes face hand shirt dress hat traditional modern style watercolor oil digital art
""".split()

SD15_UNET = dict(
    block_out_channels=(32, 64),
    layers_per_block=2,
    sample_size=32,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=32,
    norm_num_groups=32,
)
SDXL_UNET = dict(
    block_out_channels=(32, 64),
    layers_per_block=2,
    sample_size=32,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(2, 4),
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=8,
    transformer_layers_per_block=(1, 2),
    projection_class_embeddings_input_dim=80,  # 6 time ids * 8 + pooled text dim 32
    cross_attention_dim=64,
    norm_num_groups=1,
)
VAE = dict(
    block_out_channels=[32, 64],
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
    up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
    latent_channels=4,
    sample_size=128,
)
TEXT = dict(
    bos_token_id=0,
    eos_token_id=2,
    hidden_size=32,
    intermediate_size=37,
    layer_norm_eps=1e-05,
    num_attention_heads=4,
    num_hidden_layers=5,
    pad_token_id=1,
    vocab_size=1000,
    hidden_act="gelu",
    projection_dim=32,
)
SCHEDULER = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    steps_offset=1,
    clip_sample=False,
    set_alpha_to_one=False,
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable unicode table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def _train_bpe(words: list[str], num_merges: int) -> list[tuple[str, str]]:
    """Plain BPE on word-final-marked characters, enough to look like CLIP's vocabulary."""
    vocab = Counter(tuple(w[:-1]) + (w[-1] + "</w>",) for w in words if w)
    merges: list[tuple[str, str]] = []
    for _ in range(num_merges):
        pairs: Counter[tuple[str, str]] = Counter()
        for word, freq in vocab.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += freq
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], p))
        merges.append(best)
        merged: Counter[tuple[str, ...]] = Counter()
        for word, freq in vocab.items():
            out: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += freq
        vocab = merged
    return merges


def write_clip_tokenizer_files(directory: Path, num_merges: int = 300) -> Path:
    """Write vocab.json / merges.txt / tokenizer_config.json for a small CLIP tokenizer."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars]
    merges = _train_bpe(_CORPUS, num_merges)
    tokens += ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab: dict[str, int] = {}
    for tok in tokens:
        vocab.setdefault(tok, len(vocab))
    # Ids 0/1/2 are bos/pad/eos in the tiny text encoder config; keep specials far from them
    # is not needed: the pipeline only needs ids < vocab_size of the text model.
    (directory / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (directory / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "do_lower_case": True,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return directory


def tiny_clip_tokenizer(directory: Path | None = None, pad_token: str = "<|endoftext|>") -> Any:
    """A CLIPTokenizer from a small BPE vocabulary (about 800 tokens, max length 77)."""
    import tempfile

    from transformers import CLIPTokenizer

    directory = Path(directory or tempfile.mkdtemp(prefix="gambarkan-tok-"))
    write_clip_tokenizer_files(directory)
    return CLIPTokenizer(
        str(directory / "vocab.json"), str(directory / "merges.txt"), pad_token=pad_token, model_max_length=77
    )


FLUX_TRANSFORMER = dict(
    patch_size=1,
    in_channels=64,  # 16 latent channels packed 2x2
    num_layers=1,
    num_single_layers=1,
    attention_head_dim=16,
    num_attention_heads=2,
    joint_attention_dim=32,  # T5 d_model
    pooled_projection_dim=32,  # CLIP pooled output
    guidance_embeds=False,  # schnell: no distilled guidance
    axes_dims_rope=(4, 4, 8),
)
FLUX_VAE = dict(
    block_out_channels=[32, 64],
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
    up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
    latent_channels=16,
    sample_size=128,
    use_quant_conv=False,
    use_post_quant_conv=False,
    scaling_factor=0.3611,
    shift_factor=0.1159,
)
T5 = dict(vocab_size=1000, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, relative_attention_num_buckets=8, dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
#: FLUX.1-schnell's scheduler_config.json.
FLUX_SCHEDULER = dict(base_image_seq_len=256, base_shift=0.5, max_image_seq_len=4096, max_shift=1.15, num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False)
#: SDXL-Lightning's scheduler settings: Euler with trailing timesteps (ByteDance's model card).
LIGHTNING_SCHEDULER = dict(timestep_spacing="trailing")


def tiny_t5_tokenizer(max_length: int = 64) -> Any:
    """A T5 tokenizer (Unigram, built in memory from the word list: nothing downloaded)."""
    from transformers import T5TokenizerFast

    words = list(dict.fromkeys(_CORPUS))
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)] + [("\u2581" + w, -5.0 - i / 1000) for i, w in enumerate(words)]
    vocab += [(c, -10.0) for c in "abcdefghijklmnopqrstuvwxyz0123456789,.-"]
    return T5TokenizerFast(vocab=vocab, extra_ids=0, model_max_length=max_length)


def tiny_flux_components(seed: int = 0) -> dict[str, Any]:
    """Random-weight components for a tiny FluxPipeline (deterministic for a seed)."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(**FLUX_TRANSFORMER)
    torch.manual_seed(seed)
    vae = AutoencoderKL(**FLUX_VAE)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(**TEXT))
    torch.manual_seed(seed)
    text_encoder_2 = T5EncoderModel(T5Config(**T5))
    return {
        "transformer": transformer,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tiny_clip_tokenizer(),
        "text_encoder_2": text_encoder_2,
        "tokenizer_2": tiny_t5_tokenizer(),
        "scheduler": FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER),
        "image_encoder": None,
        "feature_extractor": None,
    }


def tiny_components(arch: str = "sd15", seed: int = 0) -> dict[str, Any]:
    """Random-weight components for a tiny SD 1.x or SDXL pipeline (deterministic for a seed)."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    if arch not in ("sd15", "sdxl"):
        raise ValueError(f"unknown tiny arch {arch!r} (use sd15 or sdxl)")
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**(SD15_UNET if arch == "sd15" else SDXL_UNET))
    torch.manual_seed(seed)
    vae = AutoencoderKL(**VAE)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(**TEXT))
    scheduler = EulerDiscreteScheduler(**{k: v for k, v in SCHEDULER.items() if k not in ("clip_sample", "set_alpha_to_one")})
    components: dict[str, Any] = {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tiny_clip_tokenizer(),
        "scheduler": scheduler,
    }
    if arch == "sd15":
        components.update(safety_checker=None, feature_extractor=None, image_encoder=None, requires_safety_checker=False)
    else:
        torch.manual_seed(seed)
        components.update(
            text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**TEXT)),
            tokenizer_2=tiny_clip_tokenizer(pad_token="!"),
            image_encoder=None,
            feature_extractor=None,
        )
    return components


TINY_ARCHS = ("sd15", "sdxl", "flux", "lightning")


def tiny_pipeline(arch: str = "sd15", seed: int = 0) -> Any:
    """An in-memory tiny pipeline on the CPU in fp32: sd15, sdxl, flux, or lightning
    (an SDXL whose scheduler uses trailing timesteps, like SDXL-Lightning / DMD2)."""
    import diffusers

    from gambarkan.families import get_family

    if arch not in TINY_ARCHS:
        raise ValueError(f"unknown tiny arch {arch!r} (use one of {', '.join(TINY_ARCHS)})")
    family = get_family("sdxl" if arch == "lightning" else arch)
    cls = getattr(diffusers, family.pipeline_class("txt2img"))
    if arch == "flux":
        pipe = cls(**tiny_flux_components(seed))
    else:
        components = tiny_components("sdxl" if arch == "lightning" else arch, seed)
        if arch == "lightning":
            components["scheduler"] = diffusers.EulerDiscreteScheduler.from_config(components["scheduler"].config, **LIGHTNING_SCHEDULER)
        pipe = cls(**components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_tiny_gguf(path: Path | str, flux_dir: Path | str) -> Path:
    """Write the tiny FLUX folder's transformer as a GGUF file (Q8_0 where a row fits 32-blocks).

    Written with the ``gguf`` package under diffusers' own tensor names, so diffusers' GGUF
    loader (``from_single_file`` + ``GGUFQuantizationConfig``) reads it without conversion.
    """
    import gguf
    import numpy as np
    from diffusers import FluxTransformer2DModel

    path = Path(path)
    transformer = FluxTransformer2DModel.from_pretrained(str(Path(flux_dir) / "transformer"))
    writer = gguf.GGUFWriter(str(path), arch="flux")
    for name, value in transformer.state_dict().items():
        array = value.float().numpy()
        if array.ndim == 2 and array.shape[-1] % 32 == 0:
            data = gguf.quants.quantize(array, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(name, data, raw_shape=data.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(name, array.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def save_tiny_model(directory: Path | str, arch: str = "sd15", seed: int = 0) -> Path:
    """Save a tiny pipeline as a diffusers folder (safetensors) that ``--model DIR`` loads."""
    directory = Path(directory)
    tiny_pipeline(arch, seed).save_pretrained(directory, safe_serialization=True)
    return directory


MARIAN_CORPUS = [
    "kucing hitam besar tidur di atas kasur", "rumah adat jawa di tengah sawah", "dua ekor kucing bermain",
    "gadis berkebaya merah di sawah saat matahari terbenam", "pemandangan pantai saat senja",
    "big black cat sleeping on a bed", "traditional javanese house", "two cats playing", "beach at dusk",
    "seorang nenek sedang duduk di atas batu", "an old woman sitting on a rock", "langit malam penuh bintang",
]


def save_tiny_marian(root: Path | str, model_id: str = "Helsinki-NLP/opus-mt-id-en") -> Path:
    """A random-weight MarianMT model + trained sentencepiece tokenizer, saved offline in the HF cache
    layout under ``root/hf`` as ``model_id``; returns the snapshot folder (what ``from_pretrained`` loads)."""
    import json

    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    root = Path(root)
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(MARIAN_CORPUS * 20), model_prefix=str(work / "sp"), vocab_size=80,
        character_coverage=1.0, model_type="unigram", bos_id=-1, eos_id=1, unk_id=0, pad_id=-1,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=str(work / "sp.model"))
    vocab = {"<unk>": 0, "</s>": 1}
    for i in range(sp.get_piece_size()):
        vocab.setdefault(sp.id_to_piece(i), len(vocab))
    vocab["<pad>"] = len(vocab)
    (work / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    repo = root / "hf" / ("models--" + model_id.replace("/", "--"))
    snap = repo / "snapshots" / ("0" * 40)
    tok = MarianTokenizer(str(work / "sp.model"), str(work / "sp.model"), str(work / "vocab.json"), source_lang="id", target_lang="en")
    tok.save_pretrained(snap)
    config = MarianConfig(
        vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=128,
        pad_token_id=vocab["<pad>"], eos_token_id=vocab["</s>"], decoder_start_token_id=vocab["<pad>"],
        forced_eos_token_id=vocab["</s>"],
    )
    torch.manual_seed(0)
    MarianMTModel(config).save_pretrained(snap)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text("0" * 40)
    return snap

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gambarkan.testing", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tiny = sub.add_parser("tiny-model", help="write a tiny random-weight model folder")
    tiny.add_argument("directory")
    tiny.add_argument("--arch", choices=list(TINY_ARCHS), default="sd15")
    tiny.add_argument("--seed", type=int, default=0)
    control = sub.add_parser("tiny-controlnet", help="write a tiny random ControlNet matching a tiny model")
    control.add_argument("directory")
    control.add_argument("--base", required=True, help="the tiny model folder it must match")
    control.add_argument("--seed", type=int, default=0)
    ip = sub.add_parser("tiny-ip-adapter", help="write a tiny random IP-Adapter (with image encoder) matching a tiny model")
    ip.add_argument("directory")
    ip.add_argument("--base", required=True, help="the tiny model folder it must match")
    ip.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from gambarkan.cli.common import quiet_libraries

    quiet_libraries()  # the path alone on stdout, no library chatter on stderr
    if args.command == "tiny-controlnet":
        path = save_tiny_controlnet(args.directory, args.base, args.seed)
    elif args.command == "tiny-ip-adapter":
        path = save_tiny_ip_adapter(args.directory, args.base, args.seed)
    else:
        path = save_tiny_model(args.directory, args.arch, args.seed)
    print(path)
    return 0



# Full-size SD 1.5 architecture (configs of stable-diffusion-v1-5), for `gambarkan bench`:
# speed does not depend on the weights, so random ones avoid a 4 GB download.
SD15_FULL_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768,
    attention_head_dim=8,
    norm_num_groups=32,
)
SD15_FULL_VAE = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    block_out_channels=[128, 256, 512, 512],
    layers_per_block=2,
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    sample_size=512,
)
SD15_FULL_TEXT = dict(
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    projection_dim=768,
    bos_token_id=0,
    eos_token_id=2,
    pad_token_id=1,
)


def full_size_sd15_pipeline(seed: int = 0) -> Any:
    """The SD 1.5 architecture at full size with random weights (about 1.07 B parameters)."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    with torch.no_grad():
        unet = UNet2DConditionModel(**SD15_FULL_UNET)
        vae = AutoencoderKL(**SD15_FULL_VAE)
        text_encoder = CLIPTextModel(CLIPTextConfig(**SD15_FULL_TEXT))
    scheduler = PNDMScheduler(**{k: v for k, v in SCHEDULER.items() if k != "clip_sample"}, skip_prk_steps=True)
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tiny_clip_tokenizer(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _ldm_unet_names(unet: Any) -> dict[str, str]:
    """diffusers UNet key prefix -> original (LDM) prefix, for any number of blocks."""
    cfg = unet.config
    per = cfg.layers_per_block + 1
    names = {
        "time_embedding.linear_1.": "time_embed.0.",
        "time_embedding.linear_2.": "time_embed.2.",
        "add_embedding.linear_1.": "label_emb.0.0.",
        "add_embedding.linear_2.": "label_emb.0.2.",
        "conv_in.": "input_blocks.0.0.",
        "conv_norm_out.": "out.0.",
        "conv_out.": "out.2.",
        "mid_block.attentions.0.": "middle_block.1.",
        "mid_block.resnets.0.": "middle_block.0.",
        "mid_block.resnets.1.": "middle_block.2.",
    }
    blocks = len(cfg.block_out_channels)
    for i, down in enumerate(unet.down_blocks):
        for j in range(cfg.layers_per_block):
            names[f"down_blocks.{i}.resnets.{j}."] = f"input_blocks.{per * i + j + 1}.0."
            if getattr(down, "attentions", None):
                names[f"down_blocks.{i}.attentions.{j}."] = f"input_blocks.{per * i + j + 1}.1."
        if i < blocks - 1:
            names[f"down_blocks.{i}.downsamplers.0.conv."] = f"input_blocks.{per * (i + 1)}.0.op."
    for i, up in enumerate(unet.up_blocks):
        has_attention = bool(getattr(up, "attentions", None))
        for j in range(per):
            names[f"up_blocks.{i}.resnets.{j}."] = f"output_blocks.{per * i + j}.0."
            if has_attention:
                names[f"up_blocks.{i}.attentions.{j}."] = f"output_blocks.{per * i + j}.1."
        if i < blocks - 1:
            names[f"up_blocks.{i}.upsamplers.0."] = f"output_blocks.{per * i + per - 1}.{2 if has_attention else 1}."
    return names


_LDM_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"), ("conv2", "out_layers.3"),
               ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))
_LDM_VAE_ATTN = (("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."), ("to_out.0.", "proj_out."))


def _rename(key: str, prefixes: dict[str, str]) -> str:
    for old, new in sorted(prefixes.items(), key=lambda kv: -len(kv[0])):
        if key.startswith(old):
            return new + key[len(old):]
    return key


def _ldm_unet_state(unet: Any) -> dict[str, Any]:
    names = _ldm_unet_names(unet)
    state = {}
    for key, value in unet.state_dict().items():
        new = _rename(key, names)
        if ".resnets." in key:
            for old, sd in _LDM_RESNET:
                new = new.replace(f".{old}.", f".{sd}.")
        state["model.diffusion_model." + new] = value
    return state


def _ldm_vae_state(vae: Any) -> dict[str, Any]:
    blocks = len(vae.config.block_out_channels)
    names = {"encoder.mid_block.attentions.0.": "encoder.mid.attn_1.", "decoder.mid_block.attentions.0.": "decoder.mid.attn_1."}
    for part in ("encoder", "decoder"):
        names[f"{part}.mid_block.resnets.0."] = f"{part}.mid.block_1."
        names[f"{part}.mid_block.resnets.1."] = f"{part}.mid.block_2."
        names[f"{part}.conv_norm_out."] = f"{part}.norm_out."
    for i in range(blocks):
        for j in range(vae.config.layers_per_block):
            names[f"encoder.down_blocks.{i}.resnets.{j}."] = f"encoder.down.{i}.block.{j}."
        names[f"encoder.down_blocks.{i}.downsamplers.0."] = f"encoder.down.{i}.downsample."
        for j in range(vae.config.layers_per_block + 1):
            names[f"decoder.up_blocks.{i}.resnets.{j}."] = f"decoder.up.{blocks - 1 - i}.block.{j}."
        names[f"decoder.up_blocks.{i}.upsamplers.0."] = f"decoder.up.{blocks - 1 - i}.upsample."
    state = {}
    for key, value in vae.state_dict().items():
        new = _rename(key, names).replace("conv_shortcut", "nin_shortcut")
        if ".attn_1." in new:
            for old, sd in _LDM_VAE_ATTN:
                new = new.replace(f".attn_1.{old}", f".attn_1.{sd}")
            if new.endswith(("q.weight", "k.weight", "v.weight", "proj_out.weight")) and value.ndim == 2:
                value = value.reshape(*value.shape, 1, 1)
        state["first_stage_model." + new] = value
    return state


def save_tiny_single_file(path: Path | str, seed: int = 0, config_dir: Path | str | None = None) -> Path:
    """Write a tiny SD 1.x pipeline as ONE original-layout (LDM) ``.safetensors`` checkpoint.

    The key names are those of A1111/CompVis checkpoints (``model.diffusion_model.*``,
    ``first_stage_model.*``, ``cond_stage_model.transformer.*``), adapted from diffusers'
    ``scripts/convert_diffusers_to_original_stable_diffusion.py`` to any block count, so
    ``from_single_file`` reads it. With ``config_dir`` the matching diffusers folder (configs
    and tokenizer) is saved too: ``from_single_file(path, config=config_dir)`` needs no network.
    """
    from safetensors.torch import save_file

    path = Path(path)
    pipe = tiny_pipeline("sd15", seed)
    state = {**_ldm_unet_state(pipe.unet), **_ldm_vae_state(pipe.vae)}
    for key, value in pipe.text_encoder.state_dict().items():
        # transformers >= 5.6 flattened CLIPTextModel; original checkpoints keep "text_model.".
        key = key if key.startswith("text_model.") else "text_model." + key
        state["cond_stage_model.transformer." + key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    if config_dir is not None:
        pipe.save_pretrained(Path(config_dir), safe_serialization=True)
    return path


def save_tiny_controlnet(directory: Path | str, base: Path | str, seed: int = 0) -> Path:
    """Save a tiny random ControlNet made from the tiny model at ``base`` (its U-Net's shape), as
    a diffusers folder that ``--control-model DIR`` loads. Zero convolutions are randomised too,
    so the control image visibly changes the output (a fresh ControlNet would change nothing)."""
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(Path(base) / "unet")
    vae_levels = len(json.loads((Path(base) / "vae" / "config.json").read_text())["block_out_channels"])
    torch.manual_seed(seed)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=tuple(16 * 2**i for i in range(vae_levels)))
    with torch.no_grad():
        for name, param in controlnet.named_parameters():
            if "controlnet_down_blocks" in name or "controlnet_mid_block" in name or "controlnet_cond_embedding.conv_out" in name:
                # Weights only: a random bias would shift the output whatever the control image.
                param.normal_(0.0, 0.5) if name.endswith("weight") else param.zero_()
    directory = Path(directory)
    controlnet.save_pretrained(directory, safe_serialization=True)
    return directory


def tiny_upscaler_state(scale: int = 4, num_block: int = 1, num_feat: int = 8, num_grow: int = 4, seed: int = 0) -> dict[str, Any]:
    """A tiny ESRGAN (RRDBNet) state dict in Real-ESRGAN's key layout, which spandrel detects.

    The weights are small and random but the final conv is biased towards the identity of a
    nearest-neighbour upscale's mean colour, so outputs are images, not noise at full range.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)

    def conv(out_ch: int, in_ch: int) -> dict[str, Any]:
        return {"weight": torch.randn(out_ch, in_ch, 3, 3, generator=generator) * 0.02, "bias": torch.zeros(out_ch)}

    in_ch = {4: 3, 2: 12, 1: 48}[scale]
    layers: dict[str, dict[str, Any]] = {"conv_first": conv(num_feat, in_ch)}
    for b in range(num_block):
        for r in (1, 2, 3):
            for i in range(5):
                layers[f"body.{b}.rdb{r}.conv{i + 1}"] = conv(num_feat if i == 4 else num_grow, num_feat + i * num_grow)
    layers["conv_body"] = conv(num_feat, num_feat)
    layers["conv_up1"] = conv(num_feat, num_feat)
    layers["conv_up2"] = conv(num_feat, num_feat)
    layers["conv_hr"] = conv(num_feat, num_feat)
    layers["conv_last"] = conv(3, num_feat)
    layers["conv_last"]["bias"] = torch.full((3,), 0.5)
    return {f"{name}.{kind}": tensor for name, parts in layers.items() for kind, tensor in parts.items()}


def save_tiny_upscaler(path: Path | str, scale: int = 4, seed: int = 0) -> Path:
    """Write a tiny 4x ESRGAN upscaler as ``.safetensors`` (for tests of ``gambarkan upscale``)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tiny_upscaler_state(scale, seed=seed).items()}, str(path))
    return path


if __name__ == "__main__":
    raise SystemExit(main())


IMAGE_ENCODER = dict(hidden_size=32, intermediate_size=37, projection_dim=32, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8)


def save_tiny_ip_adapter(directory: Path | str, base: Path | str, seed: int = 0) -> Path:
    """Save a tiny random IP-Adapter for the tiny model at ``base``: ``ip-adapter.safetensors``
    (``image_proj.*`` + ``ip_adapter.*`` keys, as h94/IP-Adapter's files) and a tiny
    ``image_encoder/`` (CLIPVisionModelWithProjection) beside it, the folder ``--ip-adapter-model DIR``
    loads. Built the way diffusers' own tests build IP-Adapter state dicts, with larger key/value
    weights so the reference image visibly changes the output."""
    import torch
    from diffusers import UNet2DConditionModel
    from diffusers.models.embeddings import ImageProjection
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    unet = UNet2DConditionModel.from_pretrained(Path(base) / "unet")
    cfg = unet.config
    cross = cfg.cross_attention_dim
    torch.manual_seed(seed)
    tensors: dict[str, Any] = {}
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue  # self-attention: IP-Adapter keys only exist for cross-attention (ids 1, 3, 5 ...)
        if name.startswith("mid_block"):
            hidden = cfg.block_out_channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(cfg.block_out_channels))[int(name[len("up_blocks.")])]
        else:
            hidden = cfg.block_out_channels[int(name[len("down_blocks.")])]
        tensors[f"ip_adapter.{key_id}.to_k_ip.weight"] = torch.randn(hidden, cross) * 0.5
        tensors[f"ip_adapter.{key_id}.to_v_ip.weight"] = torch.randn(hidden, cross) * 0.5
        key_id += 2
    proj = ImageProjection(cross_attention_dim=cross, image_embed_dim=IMAGE_ENCODER["projection_dim"], num_image_text_embeds=4).state_dict()
    tensors.update({"image_proj.proj.weight": proj["image_embeds.weight"], "image_proj.proj.bias": proj["image_embeds.bias"],
                    "image_proj.norm.weight": proj["norm.weight"], "image_proj.norm.bias": proj["norm.bias"]})
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(directory / "ip-adapter.safetensors"))
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**IMAGE_ENCODER))
    encoder.save_pretrained(directory / "image_encoder", safe_serialization=True)
    return directory
