"""The package catalog: schema of the built-ins, user overlay, `models add`, preset resolution."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gambarkan.config import Settings
from gambarkan.errors import InvalidRequestError, NetworkError, UnknownModelError
from gambarkan.models import catalog, resolve_request
from gambarkan.request import DEFAULTS, GenerationRequest

SHA = re.compile(r"^[0-9a-f]{40}$")
REQUIRED_BUILTINS = {"umum", "anime", "realistis", "cepat", "sdxl"}


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"GAMBARKAN_HOME": str(tmp_path / "home")})


#: Packages whose Hub commit could not be verified offline (notes/families.md); replace with commits.
UNVERIFIED_PINS = {"cepat-xl", "flux-schnell"}


def test_builtin_packages_have_every_field() -> None:
    import tomllib

    raw = tomllib.loads(catalog.CATALOG_FILE.read_text(encoding="utf-8"))["packages"]
    assert REQUIRED_BUILTINS <= set(raw)
    for name, table in raw.items():
        assert set(catalog.REQUIRED_FIELDS) <= set(table) <= set(catalog.REQUIRED_FIELDS) | set(catalog.OPTIONAL_FIELDS), name  # every field, nothing extra


def test_builtin_packages_are_sane() -> None:
    from gambarkan.sampler_names import canonical_sampler

    packages = catalog.builtin_packages()
    for name, spec in packages.items():
        assert catalog.NAME_RE.match(name)
        assert spec.kind in catalog.KINDS
        assert spec.source_type == "hub" and catalog.HUB_ID_RE.match(spec.source), name
        if name in UNVERIFIED_PINS:  # pins that could not be checked offline; the download records the commit it got
            assert spec.revision == "main", name
        else:
            assert SHA.match(spec.revision), f"{name}: pin a commit, not {spec.revision!r}"
        assert spec.license and spec.license_url.startswith("https://"), name
        assert spec.title_id and spec.title_en and len(spec.description_id) > 20 and len(spec.description_en) > 20
        assert spec.files and all(not f.endswith((".bin", ".ckpt", ".pt")) for f in spec.files)
        assert any(f.endswith(".safetensors") for f in spec.files)
        assert "model_index.json" in spec.files or (len(spec.files) == 1 and spec.config), name  # a folder, or one file + its configs
        if spec.variant:
            assert all(f".{spec.variant}." in f for f in spec.files if f.endswith(".safetensors")), name
        if spec.vae_source:
            assert SHA.match(spec.vae_revision) and spec.vae_files
        assert canonical_sampler(spec.sampler) == spec.sampler
        assert 1 <= spec.steps <= 150 and 0 <= spec.cfg <= 30
        assert spec.width % 8 == 0 and spec.height % 8 == 0 and 1 <= spec.clip_skip <= 12
        assert spec.download_mb > 500 and spec.min_vram_mb >= 1024 and spec.min_ram_mb >= 4096
    assert packages["cepat"].steps <= 4 and packages["sdxl"].kind == "sdxl" and packages["sdxl"].width == 1024
    assert packages["umum"].kind == "sd15"


def test_unknown_preset_suggests_the_closest() -> None:
    with pytest.raises(UnknownModelError) as info:
        catalog.get_package("animee")
    assert str(info.value) == "unknown preset 'animee' (did you mean 'anime'? see: gambarkan models list)"


def test_user_overlay_adds_and_overrides(settings: Settings, tiny_sd15_dir: Path) -> None:
    catalog.add_user_package(settings, "kucing", str(tiny_sd15_dir), sampler="euler a", steps=3, style=["cat style"])
    catalog.add_user_package(settings, "anime", str(tiny_sd15_dir), cfg=4.5)  # same name as a built-in
    packages = catalog.load_catalog(settings)
    assert packages["kucing"].sampler == "Euler a" and packages["kucing"].steps == 3
    assert packages["kucing"].kind == "sd15" and packages["kucing"].source_type == "folder"
    assert packages["kucing"].style == ("cat style",) and not packages["kucing"].builtin
    assert packages["anime"].cfg == 4.5 and packages["anime"].source == str(tiny_sd15_dir.resolve())
    assert catalog.builtin_packages()["anime"].source == "gsdf/Counterfeit-V2.5"
    text = catalog.user_catalog_path(settings).read_text(encoding="utf-8")
    assert "[packages.kucing]" in text
    assert catalog.remove_user_package(settings, "anime")
    assert catalog.load_catalog(settings)["anime"].builtin


def test_models_add_checks_its_input(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError, match="not found"):
        catalog.add_user_package(settings, "x", str(tmp_path / "missing"))
    with pytest.raises(InvalidRequestError, match="invalid package name"):
        catalog.add_user_package(settings, "Bad Name!", "owner/repo")
    with pytest.raises(InvalidRequestError, match="sampler"):
        catalog.add_user_package(settings, "ok", "owner/repo", sampler="Eulerr")
    assert not catalog.user_catalog_path(settings).exists()
    spec = catalog.add_user_package(settings, "hub", "owner/repo", steps=12)
    assert spec.source_type == "hub" and spec.revision == "" and spec.steps == 12


def test_strings_survive_the_toml_round_trip(settings: Settings, tiny_sd15_dir: Path) -> None:
    tricky = 'a "quoted" \\ back\\slash, tab\there, ünïcode'
    catalog.add_user_package(settings, "kutip", str(tiny_sd15_dir), negative_prompt=tricky)
    assert catalog.load_catalog(settings)["kutip"].negative_prompt == tricky


def test_resolve_explicit_values_override_the_preset(settings: Settings, tiny_sd15_dir: Path) -> None:
    catalog.add_user_package(settings, "mini", str(tiny_sd15_dir), steps=3, cfg=5.0, width=64, height=64, clip_skip=2,
                             negative_prompt="blurry", style=["watercolor"])
    plan = resolve_request(GenerationRequest(prompt="kucing", preset="mini", steps=2, width=128), settings)
    assert plan.preset == "mini" and plan.model == str(tiny_sd15_dir.resolve())
    assert (plan.steps, plan.cfg, plan.width, plan.height, plan.clip_skip) == (2, 5.0, 128, 64, 2)
    assert plan.negative_prompt == "blurry" and plan.style == "watercolor"
    plan = resolve_request(GenerationRequest(prompt="kucing", preset="mini", negative_prompt="ugly"), settings)
    assert plan.negative_prompt == "ugly"
    # --model NAME also finds a package.
    assert resolve_request(GenerationRequest(prompt="x", model="mini"), settings).preset == "mini"


def test_explicit_model_without_preset_uses_defaults(settings: Settings, tiny_sd15_dir: Path) -> None:
    plan = resolve_request(GenerationRequest(prompt="x", model=str(tiny_sd15_dir)), settings)
    assert plan.preset is None and plan.model == str(tiny_sd15_dir)
    assert (plan.sampler, plan.steps, plan.cfg) == (DEFAULTS["sampler"], DEFAULTS["steps"], DEFAULTS["cfg"])


def test_default_preset_is_umum_and_offline_does_not_download(settings: Settings) -> None:
    with pytest.raises(NetworkError, match="'umum' is not downloaded and offline"):
        resolve_request(GenerationRequest(prompt="x", offline=True), settings)


def test_unknown_preset_in_a_request(settings: Settings) -> None:
    with pytest.raises(UnknownModelError, match="did you mean 'anime'"):
        resolve_request(GenerationRequest(prompt="x", preset="animee"), settings)


def test_a_full_disk_while_saving_keeps_the_earlier_user_catalog(settings: Settings, tiny_sd15_dir: Path, monkeypatch) -> None:
    import errno
    import os

    from gambarkan.errors import DiskFullError

    catalog.add_user_package(settings, "pertama", str(tiny_sd15_dir), steps=3)
    saved = catalog.user_catalog_path(settings).read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiskFullError, match="no space left") as caught:
        catalog.add_user_package(settings, "kedua", str(tiny_sd15_dir))
    assert "packages are unchanged" in str(caught.value)
    assert catalog.user_catalog_path(settings).read_bytes() == saved
    assert not list(catalog.user_catalog_path(settings).parent.glob("*.tmp"))
