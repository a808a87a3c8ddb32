"""Textual-inversion embeddings: active when their file name appears in a prompt.

Files are ``NAME.safetensors`` in the embedding folders (``GAMBARKAN_EMBEDDING_DIRS``, then
``<home>/embeddings``). A1111 files hold ``emb_params`` (SD 1.x/2.x) or ``clip_l`` and
``clip_g`` (SDXL); diffusers files hold one tensor. Once loaded an embedding stays in the
pipeline: it only adds a token, so prompts without its name are unaffected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gambarkan.errors import ModelLoadError
from gambarkan.models.loras import NetworkFile, _quiet, list_files

_STATE = "_gambarkan_embeddings"  # pipe attribute: token -> file signature


def named_in(text: str, dirs: Iterable[Path]) -> list[NetworkFile]:
    """Embedding files whose name appears in ``text`` as a whole word."""
    found = []
    for file in list_files(dirs, "embedding"):
        if re.search(rf"(?<!\w){re.escape(file.name)}(?!\w)", text):
            found.append(file)
    return found


def _tensors(file: NetworkFile, sdxl: bool) -> list[Any]:
    """The embedding tensor for each text encoder of the pipeline, in pipeline order."""
    from safetensors.torch import load_file

    from gambarkan.models.safety import check_file

    check_file(file.path)  # format by bytes: a pickle named .safetensors is refused clearly
    try:
        data = load_file(str(file.path))
    except Exception as exc:  # noqa: BLE001 - diffusers/transformers raise many types for a bad embedding
        raise ModelLoadError(f"embedding '{file.name}' could not be read: {exc}", "is the file complete?") from None
    if sdxl:
        if "clip_l" in data and "clip_g" in data:
            return [data["clip_l"], data["clip_g"]]
        raise ModelLoadError(f"embedding '{file.name}' is not an SDXL embedding", "use one made for SDXL with this model")
    if "emb_params" in data:
        return [data["emb_params"]]
    if len(data) == 1:
        return [next(iter(data.values()))]
    raise ModelLoadError(
        f"embedding '{file.name}' is not an SD 1.x/2.x embedding (keys: {', '.join(sorted(data)[:4])})",
        "use one made for this model",
    )


def load(pipe: Any, files: list[NetworkFile]) -> None:
    """Load ``files`` into ``pipe`` (once; again when the file changed)."""
    state = pipe.__dict__.setdefault(_STATE, {})
    sdxl = hasattr(pipe, "text_encoder_2")
    pairs = [(pipe.tokenizer, pipe.text_encoder)] + ([(pipe.tokenizer_2, pipe.text_encoder_2)] if sdxl else [])
    pairs = [(t, e) for t, e in pairs if t is not None and e is not None]
    for file in files:
        if state.get(file.name) == file.signature:
            continue
        tensors = _tensors(file, sdxl)
        with _quiet():
            if file.name in state:
                for tokenizer, encoder in pairs:
                    pipe.unload_textual_inversion(file.name, tokenizer=tokenizer, text_encoder=encoder)
                del state[file.name]
            done: list[tuple[Any, Any]] = []
            try:
                for tensor, (tokenizer, encoder) in zip(tensors, pairs):
                    pipe.load_textual_inversion(tensor, token=file.name, tokenizer=tokenizer, text_encoder=encoder)
                    done.append((tokenizer, encoder))
            except ValueError as exc:
                for tokenizer, encoder in done:  # undo a half-done load (SDXL: one encoder)
                    pipe.unload_textual_inversion(file.name, tokenizer=tokenizer, text_encoder=encoder)
                raise ModelLoadError(
                    f"embedding '{file.name}' could not be loaded: {str(exc).splitlines()[0][:200]}",
                    "is it made for this model (SD 1.x / SD 2.x / SDXL)?",
                ) from None
        state[file.name] = file.signature
