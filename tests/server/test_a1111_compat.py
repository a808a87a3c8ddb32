"""The A1111 routes and fields that SillyTavern, Open WebUI and webuiapi call (issue 19).

Request sequences are replayed from the clients' own sources:
- SillyTavern ``src/endpoints/stable-diffusion.js`` (ping -> /options, upscalers, samplers,
  schedulers, sd-vae, sd-models, get-model/set-model + /progress polling, generate -> txt2img
  with the whole client body, ``url``/``auth`` included);
- Open WebUI ``backend/open_webui/routers/images.py`` (verify -> /options, models -> sd-models
  ``title``/``model_name``, set model -> POST /options, generate -> txt2img prompt/batch_size/size).
"""

from __future__ import annotations

import pytest

from tests.server.conftest import InstantEngine, server_settings


@pytest.fixture
def client_and_engine(tmp_path):
    from fastapi.testclient import TestClient

    from gambarkan.server.app import create_app
    from gambarkan.server.state import ServerConfig

    settings = server_settings(tmp_path / "home")
    engine = InstantEngine(settings)
    app = create_app(settings, engine, config=ServerConfig(model="instant-model"))
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        yield client, engine


GETTERS: dict[str, type] = {
    "/sdapi/v1/sd-models": list, "/sdapi/v1/samplers": list, "/sdapi/v1/schedulers": list, "/sdapi/v1/sd-vae": list,
    "/sdapi/v1/sd-modules": list, "/sdapi/v1/loras": list, "/sdapi/v1/embeddings": dict, "/sdapi/v1/hypernetworks": list,
    "/sdapi/v1/face-restorers": list, "/sdapi/v1/realesrgan-models": list, "/sdapi/v1/prompt-styles": list,
    "/sdapi/v1/memory": dict, "/sdapi/v1/cmd-flags": dict, "/sdapi/v1/script-info": list, "/sdapi/v1/extensions": list,
    "/sdapi/v1/options": dict, "/sdapi/v1/progress": dict, "/sdapi/v1/scripts": dict,
}
POSTS = ["refresh-checkpoints", "refresh-vae", "refresh-loras", "refresh-embeddings", "unload-checkpoint", "reload-checkpoint", "skip", "interrupt"]


def test_every_route_a1111_clients_call_answers_with_a1111_shapes(client_and_engine):
    client, _ = client_and_engine
    for path, kind in GETTERS.items():
        response = client.get(path)
        assert response.status_code == 200, path
        assert isinstance(response.json(), kind), path
    for name in POSTS:
        assert client.post(f"/sdapi/v1/{name}").status_code == 200, name
    embeddings = client.get("/sdapi/v1/embeddings").json()
    assert embeddings == {"loaded": {}, "skipped": {}}
    memory = client.get("/sdapi/v1/memory").json()
    assert memory["ram"]["total"] > 0 and "cuda" in memory
    assert "api_auth" in client.get("/sdapi/v1/cmd-flags").json()


def test_schedulers_are_listed_as_a1111_lists_them(client_and_engine):
    client, _ = client_and_engine
    listed = client.get("/sdapi/v1/schedulers").json()
    # modules/sd_schedulers.py (A1111 v1.10), in order.
    assert [t["name"] for t in listed] == [
        "automatic", "uniform", "karras", "exponential", "polyexponential", "sgm_uniform", "kl_optimal",
        "align_your_steps", "simple", "normal", "ddim", "beta",
    ]
    sgm = listed[5]
    assert sgm == {"name": "sgm_uniform", "label": "SGM Uniform", "aliases": ["SGMUniform"], "default_rho": -1, "need_inner_model": True}
    assert listed[2]["default_rho"] == 7.0 and listed[0]["aliases"] is None
    samplers = {s["name"]: s for s in client.get("/sdapi/v1/samplers").json()}
    assert samplers["DPM++ 2M"]["options"]["scheduler"] == "karras" and samplers["Euler a"]["aliases"] == ["k_euler_a", "k_euler_ancestral"]


@pytest.mark.parametrize("sampler", ["Euler a", "Euler", "DDIM", "UniPC", "Heun", "LCM", "DPM++ 2M"])
def test_any_sampler_with_karras_is_accepted(client_and_engine, sampler):
    client, engine = client_and_engine
    response = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "steps": 2, "width": 64, "height": 64, "sampler_name": sampler, "scheduler": "Karras"})
    assert response.status_code == 200, response.text
    assert engine.calls[-1].sampler == f"{sampler} Karras" and engine.calls[-1].scheduler == "Karras"


def test_errors_carry_a1111_detail_beside_ours(client_and_engine):
    client, _ = client_and_engine
    response = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "sampler_name": "Euler b"})
    assert response.status_code == 422
    body = response.json()
    # FastAPI's 422 list shape, as A1111 answers a bad field; our one-line error beside it.
    assert body["detail"][0]["msg"] == body["error"]["message"] and "unknown sampler 'Euler b'" in body["detail"][0]["msg"]
    assert client.get("/sdapi/v1/nope").json()["detail"]
    assert "detail" not in client.post("/v1/images/generations", json={"prompt": ""}).json()  # OpenAI shape untouched
    response = client.post("/sdapi/v1/interrogate", json={"image": "", "model": "clip"})
    assert response.status_code == 501 and "interrogate" in response.json()["detail"]


def test_txt2img_fields_infotext_clip_skip_vae_styles_and_echo(client_and_engine):
    client, engine = client_and_engine
    infotext = "a red house\nNegative prompt: blurry\nSteps: 7, Sampler: DPM++ 2M, Schedule type: Exponential, CFG scale: 4.5, Seed: 99, Size: 64x128, Clip skip: 2"
    body = {"infotext": infotext, "steps": 3, "width": 64, "send_images": False, "url": "http://127.0.0.1:7860", "auth": "", "hr_upscaler": "Latent"}
    response = client.post("/sdapi/v1/txt2img", json=body)
    assert response.status_code == 200, response.text
    request = engine.calls[-1]
    # Fields the client set win; the infotext fills the rest (A1111's apply_infotext).
    assert (request.prompt, request.negative_prompt, request.steps, request.cfg, request.seed) == ("a red house", "blurry", 3, 4.5, 99)
    assert (request.width, request.height, request.sampler, request.clip_skip) == (64, 128, "DPM++ 2M Exponential", 2)
    echoed = response.json()["parameters"]
    assert echoed["hr_upscaler"] == "Latent" and echoed["url"] == "http://127.0.0.1:7860" and echoed["infotext"] == infotext
    client.post("/sdapi/v1/txt2img", json={"prompt": "x", "clip_skip": 3, "override_settings": {"sd_vae": "Automatic"}})
    assert engine.calls[-1].clip_skip == 3
    for extra, words in (
        ({"override_settings": {"sd_vae": "kl-f8-anime.ckpt"}}, "unknown VAE 'kl-f8-anime.ckpt'"),
        ({"styles": ["Cinematic"]}, "style 'Cinematic' not found"),
        ({"subseed": 5, "subseed_strength": 0.3}, "subseed_strength"),
        ({"seed_resize_from_w": 512, "seed_resize_from_h": 512}, "seed_resize_from"),
    ):
        response = client.post("/sdapi/v1/txt2img", json={"prompt": "x", **extra})
        assert response.status_code == 422 and words in response.json()["detail"][0]["msg"], (extra, response.text)


def test_sillytavern_sequence(client_and_engine):
    client, engine = client_and_engine
    assert client.get("/sdapi/v1/options").status_code == 200  # ping
    assert isinstance([x["name"] for x in client.get("/sdapi/v1/samplers").json()], list)
    assert isinstance([x["name"] for x in client.get("/sdapi/v1/schedulers").json()], list)
    assert isinstance([x["model_name"] for x in client.get("/sdapi/v1/sd-vae").json()], list)
    titles = [x["title"] for x in client.get("/sdapi/v1/sd-models").json()]
    assert client.get("/sdapi/v1/options").json()["sd_model_checkpoint"] == titles[0]  # get-model
    assert client.post("/sdapi/v1/options", json={"sd_model_checkpoint": titles[0]}).status_code == 200  # set-model
    progress = client.get("/sdapi/v1/progress").json()
    assert progress["progress"] == 0.0 and progress["state"]["job_count"] == 0  # ST stops polling here
    body = {  # extensions/stable-diffusion/index.js generateAutoImage, relayed with url/auth by the server plugin
        "url": "http://127.0.0.1:7860", "auth": "", "prompt": "kucing, masterpiece", "negative_prompt": "lowres",
        "sampler_name": "Euler a", "scheduler": "Karras", "steps": 2, "cfg_scale": 7, "width": 64, "height": 64,
        "restore_faces": False, "enable_hr": False, "hr_upscaler": "Latent", "hr_scale": 2, "hr_additional_modules": [],
        "denoising_strength": 0.7, "hr_second_pass_steps": 0, "seed": 1, "clip_skip": 2,
        "override_settings": {"CLIP_stop_at_last_layers": 2, "sd_vae": "", "forge_additional_modules": []},
        "override_settings_restore_afterwards": True, "send_images": True, "save_images": True,
    }
    response = client.post("/sdapi/v1/txt2img", json=body)
    assert response.status_code == 200, response.text
    assert len(response.json()["images"]) == 1 and engine.calls[-1].sampler == "Euler a Karras"


def test_open_webui_sequence(client_and_engine):
    client, engine = client_and_engine
    assert client.get("/sdapi/v1/options").status_code == 200  # verify_url
    models = [{"id": m["title"], "name": m["model_name"]} for m in client.get("/sdapi/v1/sd-models").json()]
    options = client.get("/sdapi/v1/options").json()
    if options["sd_model_checkpoint"] != models[0]["id"]:
        client.post("/sdapi/v1/options", json={"sd_model_checkpoint": models[0]["id"]})
    data = {"prompt": "a lighthouse", "batch_size": 2, "width": 64, "height": 64, "steps": 2, "negative_prompt": "", "cfg_scale": 5,
            "sampler_name": "DPM++ 2M", "scheduler": "Karras"}
    res = client.post("/sdapi/v1/txt2img", json=data).json()
    assert len(res["images"]) == 2 and isinstance(res["info"], str)
    assert engine.calls[-1].batch_size == 2 and engine.calls[-1].sampler == "DPM++ 2M Karras"


def test_loras_and_embeddings_are_listed_from_the_server_folders(tmp_path):
    from fastapi.testclient import TestClient
    from safetensors.numpy import save_file
    import numpy as np

    from gambarkan.server.app import create_app
    from gambarkan.server.state import ServerConfig

    settings = server_settings(tmp_path / "home")
    (settings.home / "loras").mkdir(parents=True)
    (settings.home / "embeddings").mkdir(parents=True)
    save_file({"lora_unet_x.lora_down.weight": np.zeros((4, 8), np.float32)}, str(settings.home / "loras" / "Sketchy.safetensors"), metadata={"ss_output_name": "Sketchy"})
    save_file({"emb_params": np.zeros((3, 768), np.float32)}, str(settings.home / "embeddings" / "badhands.safetensors"))
    app = create_app(settings, InstantEngine(settings), config=ServerConfig(model="instant-model"))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        loras = client.get("/sdapi/v1/loras").json()
        assert loras == [{"name": "Sketchy", "alias": "Sketchy", "path": "Sketchy.safetensors", "metadata": {"ss_output_name": "Sketchy"}}]
        loaded = client.get("/sdapi/v1/embeddings").json()["loaded"]
        assert loaded["badhands"]["shape"] == 768 and loaded["badhands"]["vectors"] == 3


def test_webuiapi_getters_return_lists_and_dicts(live_server):
    webuiapi = pytest.importorskip("webuiapi")
    api = webuiapi.WebUIApi(host="127.0.0.1", port=live_server.port, username="me", password=live_server.key)
    getters = {
        "get_sd_models": list, "get_samplers": list, "get_schedulers": list, "get_sd_vae": list, "get_upscalers": list,
        "get_latent_upscale_modes": list, "get_loras": list, "get_hypernetworks": list, "get_face_restorers": list,
        "get_realesrgan_models": list, "get_prompt_styles": list, "get_embeddings": dict, "get_memory": dict,
        "get_cmd_flags": dict, "get_options": dict, "get_progress": dict, "get_scripts": dict,
    }
    missing = []
    for name, kind in getters.items():
        value = getattr(api, name)()
        if name in ("get_upscalers", "get_latent_upscale_modes") and isinstance(value, dict) and value.get("error"):
            missing.append(name)  # added by the images work (server/a1111_images.py)
            continue
        assert isinstance(value, kind), (name, value)
    assert api.refresh_checkpoints() is None and api.skip() == {}
    result = api.txt2img(prompt="a red house", seed=5, width=64, height=64, steps=2, sampler_name="Euler a", scheduler="Karras")
    assert "Sampler: Euler a, Schedule type: Karras" in result.image.info["parameters"]
    models = api.get_sd_models()
    assert models[0]["hash"] and models[0]["title"] == f"{models[0]['model_name']} [{models[0]['hash']}]"
    assert set(missing) <= {"get_upscalers", "get_latent_upscale_modes"}


def test_enable_hr_maps_onto_the_hires_request(client_and_engine):
    client, engine = client_and_engine
    body = {"prompt": "x", "width": 64, "height": 64, "enable_hr": True, "hr_scale": 1.5, "hr_upscaler": "Latent (nearest)",
            "hr_second_pass_steps": 3, "denoising_strength": 0.45}
    response = client.post("/sdapi/v1/txt2img", json=body)
    assert response.status_code == 200, response.text
    hires = engine.calls[-1].hires
    assert (hires.scale, hires.upscaler, hires.steps, hires.strength) == (1.5, "latent-nearest", 3, 0.45)
    bad = client.post("/sdapi/v1/txt2img", json={**body, "hr_upscaler": "R-ESRGAN 9x"})
    assert bad.status_code == 422 and "unknown upscaler" in bad.json()["detail"][0]["msg"]
