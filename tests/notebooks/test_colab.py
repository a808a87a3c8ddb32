"""The Colab notebook runs top to bottom (on CPU, tiny model) and keeps its promised form.

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
FORM_FIELDS = ("prompt", "prompt_negatif", "paket", "jumlah_gambar", "langkah", "cfg", "ukuran", "seed", "penerjemah", "simpan_ke_drive")


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_notebook_has_the_promised_cells() -> None:
    from gambarkan.models.catalog import builtin_packages

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["accelerator"] == "GPU"
    setup, form, make, ui = code_cells(nb)
    assert "nvidia-smi" in setup.source and "Ubah jenis runtime" in setup.source and "T4 GPU" in setup.source
    assert 'GAMBARKAN_REPO = "https://github.com/' in setup.source and "pip" in setup.source
    assert "drive.mount" in setup.source and "#@param" in setup.source
    params = dict(re.findall(r"^(\w+) = .*#@param(.*)$", form.source, re.MULTILINE))
    assert set(FORM_FIELDS) <= set(params)
    packages = re.findall(r'"([^"]+)"', params["paket"])
    assert packages == list(builtin_packages())
    assert "display(" in make.source and "gambar.seed" in make.source
    assert "launch(share=DI_COLAB" in ui.source
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

    setup, _form, make, ui, check = code_cells(nb)
    def text(cell) -> str:
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

    assert "gambarkan" in text(setup) and "siap dipakai" in text(setup)
    assert "Terjemahan (glossary): orange cat sleeping on a sofa" in text(make)
    seeds = re.findall(r"^seed (\d+): (\S+\.png)$", text(make), re.MULTILINE)
    assert len(seeds) == 2 and int(seeds[1][0]) == int(seeds[0][0]) + 1
    images = [o for o in make.outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(images) == 2
    for output, (_, path) in zip(images, seeds):
        shown = Image.open(io.BytesIO(base64.b64decode(output.data["image/png"])))
        saved = Image.open(path)
        assert shown.size == saved.size == (64, 64)
        assert list(shown.convert("RGB").getdata()) == list(saved.convert("RGB").getdata())
        assert "Preset: umum" in saved.info["parameters"]
    assert "Antarmuka web berjalan di http://127.0.0.1:" in text(ui)
    assert "UI OK" in text(check)
    assert not [o for c in code_cells(nb) for o in c.outputs if o.output_type == "error"]
