"""NLLB backend: Meta's NLLB-200 for Indonesian and regional languages (Javanese, Sundanese ...).

The weights are licensed CC-BY-NC 4.0 (non-commercial use only); translate_prompt adds
``LICENCE_NOTICE`` to the notes whenever this backend is used.
"""

from __future__ import annotations

from typing import Any

from gambarkan.prompt.backends.marian import Seq2SeqBackend, _clean

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


class NllbBackend(Seq2SeqBackend):
    """Translate with NLLB-200, choosing the source language per phrase."""

    name = "nllb"
    default_model = MODEL_ID
    download_size = "~2.5 GB"
    install_hint = "pip install 'gambarkan[nllb]'"

    def _classes(self) -> tuple[Any, Any]:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        return AutoTokenizer, AutoModelForSeq2SeqLM

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
