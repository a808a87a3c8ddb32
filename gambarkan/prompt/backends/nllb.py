"""NLLB backend: Meta's NLLB-200 for Indonesian and regional languages (Javanese, Sundanese ...).

The weights are licensed CC-BY-NC 4.0 (non-commercial use only); translate_prompt adds
``LICENCE_NOTICE`` to the notes whenever this backend is used.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from gambarkan.errors import DependencyMissingError, ModelLoadError, NetworkError
from gambarkan.prompt.backends.marian import _clean, _is_network_error, require_hub

MODEL_ID = "facebook/nllb-200-distilled-600M"
LICENCE_NOTICE = (
    "NLLB-200 weights are licensed CC-BY-NC 4.0: non-commercial use only "
    "(see https://huggingface.co/facebook/nllb-200-distilled-600M)"
)
# our language codes -> NLLB's FLORES-200 codes
SOURCE_CODES = {
    "id": "ind_Latn", "mixed": "ind_Latn", "jv": "jav_Latn", "su": "sun_Latn",
    "ban": "ban_Latn", "min": "min_Latn", "ms": "zsm_Latn",
}


def weights_available(model_id: str = MODEL_ID) -> bool:
    from gambarkan.prompt.backends.marian import weights_available as _available

    return _available(model_id)


class NllbBackend:
    """Translate with NLLB-200, choosing the source language per phrase."""

    name = "nllb"

    def __init__(self, model_id: str = MODEL_ID, offline: bool = False, device: str = "cpu") -> None:
        self.model_id = model_id
        self.offline = offline
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            try:
                import sentencepiece  # noqa: F401
                from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
            except ImportError as exc:
                raise DependencyMissingError(
                    f"the nllb translator needs transformers and sentencepiece ({exc.name} is missing)",
                    "pip install 'gambarkan[nllb]', or use --translator glossary",
                ) from None
            local_only = self.offline and not Path(self.model_id).is_dir()
            if local_only and not weights_available(self.model_id):
                raise NetworkError(
                    f"the nllb translator's weights ({self.model_id}) are not downloaded and offline mode is on",
                    "connect once without --offline to download them (~2.5 GB), or use --translator glossary",
                )
            if not local_only and not weights_available(self.model_id):
                require_hub(self.model_id, "nllb", "~2.5 GB")
            try:
                tokenizer = AutoTokenizer.from_pretrained(self.model_id, local_files_only=local_only)
                model = AutoModelForSeq2SeqLM.from_pretrained(self.model_id, local_files_only=local_only)
            except Exception as exc:  # transformers and safetensors raise many kinds for missing or bad files
                if not weights_available(self.model_id) and _is_network_error(exc):
                    raise NetworkError(
                        f"the nllb translator's weights ({self.model_id}) are not downloaded and cannot be fetched now",
                        "connect once without --offline to download them (~2.5 GB), or use --translator glossary",
                    ) from None
                raise ModelLoadError(f"cannot load the nllb translator: {str(exc).splitlines()[0]}", "use --translator glossary") from None
            model.eval()
            self._tokenizer, self._model = tokenizer, model.to(self.device)

    def translate(self, texts: list[str], langs: list[str] | None = None) -> list[str]:
        if not texts:
            return []
        self.load()
        import torch

        langs = langs or ["id"] * len(texts)
        results: list[str] = []
        target = self._tokenizer.convert_tokens_to_ids("eng_Latn")
        for text, lang in zip(texts, langs):
            self._tokenizer.src_lang = SOURCE_CODES.get(lang, "ind_Latn")
            batch = self._tokenizer([text], return_tensors="pt", truncation=True, max_length=256)
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with torch.inference_mode():
                out = self._model.generate(**batch, forced_bos_token_id=target, num_beams=4, max_new_tokens=int(batch["input_ids"].shape[1] * 2 + 8))
            results.append(_clean(self._tokenizer.batch_decode(out, skip_special_tokens=True)[0]))
        return results
