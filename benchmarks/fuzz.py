"""Fuzz the parsers that read untrusted input: prompts, PNG parameters, catalogs, safetensors headers.

Each target takes bytes and either returns or raises ``gambarkan.errors.GambarkanError``;
anything else (an unhandled exception, a broken invariant) is a bug. The test suite runs
every target briefly through hypothesis (tests/hardening/test_fuzz.py); run longer here:

    python benchmarks/fuzz.py                          # every target, 60 s each (atheris when installed)
    python benchmarks/fuzz.py safetensors --seconds 600
    python benchmarks/fuzz.py --engine hypothesis --runs 20000

Prints executions per target; a crash prints the input (hex) and exits 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gambarkan.errors import GambarkanError  # noqa: E402

_TMP = Path(tempfile.mkdtemp(prefix="gambarkan-fuzz-"))


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


# --- targets --------------------------------------------------------------------------------


def target_prompt(data: bytes) -> None:
    """A1111 prompt grammar: lossless round trip, finite weights, schedules in range."""
    from gambarkan.prompt import syntax

    text = _text(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert syntax.render(syntax.parse(text)) == text, "render(parse(p)) != p"
        for steps in (1, 2, 20):
            schedule = syntax.prompt_schedule(text, steps)
            assert schedule and all(1 <= step <= steps for step, _ in schedule), schedule
            assert schedule[-1][0] == steps
            for _, plain in schedule:
                pieces = syntax.parse_attention(plain)
                assert all(isinstance(t, str) and math.isfinite(w) for t, w in pieces), pieces
        stripped, loras, _problems = syntax.extract_tags(text, warn=False)
        assert isinstance(stripped, str) and all(math.isfinite(w) for _, w in loras), loras
        parts = syntax.text_segments(text)
        assert syntax.replace_text_segments(text, parts) == text
        syntax.check(text)


def target_png_parameters(data: bytes) -> None:
    """A1111 ``parameters`` text, and whole (broken) image files read for their metadata."""
    from gambarkan.outputs import png

    text = _text(data)
    parsed = png.parse_parameters(text)
    assert isinstance(parsed["prompt"], str) and isinstance(parsed["negative_prompt"], str)
    # the same bytes as an image file: as they are, and behind a PNG signature
    for name, blob in (("a.png", data), ("b.png", b"\x89PNG\r\n\x1a\n" + data)):
        path = _TMP / name
        path.write_bytes(blob)
        try:
            png.read_parameters(path)
        except GambarkanError:
            pass


def target_png_chunks(data: bytes) -> None:
    """A valid PNG whose ``parameters`` chunk (tEXt or iTXt) carries the fuzz bytes."""
    import zlib

    from gambarkan.outputs import png

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00\x00")
    kind = b"iTXt" if data[:1] == b"i" else b"tEXt"
    body = b"parameters\x00\x00\x00\x00\x00" + data[1:] if kind == b"iTXt" else b"parameters\x00" + data[1:]
    blob = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(kind, body) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    path = _TMP / "chunk.png"
    path.write_bytes(blob)
    try:
        parsed = png.read_parameters(path)
        assert isinstance(parsed["raw"], str)
    except GambarkanError:
        pass


def target_catalog(data: bytes) -> None:
    """A user ``models.toml`` with arbitrary content: packages load or one clear error."""
    from gambarkan.config import Settings
    from gambarkan.models import catalog

    home = _TMP / "home"
    settings = Settings.from_env({"GAMBARKAN_HOME": str(home)})
    path = catalog.user_catalog_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    try:
        packages = catalog.load_catalog(settings)
    except GambarkanError:
        return
    for name, spec in packages.items():
        if not spec.builtin:
            assert catalog.NAME_RE.match(name), name
            assert spec.kind in catalog.KINDS and all(isinstance(f, str) for f in spec.files)
            json.dumps(spec.to_dict())


def structured_safetensors(data: bytes) -> bytes:
    """Bytes that look like safetensors: a JSON header built from ``data``, then some data bytes."""
    dtypes = ["U8", "F16", "F32", "I64", "BOOL", "BF16", "F8_E4M3", "X9"]
    header: dict[str, object] = {}
    i = 0
    count = data[0] % 5 if data else 0
    i += 1
    for n in range(count):
        chunk = data[i : i + 5].ljust(5, b"\x00")
        i += 5
        start, length, dtype, dims = chunk[0] % 40, chunk[1] % 40, dtypes[chunk[2] % len(dtypes)], chunk[3] % 3
        shape = [max(1, chunk[4] % 9)] * dims
        header[f"t{n}"] = {"dtype": dtype, "shape": shape, "data_offsets": [start, start + length]}
    if data[i : i + 1] == b"m":
        header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header).encode()
    body = data[i + 1 : i + 1 + (data[i + 1] if len(data) > i + 1 else 0)]
    return struct.pack("<Q", len(blob)) + blob + body


def target_safetensors(data: bytes) -> None:
    """Our header validator never crashes and is never looser than the safetensors library."""
    from safetensors import safe_open

    from gambarkan.engine.pipelines import read_safetensors_header
    from gambarkan.models import safety

    for blob in (data, structured_safetensors(data)):
        path = _TMP / "fuzz.safetensors"
        path.write_bytes(blob)
        accepted = True
        for reader in (safety.check_file, read_safetensors_header):
            try:
                reader(path)
            except GambarkanError:
                accepted = False
        if accepted:  # then the real loader must read every tensor without complaint
            with safe_open(str(path), "np") as handle:
                for key in handle.keys():  # noqa: SIM118
                    handle.get_tensor(key)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "prompt": target_prompt,
    "png": target_png_parameters,
    "png-chunks": target_png_chunks,
    "catalog": target_catalog,
    "safetensors": target_safetensors,
}


# --- runners --------------------------------------------------------------------------------


def run_hypothesis(target: Callable[[bytes], None], runs: int, seconds: float) -> int:
    """Run ``target`` on up to ``runs`` hypothesis-generated inputs, or until ``seconds`` pass."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    count = 0
    deadline = time.monotonic() + seconds
    inputs = st.binary(max_size=512) | st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass"))
    while count < runs and time.monotonic() < deadline:
        batch = min(1000, runs - count)

        @settings(max_examples=batch, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(inputs)
        def body(data: bytes) -> None:
            nonlocal count
            count += 1
            target(data)

        body()
    return count


def run_atheris(name: str, seconds: float, runs: int) -> None:
    """Run one target under atheris (libFuzzer) in this process; it exits when done."""
    import atheris

    with atheris.instrument_imports():
        import gambarkan.engine.pipelines  # noqa: F401
        import gambarkan.models.catalog  # noqa: F401
        import gambarkan.models.safety  # noqa: F401
        import gambarkan.outputs.png  # noqa: F401
        import gambarkan.prompt.syntax  # noqa: F401

    target = TARGETS[name]

    def one(data: bytes) -> None:
        try:
            target(data)
        except GambarkanError:
            pass

    args = [sys.argv[0], f"-max_total_time={int(seconds)}", "-max_len=2048", "-print_final_stats=1", f"-artifact_prefix={_TMP}/"]
    if runs:
        args.append(f"-runs={runs}")
    atheris.Setup(args, one)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", default=[], help=f"targets (default: all): {', '.join(TARGETS)}")
    parser.add_argument("--engine", choices=["auto", "atheris", "hypothesis"], default="auto")
    parser.add_argument("--seconds", type=float, default=60.0, help="time per target")
    parser.add_argument("--runs", type=int, default=0, help="max inputs per target (0 = until --seconds)")
    args = parser.parse_args(argv)
    names = args.targets or list(TARGETS)
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "hypothesis"
    if engine == "atheris":
        import subprocess

        failed = 0
        for name in names:  # one process per target: libFuzzer exits the process when done
            print(f"== {name} (atheris, {args.seconds:g} s)", flush=True)
            code = subprocess.call([sys.executable, __file__, "--_atheris-child", name, str(args.seconds), str(args.runs)])
            failed += code != 0
        return 1 if failed else 0
    for name in names:
        started = time.monotonic()
        count = run_hypothesis(TARGETS[name], args.runs or 10**9, args.seconds)
        print(f"{name}: {count} executions in {time.monotonic() - started:.0f} s (hypothesis), no failures")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--_atheris-child":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        run_atheris(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(main())
