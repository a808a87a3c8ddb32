"""Point 10 (parsers): a short hypothesis run of every fuzz target in benchmarks/fuzz.py.

A target returns or raises GambarkanError; anything else fails. ``python benchmarks/fuzz.py``
runs the same targets for longer (with atheris when installed). The regression inputs are
the ones the longer runs found; each crashed before its fix.
"""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gambarkan.errors import GambarkanError

_spec = importlib.util.spec_from_file_location("gambarkan_fuzz", Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz.py")
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)  # type: ignore[union-attr]

PROMPT_ALPHABET = st.sampled_from(list("()[]:|\\<>{}.,-+0123456789eE BREAKAND lora:x") + ["BREAK", "<lora:", "(x:", "[a:b:", "\\(", "AND", "1e400", "nan"])
INPUTS = {
    "prompt": st.lists(PROMPT_ALPHABET, max_size=40).map(lambda parts: "".join(parts).encode()) | st.binary(max_size=200),
    "png": st.binary(max_size=300) | st.text(max_size=200).map(lambda s: ("a\nNegative prompt: b\nSteps: 2, " + s).encode("utf-8", "surrogatepass")),
    "png-chunks": st.binary(max_size=300),
    "catalog": st.lists(
        st.sampled_from(["[packages.x]\n", "[packages]\n", "packages = 1\n", 'source = "a/b"\n', "steps = ", '"abc"', "1e400", "[1]", "inf", "\n", 'kind = "sd15"\n', 'files = "*.json"\n', "[packages.\"../x\"]\n", "x = 1\n", "a = [[[[", "\xff"]),
        max_size=12,
    ).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass"))
    | st.binary(max_size=200),
    "safetensors": st.binary(max_size=300),
}
EXAMPLES = {"prompt": 300, "png": 150, "png-chunks": 150, "catalog": 200, "safetensors": 200}

REGRESSIONS = {
    "safetensors": [base64.b64decode("LsjwJ8hQSwAAAwQ=")],  # unknown dtype: we accepted what the library refuses
    "png": [base64.b64decode("AdoAAAAAAAAAAAAAAAAAAAAAAAAA")],  # SGI header: Pillow raised ValueError
    "prompt": [b"(x:" + b"9" * 400 + b")", b"(" * 5000 + b"x", b"<lora:x:inf>", b"<lora:x:nan>"],  # inf weights
    "catalog": [b"packages = 1", b"[packages]\nx = 1", b'[packages.x]\nsource="a/b"\nsteps=inf', b'[packages."../../x"]\nsource="a/b"', b"a=" + b"[" * 50000],
}


def test_every_target_has_a_strategy() -> None:
    assert set(INPUTS) == set(fuzz.TARGETS) == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_regressions(name: str) -> None:
    for data in REGRESSIONS[name]:
        try:
            fuzz.TARGETS[name](data)
        except GambarkanError:
            pass


@pytest.mark.parametrize("name", sorted(fuzz.TARGETS))
def test_fuzz_target(name: str) -> None:
    target = fuzz.TARGETS[name]
    seen = []

    @settings(max_examples=EXAMPLES[name], deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(INPUTS[name])
    def run(data: bytes) -> None:
        seen.append(1)
        try:
            target(data)
        except GambarkanError:
            pass

    run()
    assert len(seen) >= EXAMPLES[name] // 2  # the run really executed
