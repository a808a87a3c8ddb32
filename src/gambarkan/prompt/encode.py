"""A1111-style text conditioning for diffusers pipelines (SD 1.x, SD 2.x, SDXL).

Each plain prompt is split into weighted pieces, tokenized, cut into 75-token chunks (BREAK
starts a new one; a chunk that fills up moves the text after a comma in its last 20 tokens to
the next, like A1111), each chunk becomes ``BOS + 75 tokens + EOS`` and goes through the text
encoder(s) alone; the outputs are scaled by their weights, the original mean is restored, and
the chunks are concatenated. Prompt editing swaps the embeddings between denoising steps
through diffusers' ``callback_on_step_end``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gambarkan.prompt import syntax

CHUNK = 75
COMMA_BACKTRACK = 20  # A1111's default "comma padding backtrack"


@dataclass
class Chunk:
    """Token ids of one chunk without BOS/EOS, and each token's weight."""

    tokens: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)


def _piece_ids(pipe: Any, tokenizer: Any, text: str) -> list[int]:
    if not text:
        return []
    convert = getattr(pipe, "maybe_convert_prompt", None)
    if convert is not None:  # textual inversion: "name" -> "name name_1 ..." for multi-vector
        text = convert(text, tokenizer)
    return tokenizer(text, add_special_tokens=False, truncation=False, verbose=False).input_ids


def chunk_tokens(pipe: Any, tokenizer: Any, text: str) -> list[Chunk]:
    """Split a plain prompt (no editing syntax left) into weighted 75-token chunks."""
    comma = tokenizer.get_vocab().get(",</w>")
    chunks: list[Chunk] = []
    chunk = Chunk()
    last_comma = -1

    def close() -> None:
        nonlocal chunk, last_comma
        chunks.append(chunk)
        chunk, last_comma = Chunk(), -1

    for piece, weight in syntax.parse_attention(text):
        if weight == -1.0 and piece == syntax.BREAK:
            close()
            continue
        for token in _piece_ids(pipe, tokenizer, piece):
            if token == comma:
                last_comma = len(chunk.tokens)
            elif len(chunk.tokens) == CHUNK and last_comma != -1 and CHUNK - last_comma <= COMMA_BACKTRACK:
                cut = last_comma + 1
                moved = Chunk(chunk.tokens[cut:], chunk.weights[cut:])
                del chunk.tokens[cut:], chunk.weights[cut:]
                close()
                chunk = moved
            if len(chunk.tokens) == CHUNK:
                close()
            chunk.tokens.append(token)
            chunk.weights.append(weight)
    if chunk.tokens or not chunks:
        close()
    return chunks


def _encoders(pipe: Any) -> list[tuple[Any, Any]]:
    pairs = [(getattr(pipe, "tokenizer", None), getattr(pipe, "text_encoder", None))]
    pairs.append((getattr(pipe, "tokenizer_2", None), getattr(pipe, "text_encoder_2", None)))
    return [(tok, enc) for tok, enc in pairs if tok is not None and enc is not None]


def is_sdxl(pipe: Any) -> bool:
    """True for pipelines with SDXL-style conditioning (pooled embeddings, two encoders)."""
    return hasattr(pipe, "text_encoder_2")


def _execution_device(pipe: Any, pairs: Any) -> Any:
    """Where the text encoder runs: its weights' device, unless accelerate hooks move it there.

    ``pipe._execution_device`` walks every module of every component (tens of ms per generation
    on a CPU); diffusers' own call does that walk once more anyway.
    """
    encoder = pairs[0][1] if pairs else None
    if encoder is None:
        return pipe._execution_device
    first = next(encoder.parameters(), None)
    hooked = any(hasattr(m, a) for m in (encoder, *list(encoder.children())[:3]) for a in ("_hf_hook", "_diffusers_hook"))
    if first is None or first.device.type == "meta" or hooked:
        return pipe._execution_device  # offloaded: only accelerate's hooks know
    return first.device


class TextEncoder:
    """Encodes plain prompts for one pipeline and clip skip (A1111 meaning: 1 = last layer)."""

    def __init__(self, pipe: Any, clip_skip: int = 1) -> None:
        self.pipe = pipe
        self.sdxl = is_sdxl(pipe)
        self.pairs = _encoders(pipe)
        self.clip_skip = max(1, int(clip_skip or 1))
        self.device = _execution_device(pipe, self.pairs)
        self._empty: list[Any] | None = None

    def _hidden(self, encoder: Any, ids: list[int]) -> tuple[Any, Any]:
        import torch

        input_ids = torch.tensor([ids], device=self.device)
        layers = encoder.config.num_hidden_layers
        if self.sdxl:  # diffusers: penultimate layer by default, clip_skip k -> -(k + 2)
            out = encoder(input_ids, output_hidden_states=True)
            hidden = out.hidden_states[-min(self.clip_skip + 1, layers + 1)]
            pooled = out[0] if out[0].ndim == 2 else None
            return hidden, pooled
        if self.clip_skip == 1:
            return encoder(input_ids)[0], None
        out = encoder(input_ids, output_hidden_states=True)
        hidden = out.hidden_states[-min(self.clip_skip, layers)]
        # transformers 5 flattened CLIPTextModel (no .text_model); diffusers 0.42 breaks there
        final_norm = getattr(encoder, "text_model", encoder).final_layer_norm
        return final_norm(hidden), None

    def _encode_chunk(self, tokenizer: Any, encoder: Any, chunk: Chunk) -> tuple[Any, Any]:
        import torch

        pad = CHUNK - len(chunk.tokens)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        ids = [tokenizer.bos_token_id, *chunk.tokens, tokenizer.eos_token_id] + [pad_id] * pad
        hidden, pooled = self._hidden(encoder, ids)
        if any(w != 1.0 for w in chunk.weights):
            weights = torch.tensor([1.0, *chunk.weights, 1.0] + [1.0] * pad, dtype=hidden.dtype, device=hidden.device)
            original_mean = hidden.mean()
            hidden = hidden * weights[None, :, None]
            new_mean = hidden.mean()
            if new_mean.abs() > 1e-12:  # A1111 divides blindly; a zero mean would give inf
                hidden = hidden * (original_mean / new_mean)
        return hidden, pooled

    @property
    def dtype(self) -> Any:
        if self.sdxl:
            return self.pairs[-1][1].dtype
        return self.pairs[0][1].dtype

    def encode(self, text: str) -> tuple[Any, Any]:
        """Embeddings (1, 77 * chunks, dim) and pooled (1, dim) or None for a plain prompt."""
        import torch

        per_encoder, pooled = [], None
        with torch.no_grad():
            for tokenizer, encoder in self.pairs:
                outs = [self._encode_chunk(tokenizer, encoder, c) for c in chunk_tokens(self.pipe, tokenizer, text)]
                per_encoder.append([h for h, _ in outs])
                if outs[0][1] is not None:
                    pooled = outs[0][1]  # A1111: pooled output of the first chunk
            count = max(len(hs) for hs in per_encoder)
            parts = []
            for k, hs in enumerate(per_encoder):
                if len(hs) < count:  # (evaluated lazily: the empty chunk costs a text-encoder pass)
                    hs = hs + [self.empty()[k]] * (count - len(hs))
                parts.append(torch.cat(hs, dim=1))
            embeds = torch.cat(parts, dim=-1).to(self.dtype)
        return embeds, None if pooled is None else pooled.to(self.dtype)

    def empty(self) -> list[Any]:
        """Per encoder: the hidden states of an empty chunk (used to pad shorter prompts)."""
        if self._empty is None:
            self._empty = [self._encode_chunk(t, e, Chunk())[0] for t, e in self.pairs]
        return self._empty

    def empty_full(self) -> Any:
        """The empty chunk with all encoders joined, (1, 77, dim)."""
        import torch

        return torch.cat(self.empty(), dim=-1).to(self.dtype)


def encode_prompt(pipe: Any, text: str, clip_skip: int = 1) -> tuple[Any, Any]:
    """Embeddings and pooled (SDXL) for one plain prompt; for tests and tools."""
    return TextEncoder(pipe, clip_skip).encode(text)


def _entry(schedule: list[tuple[int, str]], step: int) -> str:
    """The text used at 0-based sampler step ``step`` (A1111: first entry with step <= until)."""
    for until, text in schedule:
        if step <= until:
            return text
    return schedule[-1][1]


@dataclass
class Conditioning:
    """What the engine hands the pipeline: kwargs, and a per-step hook when prompts change."""

    pipeline_kwargs: dict[str, Any]
    steps: int
    chunks: int
    schedule: list[tuple[str, str]]  # (positive, negative) text for each 0-based step
    embeds: dict[tuple[str, bool], tuple[Any, Any]]
    sdxl: bool
    batch_size: int = 1
    on_step: Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]] | None = None

    def step_of(self, pipe: Any, index: int) -> int:
        """The prompt step of callback index ``index`` (second-order samplers loop more often)."""
        total = getattr(pipe, "_num_timesteps", None) or self.steps
        return min(self.steps - 1, index * self.steps // max(1, total))

    def _switch(self, pipe: Any, index: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        import torch

        now = self.schedule[self.step_of(pipe, index)]
        nxt = self.schedule[self.step_of(pipe, index + 1)]
        if now == nxt:
            return kwargs
        latents = kwargs.get("latents")
        n = latents.shape[0] if latents is not None else self.batch_size
        pos, pos_pooled = self.embeds[(nxt[0], False)]
        neg, neg_pooled = self.embeds[(nxt[1], True)]
        cfg = bool(getattr(pipe, "do_classifier_free_guidance", True))
        device = pipe._execution_device

        def stack(p: Any, q: Any) -> Any:
            rows = [q] * n + [p] * n if cfg else [p] * n
            return torch.cat(rows, dim=0).to(device)

        kwargs["prompt_embeds"] = stack(pos, neg)
        if self.sdxl:
            kwargs["add_text_embeds"] = stack(pos_pooled, neg_pooled)
        return kwargs


def build_conditioning(
    pipe: Any,
    prompt: str,
    negative: str = "",
    clip_skip: int = 1,
    steps: int = 20,
    batch_size: int = 1,
    guidance: bool = True,
) -> Conditioning:
    """Encode ``prompt`` and ``negative`` (A1111 syntax) for ``pipe`` and ``steps`` steps.

    Returns the kwargs to pass to the pipeline (prompt_embeds, negative_prompt_embeds and for
    SDXL the pooled ones) and ``on_step`` for ``callback_on_step_end`` when prompt editing
    changes the conditioning during sampling (else None). ``<lora:...>`` tags are ignored
    here (see gambarkan.models.loras); malformed prompts give one PromptWarning each.
    With ``guidance=False`` (CFG scale <= 1, e.g. Turbo models) the pipeline never uses the
    negative side, so it is not encoded: zeros of the right shape stand in for it.
    """
    import torch

    syntax.warn_if_malformed(prompt, "prompt")
    syntax.warn_if_malformed(negative, "negative prompt")
    steps = max(1, int(steps))
    encoder = TextEncoder(pipe, clip_skip)
    pos_schedule = syntax.prompt_schedule(prompt, steps)
    neg_schedule = syntax.prompt_schedule(negative, steps)
    schedule = [(_entry(pos_schedule, i), _entry(neg_schedule, i)) for i in range(steps)]
    zero_empty_negative = encoder.sdxl and bool(getattr(pipe.config, "force_zeros_for_empty_prompt", False))

    embeds: dict[tuple[str, bool], tuple[Any, Any]] = {}
    for pos, neg in schedule:
        for text, negative_side in ((pos, False), (neg, True)):
            if (text, negative_side) not in embeds and (guidance or not negative_side):
                embeds[(text, negative_side)] = encoder.encode(text)
    length = max(e.shape[1] for e, _ in embeds.values())
    for key, (emb, pooled) in embeds.items():
        if emb.shape[1] < length:
            missing = (length - emb.shape[1]) // (CHUNK + 2)
            emb = torch.cat([emb] + [encoder.empty_full()] * missing, dim=1)
        text, negative_side = key
        if negative_side and text == "" and zero_empty_negative:  # diffusers and A1111 zero it
            emb, pooled = torch.zeros_like(emb), torch.zeros_like(pooled)
        embeds[key] = (emb, pooled)
    if not guidance:
        emb, pooled = next(iter(embeds.values()))
        unused = (torch.zeros_like(emb), None if pooled is None else torch.zeros_like(pooled))
        for _, neg in schedule:
            embeds[(neg, True)] = unused

    pos, neg = schedule[0]
    kwargs: dict[str, Any] = {"prompt_embeds": embeds[(pos, False)][0], "negative_prompt_embeds": embeds[(neg, True)][0]}
    if encoder.sdxl:
        kwargs["pooled_prompt_embeds"] = embeds[(pos, False)][1]
        kwargs["negative_pooled_prompt_embeds"] = embeds[(neg, True)][1]
    cond = Conditioning(kwargs, steps, length // (CHUNK + 2), schedule, embeds, encoder.sdxl, batch_size)
    if len(set(schedule)) > 1:
        cond.on_step = cond._switch
    return cond
