"""The Colab notebook runs top to bottom (on CPU, tiny model) and keeps its promised form.

The form and the generation are one cell (change a field, run it, get images), with a step
progress bar and an optional translation preview that spends no GPU time.

Outside Colab the notebook skips its pip install and Drive mount by itself (``DI_COLAB``), so
the test executes every cell unchanged with nbclient, with the packages overlaid by user
packages that point at a tiny random-weight model (64x64, 2 steps).
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "gambarkan_colab.ipynb"
FORM_FIELDS = ("prompt", "prompt_negatif", "paket", "jumlah_gambar", "langkah", "cfg", "ukuran", "seed", "penerjemah", "hanya_lihat_terjemahan")


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_notebook_has_the_promised_cells() -> None:
    from gambarkan.models.catalog import builtin_packages

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["accelerator"] == "GPU"
    setup, make, ui = code_cells(nb)
    intro = nb.cells[0].source
    assert "dependency resolver" in intro and "tidak berbahaya" in intro  # Colab's red pip lines explained
    assert "File → Upload notebook" in intro and "kuota GPU habis" in intro
    assert "nvidia-smi" in setup.source and "Ubah jenis runtime" in setup.source and "T4 GPU" in setup.source
    assert 'GAMBARKAN_REPO = "https://github.com/' in setup.source and "pip" in setup.source
    assert "periksa alamat repo di GAMBARKAN_REPO" in setup.source  # one Indonesian line, not a pip traceback
    assert "drive.mount" in setup.source and 'os.environ["GAMBARKAN_HOME"] = FOLDER_DRIVE' in setup.source
    assert 'os.environ["HF_HOME"]' in setup.source  # the model cache can live on Drive too
    assert setup.source.index("GAMBARKAN_HOME") < setup.source.index("import gambarkan")  # set before gambarkan reads it
    params = dict(re.findall(r"^(\w+) = .*#@param(.*)$", make.source, re.MULTILINE))
    assert set(FORM_FIELDS) <= set(params)
    packages = re.findall(r'"([^"]+)"', params["paket"])
    assert packages == list(builtin_packages())
    assert "display(" in make.source and "gambar.seed" in make.source
    assert "launch(share=DI_COLAB" in ui.source and "Tidak wajib" in ui.source  # the share link is optional
    assert "engine=default_engine()" in ui.source  # the model cell 3 loaded is reused, not loaded twice on a T4
    for cell in code_cells(nb):
        assert not cell.outputs and cell.execution_count is None, "commit the notebook without outputs"


def test_notebook_runs_top_to_bottom_on_cpu(tiny_sd15_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from PIL import Image

    from gambarkan.config import Settings
    from gambarkan.models.catalog import add_user_package

    settings = Settings.from_env()
    for name in ("umum", "anime", "realistis", "cepat", "sdxl"):
        add_user_package(settings, name, str(tiny_sd15_dir), width=64, height=64, steps=2)
    monkeypatch.setenv("GAMBARKAN_NOTEBOOK_TEST", "1")
    monkeypatch.setenv("GAMBARKAN_OFFLINE", "1")
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    # After the last cell: the web UI answers, then is stopped so the kernel can exit.
    nb.cells.append(nbformat.v4.new_code_cell(
        "import urllib.request\nassert urllib.request.urlopen(ui.local_url).status == 200\nprint('UI OK')\nui.close()"
    ))
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    setup, make, ui, check = code_cells(nb)
    text = lambda cell: "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    assert "gambarkan" in text(setup) and "siap dipakai" in text(setup)
    assert "Terjemahan (glossary): orange cat sleeping on a sofa" in text(make)
    seeds = re.findall(r"^seed (\d+): (\S+\.png)$", text(make), re.MULTILINE)
    assert len(seeds) == 2 and int(seeds[1][0]) == int(seeds[0][0]) + 1
    images = [o for o in make.outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(images) == 2
    html = "".join(o.data.get("text/html", "") for o in make.outputs if o.output_type == "display_data")
    assert "Selesai: 2 gambar." in html  # the step progress bar, updated in place, ends done
    for output, (_, path) in zip(images, seeds):
        shown = Image.open(io.BytesIO(base64.b64decode(output.data["image/png"])))
        saved = Image.open(path)
        assert shown.size == saved.size == (64, 64)
        assert list(shown.convert("RGB").getdata()) == list(saved.convert("RGB").getdata())
        assert "Preset: umum" in saved.info["parameters"]
    assert "Antarmuka web berjalan di http://127.0.0.1:" in text(ui)
    assert "UI OK" in text(check)
    assert not [o for c in code_cells(nb) for o in c.outputs if o.output_type == "error"]


def _form_cell_with(source: str, **values: object) -> str:
    """The form cell's source with some ``#@param`` fields set as a user would in Colab's form."""
    for name, value in values.items():
        source = re.sub(rf"^{name} = .*?(#@param.*)$", lambda m: f"{name} = {value!r} {m.group(1)}", source, flags=re.MULTILINE)
    return source


def test_form_cell_previews_the_translation_and_warns_about_sdxl_sizes(tiny_sd15_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from gambarkan.config import Settings
    from gambarkan.models.catalog import add_user_package

    settings = Settings.from_env()
    add_user_package(settings, "umum", str(tiny_sd15_dir), width=64, height=64, steps=2)
    monkeypatch.setenv("GAMBARKAN_NOTEBOOK_TEST", "1")
    monkeypatch.setenv("GAMBARKAN_OFFLINE", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    setup, make, _ui = code_cells(nb)
    preview = _form_cell_with(make.source, hanya_lihat_terjemahan=True, ukuran="1024x1024 (SDXL persegi)", penerjemah="glossary")
    bad = _form_cell_with(make.source, ukuran="bawaan paket", langkah=0, cfg=99)
    nb.cells = [nb.cells[0], setup, nbformat.v4.new_code_cell(preview), nbformat.v4.new_code_cell(bad)]
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = lambda cell: "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    shown = text(nb.cells[2])
    assert "Yang akan dibaca model (glossary): orange cat sleeping on a sofa, cinematic" in shown
    assert "adalah ukuran SDXL; paket 'umum' dilatih di 512" in shown
    assert not [o for o in nb.cells[2].outputs if o.output_type == "display_data"]  # no image: no GPU time spent
    assert "Gagal: CFG 99 di luar batas (pakai nilai dari 0 sampai 30)" in text(nb.cells[3])  # in Indonesian, one line
    assert not list(settings.output_dir.rglob("*.png"))
