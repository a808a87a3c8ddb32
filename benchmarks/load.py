"""Load test on loopback: N asyncio clients hammer a real gambarkan server for a bounded time.

Starts uvicorn in this process with the tiny offline model (or ``--model``), then runs
``--clients`` concurrent clients for ``--seconds``, each posting small txt2img requests one
after another. Reports requests served, p50/p95 latency, errors (any non-200) and the server
process's memory growth (RSS after a warm-up vs at the end).

    python benchmarks/load.py --clients 8 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

KEY = "load-test-key"


def start_server(model: str, home: Path) -> tuple[object, int]:
    import socket

    import uvicorn

    from gambarkan.config import Settings
    from gambarkan.server.app import create_app
    from gambarkan.server.state import ServerConfig

    settings = Settings.from_env({"GAMBARKAN_HOME": str(home), "HF_HUB_OFFLINE": "1"})
    app = create_app(settings, config=ServerConfig(model=model, api_keys=[KEY], queue_size=256, max_steps=10))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, port


async def client(url: str, index: int, until: float, latencies: list[float], errors: list[str]) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=300) as http:
        n = 0
        while time.monotonic() < until:
            body = {
                "prompt": f"a red boat {index}-{n}",
                "seed": index * 1000 + n,
                "steps": 2,
                "width": 64,
                "height": 64,
            }
            started = time.monotonic()
            try:
                response = await http.post("/sdapi/v1/txt2img", json=body)
                if response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text[:120]}")
                else:
                    latencies.append(time.monotonic() - started)
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                errors.append(f"{type(exc).__name__}: {exc}")
            n += 1


def main(argv: list[str] | None = None) -> int:
    import psutil

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=int, default=5, help="requests before memory is measured")
    parser.add_argument("--model", default=None, help="model folder (default: a tiny random SD 1.5 model)")
    parser.add_argument("--samples", type=int, default=10, help="RSS samples taken through the run")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="gambarkan-load-"))
    model = args.model
    if model is None:
        from gambarkan.testing import save_tiny_model

        model = str(save_tiny_model(home / "tiny-sd15"))
    server, port = start_server(model, home / "home")
    url = f"http://127.0.0.1:{port}"
    latencies: list[float] = []
    errors: list[str] = []
    process = psutil.Process()
    asyncio.run(_warm(url, args.warmup, errors))
    gc.collect()
    rss_start = process.memory_info().rss
    started = time.monotonic()
    until = started + args.seconds

    rss_series: list[int] = []

    async def sample_rss() -> None:
        step = args.seconds / max(args.samples, 1)
        while time.monotonic() < until:
            await asyncio.sleep(min(step, max(until - time.monotonic(), 0)))
            rss_series.append(process.memory_info().rss)

    async def run_all() -> None:
        clients = [client(url, i, until, latencies, errors) for i in range(args.clients)]
        await asyncio.gather(sample_rss(), *clients)

    asyncio.run(run_all())
    elapsed = time.monotonic() - started
    gc.collect()
    rss_end = process.memory_info().rss
    rss_mid = rss_series[len(rss_series) // 2 - 1] if len(rss_series) >= 2 else rss_start
    server.should_exit = True  # type: ignore[attr-defined]
    lat = sorted(latencies)
    p50 = statistics.median(lat) if lat else float("nan")
    p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else float("nan")
    print(f"clients {args.clients}, {elapsed:.0f} s, served {len(lat)} ({len(lat) / elapsed:.2f}/s), "
          f"p50 {p50:.2f} s, p95 {p95:.2f} s, errors {len(errors)}, "
          f"RSS {rss_start / 2**20:.0f} -> {rss_end / 2**20:.0f} MiB ({(rss_end - rss_start) / 2**20:+.0f} MiB), "
          f"second half {(rss_end - rss_mid) / 2**20:+.0f} MiB")  # fmt: skip
    print("RSS samples (MiB):", " ".join(f"{r / 2**20:.0f}" for r in rss_series))
    for error in errors[:5]:
        print("  error:", error)
    return 1 if errors else 0


async def _warm(url: str, count: int, errors: list[str]) -> None:
    latencies: list[float] = []
    await client(url, 9999, time.monotonic() + 0.001, latencies, errors)  # one request
    for _ in range(max(0, count - 1)):
        await client(url, 9998, time.monotonic() + 0.001, latencies, errors)


if __name__ == "__main__":
    sys.exit(main())
