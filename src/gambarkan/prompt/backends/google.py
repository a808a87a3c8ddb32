"""Google backend through deep-translator: online, opt-in only, with a short timeout.

Never chosen by ``auto``: the prompt leaves the machine. translate_prompt falls back to
the glossary (and says so) when the service cannot be reached in time.
"""

from __future__ import annotations

import concurrent.futures

from gambarkan.errors import DependencyMissingError, NetworkError

TIMEOUT_S = 5.0
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="gambarkan-google")


class GoogleBackend:
    """Translate phrases with Google Translate (deep-translator's GoogleTranslator)."""

    name = "google"

    def __init__(self, timeout: float = TIMEOUT_S, offline: bool = False) -> None:
        self.timeout = timeout
        self.offline = offline

    def check(self) -> None:
        if self.offline:
            raise NetworkError("the google translator needs the network but offline mode is on", "use --translator glossary")
        try:
            import deep_translator  # noqa: F401
        except ImportError:
            raise DependencyMissingError(
                "the google translator needs the deep-translator package", "pip install deep-translator, or use --translator glossary"
            ) from None

    def translate(self, texts: list[str], langs: list[str] | None = None) -> list[str]:
        if not texts:
            return []
        self.check()
        from deep_translator import GoogleTranslator

        def work() -> list[str]:
            tr = GoogleTranslator(source="id", target="en")
            return [tr.translate(t) or t for t in texts]

        future = _POOL.submit(work)
        try:
            return future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            raise NetworkError(f"google translate did not answer within {self.timeout:g}s", "check the network or use --translator glossary") from None
        except Exception as exc:  # noqa: BLE001 - requests/deep-translator errors: no network, blocked, quota
            raise NetworkError(f"google translate failed: {type(exc).__name__}", "check the network or use --translator glossary") from None
