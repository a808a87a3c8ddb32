"""The UI's plain parts without a browser: strings, form -> request, previews, errors, mounting, CLI."""

from __future__ import annotations

import re
import string

import pytest

from gambarkan import errors
from gambarkan.ui import i18n
from gambarkan.ui.app import form_fields, model_rows, package_choices, package_info, preview_translation


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_string_has_both_languages_with_the_same_placeholders() -> None:
    for key, entry in i18n.STRINGS.items():
        assert set(entry) == {"id", "en"}, key
        assert entry["id"].strip() and entry["en"].strip(), key
        assert _placeholders(entry["id"]) == _placeholders(entry["en"]), key


def test_every_error_code_has_a_sentence_in_both_languages() -> None:
    import importlib
    import pkgutil

    import gambarkan

    for module in pkgutil.walk_packages(gambarkan.__path__, "gambarkan."):
        importlib.import_module(module.name)  # every module, so every error class is known

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    http_only = {"auth_required", "invalid_image_name", "job_finished"}  # raised by HTTP routes, never in the UI
    codes = {cls.code for cls in subclasses(errors.GambarkanError)} - http_only
    missing = sorted(code for code in codes if code not in i18n.ERRORS)
    assert not missing, f"no UI sentence for error codes: {missing}"
    for code, entry in i18n.ERRORS.items():
        assert entry["id"] != entry["en"], code


def test_errors_read_in_the_chosen_language_with_the_exact_detail() -> None:
    error = errors.OutOfMemoryError("out of memory on cuda at 1024x1024, batch size 4", "lower --width/--height")
    indonesian, english = i18n.explain_error(error, "id"), i18n.explain_error(error, "en")
    assert indonesian.startswith("**Gagal:** Memori tidak cukup.")
    assert english.startswith("**Failed:** Not enough memory.")
    assert "out of memory on cuda at 1024x1024" in indonesian and "out of memory on cuda at 1024x1024" in english
    assert "ZeroDivisionError" in i18n.explain_error(ZeroDivisionError("x"), "id")
    crashed = errors.GambarkanError("generation failed (RuntimeError)", "see the server log for details")
    crashed.code = "internal_error"  # what the job queue reports for an unexpected crash
    assert i18n.explain_error(crashed, "id").startswith("**Gagal:** Terjadi kesalahan yang tidak terduga")
    assert "One of the settings" not in i18n.explain_error(crashed, "en")


def test_form_fields_leave_package_defaults_unset_and_validate() -> None:
    from gambarkan.request import GenerationRequest

    form = {"prompt": "kucing lucu", "negative": "", "translate": True, "translator": "glossary", "preview": "cute cat",
            "edited": False, "package": "anime", "sampler": "bawaan paket", "steps": 0, "cfg": -1, "width": 0, "height": 0,
            "seed": -1, "batch_size": 2, "count": 1, "clip_skip": 0}
    fields = form_fields(form)
    assert fields == {"prompt": "kucing lucu", "negative_prompt": "", "preset": "anime", "seed": -1, "batch_size": 2, "count": 1,
                      "translator": "glossary"}
    chosen = form_fields({**form, "sampler": "Euler a", "steps": 30, "cfg": 0, "width": 512, "height": 768, "seed": 42, "clip_skip": 2})
    assert (chosen["sampler"], chosen["steps"], chosen["cfg"], chosen["width"], chosen["height"], chosen["seed"], chosen["clip_skip"]) == (
        "Euler a", 30, 0.0, 512, 768, 42, 2)
    GenerationRequest(**chosen)  # a valid request
    # an edited preview is what the model reads, untranslated
    edited = form_fields({**form, "edited": True, "preview": "a very cute cat"})
    assert edited["prompt"] == "a very cute cat" and edited["translate"] is False
    assert form_fields({**form, "translate": False})["translate"] is False
    with pytest.raises(errors.InvalidRequestError, match="^Langkah harus berupa angka"):
        form_fields({**form, "steps": "banyak"})
    with pytest.raises(errors.InvalidRequestError, match="^Batch count must be a number"):
        form_fields({**form, "count": "x"}, "en")
    with pytest.raises(errors.InvalidRequestError, match="Tulis dulu"):
        form_fields({**form, "prompt": "   "})
    with pytest.raises(errors.InvalidRequestError, match="width 510 is not a multiple of 8"):
        GenerationRequest(**form_fields({**form, "width": 510, "height": 512}))


def test_translation_preview_is_english_and_switchable(isolated_home) -> None:
    from gambarkan.config import Settings

    settings = Settings.from_env()
    english, note = preview_translation("kucing oranye tidur di atas sofa", True, "glossary", settings, "id")
    assert english == "orange cat sleeping on a sofa" and "glossary" in note
    same, note = preview_translation("a red car", True, "glossary", settings, "en")
    assert same == "a red car" and "nothing to translate" in note
    off, note = preview_translation("kucing", False, "glossary", settings, "id")
    assert off == "kucing" and "dimatikan" in note
    # an edited preview goes out as written; the negative prompt is still translated for it
    form = {"prompt": "kucing", "negative": "buram, teks, tanda air", "translate": True, "translator": "glossary",
            "preview": "a fluffy cat", "edited": True}
    fields = form_fields(form, "id", settings)
    assert (fields["prompt"], fields["negative_prompt"], fields["translate"]) == ("a fluffy cat", "blurry, text, watermark", False)


def test_packages_show_description_size_and_download_state(isolated_home) -> None:
    from gambarkan.config import Settings

    settings = Settings.from_env()
    names = [value for _, value in package_choices(settings, "id")]
    assert names[:2] == ["umum", "anime"] and "sdxl" in names
    info = package_info("sdxl", settings, "id")
    assert "Stable Diffusion XL" in info and "7,1 GB" in info and "belum terunduh" in info
    assert "not downloaded" in package_info("sdxl", settings, "en") and "7.1 GB" in package_info("sdxl", settings, "en")
    assert "did you mean" in package_info("animee", settings, "en")
    rows, used = model_rows(settings, "en")
    assert used == 0 and {row[0] for row in rows} >= {"umum", "anime", "realistis", "cepat", "sdxl"}
    assert all(row[5] == "no" for row in rows)
    sdxl = next(row for row in rows if row[0] == "sdxl")
    assert sdxl[3] == "Stable Diffusion XL" and sdxl[6] == "slow" and "7.1 GB" in sdxl[4]  # family in words, not 'sdxl'
    assert sdxl[2] and not sdxl[2].endswith(".")  # one line: what it is good for


def test_package_choices_show_purpose_size_state_speed_and_licence(isolated_home) -> None:
    from gambarkan.config import Settings

    labels = dict((name, label) for label, name in package_choices(Settings.from_env(), "id"))
    anime = labels["anime"]
    assert anime.startswith("Anime — ") and " GB · ⬇️ belum terunduh · " in anime and anime.count(" · ") == 4
    assert "sedang" in labels["umum"] and "lambat" in labels["sdxl"]
    english = dict((name, label) for label, name in package_choices(Settings.from_env(), "en"))
    assert "not downloaded" in english["anime"] and "medium" in english["umum"]


def test_the_servers_own_model_is_the_first_choice_and_is_sent(isolated_home, tiny_sd15_dir) -> None:
    from types import SimpleNamespace

    from gambarkan.config import Settings
    from gambarkan.ui.app import server_default
    from gambarkan.ui.helpers import default_package

    settings = Settings.from_env()
    state = SimpleNamespace(settings=settings, config=SimpleNamespace(model=str(tiny_sd15_dir), preset=None),
                            default_entry=SimpleNamespace(name=tiny_sd15_dir.name))
    default = server_default(state)
    choices = package_choices(settings, "id", default)
    assert choices[0] == (f"Model server ini: {tiny_sd15_dir.name} (bawaan)", "") and default_package(settings, default) == ""
    assert "dijalankan dengan model" in package_info("", settings, "id", default)
    fields = form_fields({"prompt": "kucing", "package": ""}, "id", settings, default)
    assert fields["model"] == str(tiny_sd15_dir) and "preset" not in fields
    assert form_fields({"prompt": "kucing", "package": "anime"}, "id", settings, default)["preset"] == "anime"
    by_package = server_default(SimpleNamespace(settings=settings, config=SimpleNamespace(model="anime", preset=None), default_entry=None))
    assert default_package(settings, by_package) == "anime" and package_choices(settings, "id", by_package)[0][1] == "umum"


def test_sizes_snap_to_multiples_of_8_and_translators_have_plain_names() -> None:
    from gambarkan.ui.helpers import eta_seconds, snap_size, translator_choices

    assert [snap_size(v) for v in (70, 510, 513, 0, -1, "", 3)] == [72, 512, 512, 0, -1, "", 8]
    names = dict((code, label) for label, code in translator_choices("id"))
    assert "luring" in names["glossary"] and "300 MB" in names["marian"] and "Google" in names["google"]
    assert "leaves this machine" in dict((c, label) for label, c in translator_choices("en"))["google"]
    assert eta_seconds((10.0, 0.25), 20.0, 0.5) == 20.0 and eta_seconds(None, 5.0, 0.5) is None


def test_a_users_own_local_package_shows_where_it_is_not_a_download_size(isolated_home, tiny_sd15_dir) -> None:
    from gambarkan.config import Settings
    from gambarkan.models.catalog import add_user_package

    settings = Settings.from_env()
    add_user_package(settings, "punyaku", str(tiny_sd15_dir))
    info = package_info("punyaku", settings, "id")
    assert f"`{tiny_sd15_dir.name}`" in info and "Ukuran unduhan" not in info
    assert "Lisensi: belum diketahui" in info  # in the page's language, not the catalog's English
    assert "Licence: unknown" in package_info("punyaku", settings, "en")


def test_custom_default_model_is_offered_first(isolated_home, monkeypatch) -> None:
    from gambarkan.config import Settings

    monkeypatch.setenv("GAMBARKAN_MODEL", "/models/mine")
    choices = package_choices(Settings.from_env(), "en")
    assert choices[0] == ("(default model)", "")  # no server: GAMBARKAN_MODEL is the default
    assert "/models/mine" in package_info("", Settings.from_env(), "en")


def test_server_mounts_the_ui_at_root(isolated_home) -> None:
    from fastapi.testclient import TestClient

    from gambarkan.server.app import create_app
    from gambarkan.ui.app import mount

    app = create_app(mount_ui=mount, start_workers=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        page = client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert client.get("/v1/models").status_code == 200  # the API still answers next to it
        config = client.get("/config").json()
        assert config["title"] == "gambarkan"
        assert any(c.get("props", {}).get("elem_id") == "gk-generate" for c in config["components"])


def test_cli_ui_refuses_a_public_link_without_a_key(cli) -> None:
    done = cli("ui", "--share")
    assert done.returncode == 2
    assert re.match(r"gambarkan: error: refusing to listen on 0\.0\.0\.0 without an API key", done.stderr)
    assert "Traceback" not in done.stderr


def test_history_rows_list_generations_newest_first(ui_settings) -> None:
    from gambarkan.engine.generate import Engine
    from gambarkan.request import GenerationRequest
    from gambarkan.ui.app import HISTORY_COLUMNS, history_rows, table

    engine = Engine(ui_settings)
    for seed in (5, 6):
        engine.generate(GenerationRequest(prompt="kucing lucu", preset="cepat", seed=seed))
    rows = history_rows(ui_settings, "kucing")
    assert [row[5] for row in rows] == [6, 5]
    assert rows[0][2] == "selesai" and rows[0][3] == "kucing lucu" and rows[0][4] == "cepat"
    assert history_rows(ui_settings, "kucing", "en")[0][2] == "done"
    assert history_rows(ui_settings, "anjing") == []
    assert table(rows, HISTORY_COLUMNS, "en")["headers"] == ["id", "when", "status", "prompt", "package", "seed"]
    assert table(rows, HISTORY_COLUMNS, "id")["headers"][1] == "waktu"


def test_status_shows_queue_position_then_steps() -> None:
    from types import SimpleNamespace

    from gambarkan.ui.app import status_markdown

    job = SimpleNamespace(steps=0, step=0, images_done=0, images_total=2, progress=0.0)
    assert status_markdown(job, 3, "id") == "Menunggu giliran: urutan ke-3 dalam antrean."
    assert status_markdown(job, 3, "en") == "Waiting: number 3 in the queue."
    assert status_markdown(job, 0, "id").startswith("Menyiapkan model")
    job = SimpleNamespace(steps=20, step=5, images_done=1, images_total=2, progress=0.625)
    text = status_markdown(job, 0, "id")
    assert text.startswith("Langkah 5/20 · gambar 2/2") and '<progress value="0.625" max="1">' in text
