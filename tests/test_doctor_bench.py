"""``gambarkan doctor`` and ``gambarkan bench`` on this machine, offline."""

from __future__ import annotations

import json
from pathlib import Path


def test_doctor_runs_a_tiny_generation_and_reports(cli):
    run = cli("doctor", "--json", "--no-network")
    data = json.loads(run.stdout)
    names = {c["name"]: c for c in data["checks"]}
    assert names["torch"]["status"] == "ok"
    assert names["tiny generation"]["status"] == "ok"
    assert "device" in names and "RAM" in names
    assert "memory mode high on cpu" in names["memory SDXL 1024x1024"]["detail"]  # the choice, explained
    assert data["ready"] is True and run.returncode == 0


def test_doctor_explains_the_memory_mode_each_model_family_gets():
    from gambarkan.doctor import check_memory_modes

    t4 = {c.name: c for c in check_memory_modes("cuda", free_vram_mb=15_000, free_ram_mb=12_000)}
    assert t4["memory SDXL 1024x1024"].detail.startswith("memory mode high on cuda")
    assert t4["memory SD 1.5 512x512"].status == "ok"
    small = {c.name: c for c in check_memory_modes("cuda", free_vram_mb=3_800, free_ram_mb=12_000)}
    assert small["memory SD 1.5 512x512"].status == "ok"
    assert small["memory SDXL 1024x1024"].detail.startswith("memory mode minimal")
    assert small["memory SDXL 1024x1024"].status == "warn" and "slowly" in small["memory SDXL 1024x1024"].fix


def _local_http_server():
    """A real HTTP server on a free loopback port that answers 200 (stands in for the Hub)."""
    import http.server
    import threading

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_doctor_reports_a_reachable_hub_as_ok():
    from gambarkan.doctor import check_network, summary

    server = _local_http_server()
    try:
        check = check_network(timeout=5.0, url=f"http://127.0.0.1:{server.server_address[1]}/api/models")
    finally:
        server.shutdown()
    assert (check.status, check.detail, check.fix) == ("ok", "reachable (HTTP 200)", "")
    assert summary([check]) == (True, "Ready: this machine can run gambarkan.")


def test_doctor_reports_the_hub_unreachable_as_a_note():
    import socket

    from gambarkan.doctor import check_network, summary

    with socket.socket() as sock:  # a port nothing listens on: the connection is refused at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    check = check_network(timeout=5.0, url=f"http://127.0.0.1:{port}/api/models")
    assert check.status == "warn" and check.detail.startswith("not reachable (") and "refused" in check.detail.lower()
    assert "--model PATH" in check.fix
    ready, line = summary([check])
    assert ready and line.startswith("Ready, with notes: Hugging Face Hub: models must already be downloaded")


def test_bench_times_both_paths_on_one_pipeline_with_the_same_work(tiny_sd15_dir: Path):
    import torch

    from gambarkan.bench import format_bench, run_bench

    before = torch.get_num_threads()
    result = run_bench(model=str(tiny_sd15_dir), width=64, height=64, steps=2, rounds=2, threads=2)
    assert len(result.diffusers_runs) == 2 and len(result.gambarkan_runs) == 2
    assert result.ratio == result.gambarkan_s / result.diffusers_s
    assert result.ratio_spread[0] <= result.ratio <= result.ratio_spread[1]
    assert result.device == "cpu" and result.steps == 2
    # Both sides did the same work: same image within float tolerance, same settings, same threads.
    assert 0 <= result.image_diff <= 1, result.image_diff
    assert result.settings["plain"] == result.settings["ours"]  # read back from the pipeline after each call
    assert result.settings["ours"] == {**result.settings["ours"], "scheduler": "EulerDiscreteScheduler", "cfg": 7.0, "steps": 2, "size": [64, 64]}
    assert result.threads == {"plain": 2, "ours": 2}
    assert torch.get_num_threads() == before  # the caller's setting comes back
    assert result.cpu["threads"] == 2 and "summary" in result.cpu
    report = format_bench(result)
    assert "2 torch threads on both sides" in report and "ratio (wall)" in report and "max pixel difference" in report


def test_bench_cli_json_has_both_timings_and_the_ratio(cli, tiny_sd15_dir: Path):
    import json

    run = cli("bench", "--model", str(tiny_sd15_dir), "-W", "64", "-H", "64", "-s", "2", "-r", "1", "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["diffusers_s"] > 0 and data["gambarkan_s"] > 0
    assert data["ratio"] == data["gambarkan_s"] / data["diffusers_s"]
    assert (data["width"], data["steps"], data["rounds"]) == (64, 2, 1)
    assert data["threads"]["plain"] == data["threads"]["ours"] >= 1 and data["image_diff"] <= 1
    assert data["cpu"]["name"] and isinstance(data["cpu"]["bf16"], bool)
