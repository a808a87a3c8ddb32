"""The real ``openai`` and ``webuiapi`` clients, SSE progress, cancel and interrupt against a live uvicorn."""

from __future__ import annotations

import base64
import io
import json

import httpx
import pytest
from PIL import Image

API_KEY = "test-key-3f9a1c"  # the live_server fixture's key
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def png_parameters(data: bytes) -> tuple[Image.Image, str]:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image, image.info.get("parameters", "")


def sse_events(client: httpx.Client, job_id: str, on_event=None) -> list[tuple[str, dict]]:
    """Read the job's event stream to the end; ``on_event(name, data)`` runs as each arrives."""
    events: list[tuple[str, dict]] = []
    name = None
    with client.stream("GET", f"/api/jobs/{job_id}/events", timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name:
                data = json.loads(line.split(":", 1)[1])
                events.append((name, data))
                if on_event:
                    on_event(name, data)
                name = None
    return events


def test_fixture_key_matches(live_server):
    assert live_server.key == API_KEY


def test_openai_client_makes_images_with_metadata(live_server):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=live_server.url + "/v1", api_key=API_KEY, max_retries=0)
    response = client.images.generate(
        model="tiny-sd15",
        prompt="kucing lucu",
        n=2,
        size="64x64",
        response_format="b64_json",
        extra_body={"steps": 2, "seed": 7},
    )
    assert len(response.data) == 2
    seeds = []
    for item in response.data:
        image, parameters = png_parameters(base64.b64decode(item.b64_json))
        assert image.size == (64, 64)
        assert "Steps: 2" in parameters and "Model: tiny-sd15" in parameters and "Size: 64x64" in parameters
        seeds.append(int(parameters.split("Seed: ")[1].split(",")[0]))
    assert seeds == [7, 8]
    assert response.size == "64x64"
    assert response.data[0].revised_prompt and "cat" in response.data[0].revised_prompt.lower()  # translated
    by_url = client.images.generate(
        prompt="a cat", size="64x64", response_format="url", extra_body={"steps": 1, "seed": 2}
    )
    fetched = httpx.get(by_url.data[0].url, headers=AUTH)
    assert fetched.status_code == 200 and "Seed: 2" in png_parameters(fetched.content)[1]
    # Known models are listed; anything else (a path, a typo) is a clean 404 from the client's view.
    assert "tiny-sd15" in [m.id for m in client.models.list().data]
    with pytest.raises(openai.NotFoundError) as info:
        client.images.generate(model="/etc/passwd", prompt="x", size="64x64")
    assert "unknown model" in str(info.value)


def test_openai_client_without_key_is_refused(live_server):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=live_server.url + "/v1", api_key="wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        client.images.generate(prompt="x", size="64x64")
    assert "wrong-key" not in str(info.value) and API_KEY not in str(info.value)


def test_webuiapi_client_txt2img_models_options(live_server):
    webuiapi = pytest.importorskip("webuiapi")
    api = webuiapi.WebUIApi(
        host="127.0.0.1", port=live_server.port, sampler="Euler a", steps=2, username="me", password=API_KEY
    )
    assert api.util_get_model_names() == ["tiny-sd15"]
    assert "DPM++ 2M" in api.util_get_sampler_names() and "karras" in api.util_get_scheduler_names()
    api.util_set_model("tiny-sd15")
    assert api.util_get_current_model() == "tiny-sd15"
    result = api.txt2img(prompt="a red house", negative_prompt="blurry", seed=5, width=64, height=64, cfg_scale=5)
    assert len(result.images) == 1 and result.image.size == (64, 64)
    assert result.info["all_seeds"] == [5] and result.info["sampler_name"] == "Euler a" and result.info["steps"] == 2
    parameters = result.image.info["parameters"]
    assert parameters.startswith("a red house\nNegative prompt: blurry\n")
    assert "Sampler: Euler a" in parameters and "Seed: 5" in parameters and "CFG scale: 5" in parameters
    assert result.parameters["prompt"] == "a red house"
    progress = api.get_progress()
    assert progress["progress"] == 0 and progress["state"]["job_count"] == 0
    # A1111's unknown-script answer: 422, which webuiapi raises as RuntimeError(status, text).
    with pytest.raises(RuntimeError) as info:
        api.txt2img(prompt="x", width=64, height=64, script_name="X/Y/Z plot")
    assert info.value.args[0] == 422


def test_webuiapi_without_credentials_gets_401(live_server):
    webuiapi = pytest.importorskip("webuiapi")
    api = webuiapi.WebUIApi(host="127.0.0.1", port=live_server.port)
    with pytest.raises(RuntimeError) as info:
        api.txt2img(prompt="x", width=64, height=64)
    assert info.value.args[0] == 401


def test_sse_events_arrive_in_order_with_previews(live_server):
    with httpx.Client(base_url=live_server.url, headers=AUTH) as client:
        created = client.post(
            "/api/jobs",
            json={"prompt": "pemandangan pantai", "width": 64, "height": 64, "steps": 2, "seed": 3, "preview_every": 1},
        )
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        events = sse_events(client, job_id)
        names = [name for name, _ in events]
        assert names == ["queued", "started", "progress", "progress", "done"], names
        assert events[0][1]["position"] == 1
        assert [data["step"] for name, data in events if name == "progress"] == [1, 2]
        preview = Image.open(io.BytesIO(base64.b64decode(events[2][1]["preview"])))
        assert preview.format == "PNG" and preview.size[0] > 0
        result = events[-1][1]["result"]
        assert result["seed"] == 3 and result["steps"] == 2
        url = result["images"][0]["url"]
        image_response = client.get(url)
        assert image_response.status_code == 200 and image_response.headers["content-type"] == "image/png"
        image, parameters = png_parameters(image_response.content)
        assert image.size == (64, 64) and "Seed: 3" in parameters
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["status"] == "done" and job["progress"] == 1.0
        # A listener arriving late replays the same stream; Last-Event-ID resumes after it.
        assert [n for n, _ in sse_events(client, job_id)] == names


@pytest.mark.parametrize("how", ["delete", "interrupt"])
def test_cancel_running_job_stops_at_next_step(live_server, how):
    with httpx.Client(base_url=live_server.url, headers=AUTH) as client:
        job_id = client.post(
            "/api/jobs", json={"prompt": "x", "width": 64, "height": 64, "steps": 40, "seed": 1}
        ).json()["id"]

        def on_event(name, data):
            if name == "progress" and data["step"] == 1:
                if how == "delete":
                    answer = client.delete(f"/api/jobs/{job_id}")
                    assert answer.status_code == 200 and answer.json()["status"] in ("cancelling", "cancelled")
                else:
                    progress = client.get("/sdapi/v1/progress").json()
                    assert progress["state"]["job_count"] == 1 and progress["state"]["sampling_step"] >= 1
                    assert 0 < progress["progress"] < 1 and progress["state"]["sampling_steps"] == 40
                    assert client.post("/sdapi/v1/interrupt").status_code == 200

        events = sse_events(client, job_id, on_event)
        assert events[-1][0] == "error" and events[-1][1]["error"]["code"] == "cancelled"
        steps = [data["step"] for name, data in events if name == "progress"]
        assert steps and max(steps) < 40
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["status"] == "cancelled" and job["error"]["status"] == 409
        assert client.delete(f"/api/jobs/{job_id}").status_code == 409  # nothing left to cancel
        # The worker keeps serving the next job.
        after = client.post("/api/jobs", json={"prompt": "x", "width": 64, "height": 64, "steps": 1}).json()["id"]
        assert sse_events(client, after)[-1][0] == "done"


def test_queued_compatible_jobs_equal_single_runs(live_server):
    """Jobs that wait together (same model and settings, other seeds/prompts) give the pixels of a lone run."""
    import numpy as np

    from gambarkan.request import GenerationRequest

    queue = live_server.state.queue
    bodies = [{"prompt": "kucing", "seed": 21}, {"prompt": "anjing", "seed": 22}]
    common = {"width": 64, "height": 64, "steps": 2, "sampler": "Euler"}
    with httpx.Client(base_url=live_server.url, headers=AUTH) as client:
        queue.pause()
        try:
            ids = [client.post("/api/jobs", json={**body, **common}).json()["id"] for body in bodies]
        finally:
            queue.resume()
        served = []
        for job_id in ids:
            result = sse_events(client, job_id)[-1][1]["result"]
            served.append(np.array(png_parameters(client.get(result["images"][0]["url"]).content)[0].convert("RGB")))
    engine = live_server.state.engines[0]
    for body, pixels in zip(bodies, served):
        alone = engine.generate(
            GenerationRequest(**body, **common, model=str(live_server.state.default_entry.fields["model"]), save=False)
        )
        assert np.array_equal(np.array(alone.images[0].image.convert("RGB")), pixels)


def test_client_that_disconnects_does_not_stop_others(live_server):
    """A1111 client gives up mid-job (closes the socket); the job queued behind it still gets its image."""
    queue = live_server.state.queue
    queue.pause()  # the first job cannot start, so its client surely gives up while it waits
    try:
        with pytest.raises(httpx.TimeoutException):
            body = {"prompt": "given up", "steps": 20, "width": 64, "height": 64, "seed": 1}
            httpx.post(live_server.url + "/sdapi/v1/txt2img", json=body, headers=AUTH, timeout=0.5)
    finally:
        queue.resume()
    with httpx.Client(base_url=live_server.url, headers=AUTH, timeout=120) as client:
        answer = client.post(
            "/sdapi/v1/txt2img", json={"prompt": "after", "steps": 2, "width": 64, "height": 64, "seed": 4}
        )
        assert answer.status_code == 200, answer.text
        image, parameters = png_parameters(base64.b64decode(answer.json()["images"][0]))
        assert image.size == (64, 64) and "Seed: 4" in parameters
        assert client.get("/api/health").json()["status"] == "ok"
        assert client.get("/sdapi/v1/progress").json()["state"]["job_count"] == 0  # nothing left stuck
