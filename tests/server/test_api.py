"""Queue limits, validation errors, auth, limits and file safety through the ASGI app (no network)."""

from __future__ import annotations

import base64
import json
import os

import pytest

from tests.server.conftest import InstantEngine, server_settings

KEY = "k-0123456789abcdef"


@pytest.fixture
def make_client(tmp_path):
    """``make_client(**config)`` -> a started TestClient on an InstantEngine app; closed afterwards."""
    from fastapi.testclient import TestClient

    from gambarkan.server.app import create_app
    from gambarkan.server.state import ServerConfig

    clients = []

    def make(engine=None, **config):
        settings = server_settings(tmp_path / "home")
        config.setdefault("model", "instant-model")
        app = create_app(settings, engine or InstantEngine(settings), config=ServerConfig(**config))
        client = TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.app.state.gambarkan.queue.resume()
        client.__exit__(None, None, None)


def state_of(client):
    return client.app.state.gambarkan


def test_full_queue_answers_429_with_retry_after_and_cancel_frees_it(make_client):
    client = make_client(queue_size=2)
    queue = state_of(client).queue
    queue.pause()
    ids = [client.post("/api/jobs", json={"prompt": f"job {i}"}).json()["id"] for i in range(2)]
    assert [queue.position(queue.get(i)) for i in ids] == [1, 2]
    full = client.post("/api/jobs", json={"prompt": "one too many"})
    assert full.status_code == 429
    assert int(full.headers["Retry-After"]) >= 1
    assert full.json()["error"]["code"] == "queue_full"
    # OpenAI and A1111 requests share the queue and get the same answer.
    assert client.post("/v1/images/generations", json={"prompt": "x"}).status_code == 429
    assert client.post("/sdapi/v1/txt2img", json={"prompt": "x"}).status_code == 429

    cancelled = client.delete(f"/api/jobs/{ids[0]}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    # The queued job's stream ends with a cancelled error; the other moved up to position 1.
    with client.stream("GET", f"/api/jobs/{ids[0]}/events") as stream:
        text = "".join(stream.iter_text())
    assert text.index("event: queued") < text.index("event: error") and '"cancelled"' in text
    assert client.get(f"/api/jobs/{ids[1]}").json()["position"] == 1
    assert client.post("/api/jobs", json={"prompt": "fits again"}).status_code == 202
    queue.resume()


def test_unknown_job_is_404_json(make_client):
    client = make_client()
    for response in (
        client.get("/api/jobs/nope"),
        client.delete("/api/jobs/nope"),
        client.get("/api/jobs/nope/events"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "path, body, status, words",
    [
        ("/api/jobs", {"prompt": "x", "width": 65}, 422, "multiple of 8"),
        ("/api/jobs", {"prompt": "x", "steps": 0}, 422, "steps"),
        ("/api/jobs", {"prompt": "x", "steps": 40}, 422, "limit of 30"),
        ("/api/jobs", {"prompt": "x", "batch_size": 4, "count": 2}, 422, "limit of 4"),
        ("/api/jobs", {"prompt": "x" * 600}, 422, "limit of 500"),
        ("/api/jobs", {"prompt": "x", "out_dir": "/tmp"}, 422, "out_dir"),
        ("/api/jobs", {"prompt": "x", "model": "/etc/passwd"}, 404, "unknown model"),
        ("/api/jobs", {"prompt": "x", "model": "../../models/evil.ckpt"}, 404, "unknown model"),
        ("/api/jobs", {"prompt": "x", "preset": "animee"}, 404, "did you mean"),
        ("/api/jobs", {"prompt": "x", "sampler": "eulr a"}, 422, "Euler a"),
        ("/api/jobs", {"prompt": "x", "colour": "red"}, 422, "colour"),
        ("/api/jobs", {"prompt": "   "}, 422, "prompt is empty"),
        ("/api/jobs", {"prompt": "x", "preview_every": -1}, 422, "preview_every"),
        ("/api/jobs", [1, 2], 422, "JSON object"),
        ("/v1/images/generations", {"prompt": "x", "size": "big"}, 422, "size"),
        ("/v1/images/generations", {"prompt": "x", "n": 0}, 422, "n"),
        ("/v1/images/generations", {"model": "instant-model"}, 422, "prompt is required"),
        ("/v1/images/generations", {"prompt": "x", "model": "sd-turbo-typo"}, 404, "unknown model"),
        ("/sdapi/v1/txt2img", {"prompt": "x", "enable_hr": True, "hr_upscaler": "ultrasharpp"}, 422, "unknown upscaler 'ultrasharpp'"),
        ("/sdapi/v1/txt2img", {"prompt": "x", "enable_hr": True, "hr_scale": 5}, 422, "hr_scale"),
        ("/sdapi/v1/img2img", {"prompt": "x", "init_images": ["bm90IGFuIGltYWdl"]}, 422, "init_image: not an image"),
        ("/sdapi/v1/img2img", {"prompt": "x", "init_images": ["/etc/passwd"]}, 422, "not valid base64"),
        ("/sdapi/v1/img2img", {"prompt": "x"}, 422, "init_images: give one image"),
        ("/sdapi/v1/extra-single-image", {"image": "@@@"}, 422, "not valid base64"),
        ("/sdapi/v1/png-info", {"image": "aGVsbG8="}, 422, "not an image"),
        ("/sdapi/v1/txt2img", {"prompt": "x", "alwayson_scripts": {"ADetailer": {"args": []}}}, 422, "ADetailer"),
        ("/sdapi/v1/txt2img", {"prompt": "x", "alwayson_scripts": {"ControlNet": {"args": [{"image": "bm90IGFuIGltYWdl", "module": "canny"}]}}}, 422, "not an image"),
        ("/sdapi/v1/txt2img", {"prompt": "x", "alwayson_scripts": {"ControlNet": {"args": "canny"}}}, 422, "must be a list"),
        ("/sdapi/v1/txt2img", {"prompt": "x", "sampler_name": "nope"}, 422, "sampler"),
        (
            "/sdapi/v1/txt2img",
            {"prompt": "x", "override_settings": {"sd_model_checkpoint": "C:\\models\\x.ckpt"}},
            404,
            "unknown model",
        ),
        ("/sdapi/v1/options", {"sd_model_checkpoint": "missing"}, 404, "sd_model_checkpoint"),
        ("/api/translate", {"negative_prompt": "x"}, 422, "prompt is required"),
    ],
)
def test_invalid_requests_get_one_line_json_errors(make_client, path, body, status, words):
    client = make_client(max_steps=30, max_images=4, max_prompt_chars=500)
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert words in error["message"], error
    assert "\n" not in error["message"] and "Traceback" not in response.text
    assert error["status"] == status


def test_malformed_json_and_huge_bodies(make_client):
    client = make_client(max_body_bytes=2048)
    broken = client.post("/api/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 422 and "error" in broken.json()
    huge = client.post("/v1/images/generations", json={"prompt": "x" * 5000})
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "body_too_large"

    def chunks():
        yield b'{"prompt": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    streamed = client.post("/api/jobs", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_unexpected_errors_are_500_json_without_internals(make_client):
    class BrokenEngine(InstantEngine):
        def generate(self, request, **kwargs):
            raise RuntimeError("secret internal detail /srv/models")

    client = make_client(engine=BrokenEngine(None))
    response = client.post("/v1/images/generations", json={"prompt": "x"})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "secret" not in response.text and "Traceback" not in response.text and "/srv" not in response.text
    # The worker survived: the next job runs (and fails the same clean way).
    assert client.post("/sdapi/v1/txt2img", json={"prompt": "x"}).status_code == 500


def test_images_are_confined_to_the_output_folder(make_client, tmp_path):
    client = make_client()
    out = state_of(client).settings.output_dir
    (out / "day").mkdir(parents=True)
    (out / "day" / "00001-1.png").write_bytes(b"\x89PNG fake")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret")
    os.symlink(secret, out / "day" / "00002-2.png")
    (out / "notes.txt").write_text("not an image")

    assert client.get("/api/images/day/00001-1.png").content == b"\x89PNG fake"
    attempts = [
        "/api/images/../secret.png",
        "/api/images/..%2fsecret.png",
        "/api/images/%2e%2e/%2e%2e/secret.png",
        "/api/images/day/..%2f..%2fsecret.png",
        "/api/images/%2Fetc%2Fpasswd",
        "/api/images//etc/passwd",
        "/api/images/day/00002-2.png",  # symlink out of the folder
        "/api/images/..%5c..%5csecret.png",
        "/api/images/notes.txt",
        "/api/images/day/00001-1.png%00.txt",
        "/api/images/.hidden.png",
    ]
    for path in attempts:
        response = client.get(path)
        assert response.status_code in (400, 404), path
        assert b"secret" not in response.content and response.json()["error"]["code"] in (
            "invalid_image_name",
            "not_found",
        )


def test_auth_bearer_and_basic_health_open_key_never_echoed(make_client):
    client = make_client(api_keys=[KEY, "second-key"])
    assert client.get("/api/health").status_code == 200
    for path in ("/v1/models", "/sdapi/v1/sd-models", "/api/presets", "/openapi.json", "/docs", "/api/images/x.png"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "unauthorized"
    wrong = client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}x"})
    assert wrong.status_code == 401 and KEY not in wrong.text
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert client.get("/v1/models", headers={"Authorization": "Bearer second-key"}).status_code == 200
    basic = base64.b64encode(f"anyone:{KEY}".encode()).decode()
    assert client.get("/sdapi/v1/options", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    bad_basic = base64.b64encode(b"anyone:nope").decode()
    assert client.get("/sdapi/v1/options", headers={"Authorization": f"Basic {bad_basic}"}).status_code == 401
    assert client.get("/sdapi/v1/options", headers={"Authorization": "Basic %%%"}).status_code == 401
    ok = client.get("/sdapi/v1/options", headers={"Authorization": f"Bearer {KEY}"})
    assert KEY not in ok.text and "second-key" not in ok.text


def test_no_key_needed_on_loopback_without_keys(make_client):
    client = make_client()
    assert client.get("/v1/models").status_code == 200


def test_binding_off_loopback_needs_a_key():
    from gambarkan.server.auth import AuthConfigError, check_binding, is_loopback, parse_keys

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    check_binding("127.0.0.1", [], False)
    check_binding("0.0.0.0", ["k"], False)
    check_binding("0.0.0.0", [], True)
    with pytest.raises(AuthConfigError, match="--api-key"):
        check_binding("0.0.0.0", [], False)
    assert parse_keys(["a", "b,c"], "c, d") == ["a", "b", "c", "d"]


def test_serve_refuses_public_host_without_key(cli):
    result = cli("serve", "--host", "0.0.0.0", "--port", "1")
    assert result.returncode == 2
    assert result.stderr.startswith("gambarkan: error: refusing to listen on 0.0.0.0 without an API key")
    assert "Traceback" not in result.stderr


def test_listing_endpoints_and_model_switch(make_client):
    client = make_client()
    assert client.get("/v1/models").json()["data"][0]["id"] == "instant-model"
    assert client.get("/sdapi/v1/sd-models").json()[0]["title"] == "instant-model"
    names = [s["name"] for s in client.get("/sdapi/v1/samplers").json()]
    assert "Euler a" in names and "DPM++ 2M" in names  # A1111 >= 1.9: Karras is a schedule type
    assert "karras" in [t["name"] for t in client.get("/sdapi/v1/schedulers").json()]
    assert (
        client.post(
            "/sdapi/v1/options", json={"sd_model_checkpoint": "instant-model [abc123]", "CLIP_stop_at_last_layers": 2}
        ).status_code
        == 200
    )
    options = client.get("/sdapi/v1/options").json()
    assert options["sd_model_checkpoint"] == "instant-model" and options["CLIP_stop_at_last_layers"] == 2
    presets = client.get("/api/presets").json()["presets"]
    assert any(p["name"] == "umum" for p in presets) and all("installed" in p for p in presets)
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["queue"]["size"] == 32
    assert client.get("/").status_code == 404  # left free for the web UI


def test_a1111_fields_map_onto_the_request(make_client):
    engine = InstantEngine(None)
    client = make_client(engine=engine)
    body = {
        "prompt": "rumah merah",
        "negative_prompt": "blur",
        "steps": 3,
        "cfg_scale": 4.5,
        "width": 64,
        "height": 128,
        "sampler_name": "DPM++ 2M",
        "scheduler": "Karras",
        "seed": 11,
        "batch_size": 2,
        "n_iter": 2,
        "override_settings": {"CLIP_stop_at_last_layers": 2},
        "send_images": False,
    }
    response = client.post("/sdapi/v1/txt2img", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["images"] == [] and response.json()["parameters"]["prompt"] == "rumah merah"
    request = engine.calls[-1]
    assert (request.steps, request.cfg, request.width, request.height) == (3, 4.5, 64, 128)
    assert (request.sampler, request.seed, request.batch_size, request.count, request.clip_skip) == (
        "DPM++ 2M Karras",
        11,
        2,
        2,
        2,
    )
    assert request.save is False and request.model == "instant-model"


def test_mount_ui_hook_gets_the_root(tmp_path):
    from fastapi.testclient import TestClient
    from starlette.responses import PlainTextResponse

    from gambarkan.server.app import create_app

    def mount(app, state):
        app.add_route("/", lambda request: PlainTextResponse("ui here"))

    settings = server_settings(tmp_path / "home")
    with TestClient(create_app(settings, InstantEngine(settings), mount_ui=mount), base_url="http://127.0.0.1") as client:
        assert client.get("/").text == "ui here"
        assert client.get("/api/health").status_code == 200


def test_out_of_memory_fails_cleanly_and_the_next_job_runs(make_client):
    from gambarkan.errors import OutOfMemoryError

    class OnceOutOfMemory(InstantEngine):
        def generate(self, request, **kwargs):
            if not self.calls:
                self.calls.append(request)
                raise OutOfMemoryError(
                    "out of memory on cuda at 2048x2048, batch size 4", "lower --width/--height or --batch-size"
                )
            return super().generate(request, **kwargs)

    client = make_client(engine=OnceOutOfMemory(None))
    failed = client.post("/v1/images/generations", json={"prompt": "x", "response_format": "b64_json"})
    assert failed.status_code == 422 and failed.json()["error"]["code"] == "out_of_memory"
    assert "lower --width" in failed.json()["error"]["message"]
    ok = client.post("/v1/images/generations", json={"prompt": "x", "response_format": "b64_json"})
    assert ok.status_code == 200 and ok.json()["data"][0]["b64_json"]


def test_translate_endpoint_uses_the_engine_translation(make_client):
    client = make_client()
    response = client.post("/api/translate", json={"prompt": "kucing lucu", "translator": "glossary"})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["original_prompt"] == "kucing lucu" and "cat" in data["prompt"].lower()


def _png_size(data: bytes) -> tuple[int, int]:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size


def test_non_square_sizes_reach_the_engine_through_every_endpoint(make_client):
    """Width first everywhere: a parser that swaps width and height fails here (issue 17)."""
    import time

    client = make_client()
    engine = state_of(client).engines[0]
    openai = client.post("/v1/images/generations", json={"prompt": "x", "size": "128x64", "response_format": "b64_json"})
    assert openai.status_code == 200, openai.text
    assert openai.json()["size"] == "128x64"
    assert _png_size(base64.b64decode(openai.json()["data"][0]["b64_json"])) == (128, 64)
    assert (engine.calls[-1].width, engine.calls[-1].height) == (128, 64)

    a1111 = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "width": 64, "height": 192})
    assert a1111.status_code == 200, a1111.text
    assert _png_size(base64.b64decode(a1111.json()["images"][0])) == (64, 192)
    assert (engine.calls[-1].width, engine.calls[-1].height) == (64, 192)
    assert '"width": 64' in a1111.json()["info"] and '"height": 192' in a1111.json()["info"]

    job = client.post("/api/jobs", json={"prompt": "x", "width": 256, "height": 128}).json()
    deadline = time.monotonic() + 30
    while (data := client.get(f"/api/jobs/{job['id']}").json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, data
        time.sleep(0.05)
    assert data["status"] == "done", data
    assert (engine.calls[-1].width, engine.calls[-1].height) == (256, 128)
    assert (data["result"]["width"], data["result"]["height"]) == (256, 128)


def _positions(client, job_id: str) -> list[int]:
    """The queue positions announced on the job's SSE stream, in order, until it started."""
    with client.stream("GET", f"/api/jobs/{job_id}/events") as stream:
        text = "".join(stream.iter_text()).replace("\r\n", "\n")
    positions = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.strip().splitlines() if ": " in line)
        if lines.get("event") == "started":
            break
        if lines.get("event") == "queued":
            positions.append(json.loads(lines["data"])["position"])
    return positions


def test_cancelling_a_queued_job_announces_the_new_positions(make_client):
    client = make_client(queue_size=4)
    queue = state_of(client).queue
    queue.pause()
    ids = [client.post("/api/jobs", json={"prompt": f"job {i}"}).json()["id"] for i in range(3)]
    assert client.delete(f"/api/jobs/{ids[0]}").json()["status"] == "cancelled"
    queue.resume()
    # job 1 moved from 2 to 1 when job 0 was cancelled; job 2 from 3 to 2, then to 1 when job 1 started
    assert _positions(client, ids[1]) == [2, 1]
    assert _positions(client, ids[2]) == [3, 2, 1]
