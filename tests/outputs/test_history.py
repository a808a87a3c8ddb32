"""The SQLite history: schema and migrations, rows from the engine, search, export, delete."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gambarkan.errors import CancelledError, DiskFullError, GambarkanError
from gambarkan.outputs import history as H
from gambarkan.outputs.history import History, HistoryError, HistoryNotFoundError
from gambarkan.request import GeneratedImage, GenerationRequest, GenerationResult

SMALL = {"steps": 2, "width": 64, "height": 64, "translate": False}


def fake_result(
    request: GenerationRequest, english: str | None = None, paths: list[Path] = (), seed: int = 5
) -> GenerationResult:
    images = [GeneratedImage(None, seed + i, i, Path(p)) for i, p in enumerate(paths)] or [
        GeneratedImage(None, seed, 0, None)
    ]
    return GenerationResult(
        images=images, prompt=english or request.prompt, negative_prompt=request.negative_prompt, original_prompt=request.prompt,
        original_negative_prompt=request.negative_prompt, model="tiny", model_hash="abcdef0123", sampler="Euler a", steps=2,
        cfg=7.0, width=64, height=64, clip_skip=1, seed=seed, translator="glossary" if english else None, timings={"total": 1.5},
    )  # fmt: skip


def add(
    store: History, prompt: str, english: str | None = None, error: BaseException | None = None, paths: list[Path] = ()
) -> int:
    request = GenerationRequest(prompt=prompt, seed=5)
    row_id = store.start(request, surface="test")
    store.finish(row_id, None if error else fake_result(request, english, list(paths)), error)
    return row_id


@pytest.fixture
def store(isolated_home: Path):
    with History.open() as history:
        yield history


def test_new_database_is_wal_at_the_latest_schema(store: History, isolated_home: Path):
    assert store.path == isolated_home / "history.db"
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000
    assert H.schema_version(store.conn) == H.SCHEMA_VERSION == len(H.MIGRATIONS)
    versions = [r[0] for r in store.conn.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, H.SCHEMA_VERSION + 1))


def test_migrates_a_first_version_database_keeping_its_rows(tmp_path: Path):
    path = tmp_path / "history.db"
    conn = H.connect(path)
    assert H.migrate(conn, target=1) == 1
    conn.execute(
        "INSERT INTO generations (created_at, finished_at, status, request, original_prompt, prompt, model, seed, seeds, paths)"
        " VALUES ('2024-01-02T03:04:05+00:00', '2024-01-02T03:04:09+00:00', 'done', ?, 'kucing oranye', 'orange cat', 'old', 9, '[9]', '[]')",
        (json.dumps({"prompt": "kucing oranye", "seed": 9, "removed_field": 1}),),
    )
    columns = {r[1] for r in conn.execute("PRAGMA table_info(generations)")}
    assert "surface" not in columns
    conn.close()

    with History(path) as store:
        assert H.schema_version(store.conn) == H.SCHEMA_VERSION
        (row,) = store.search("oranye")
        assert row["prompt"] == "orange cat" and row["surface"] is None and row["seeds"] == [9]
        # A field that a later gambarkan dropped does not break re-running an old row.
        assert H.rerun_fields(row) == {"prompt": "kucing oranye", "seed": 9}
        row_id = add(store, "baru")  # new columns usable after the upgrade
        assert store.get(row_id)["surface"] == "test"


def test_each_migration_step_applies_once(tmp_path: Path):
    conn = H.connect(tmp_path / "h.db")
    for target in range(1, H.SCHEMA_VERSION + 1):
        assert H.migrate(conn, target) == target
        assert H.migrate(conn, target) == target
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_database_from_a_newer_version_is_refused_clearly(tmp_path: Path):
    path = tmp_path / "history.db"
    History(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (?, 'future')", (H.SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(HistoryError, match="newer gambarkan"):
        History(path)


def test_damaged_database_gives_one_clear_error(tmp_path: Path):
    path = tmp_path / "history.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError, match="damaged"):
        History(path)


def test_statuses_and_errors(store: History):
    done = add(store, "a cat", "a cat")
    failed = add(store, "a dog", error=DiskFullError("no space left on the disk holding /x", "free some space"))
    cancelled = add(store, "a bird", error=CancelledError("generation cancelled"))
    crashed = add(store, "a fish", error=RuntimeError("boom\nsecond line"))
    assert store.get(done)["status"] == "done" and store.get(done)["error"] is None
    assert (
        store.get(failed)["status"] == "failed"
        and store.get(failed)["error"] == "no space left on the disk holding /x (free some space)"
    )
    assert store.get(cancelled)["status"] == "cancelled"
    assert store.get(crashed)["error"] == "RuntimeError: boom"


def test_search_in_original_and_english_prompts_newest_first(store: History):
    a = add(store, "kucing oranye tidur", "orange cat sleeping")
    b = add(store, "anjing di pantai", "dog on the beach")
    c = add(store, "kucing hitam", "black cat")
    d = add(store, "100% match_me")
    assert [r["id"] for r in store.search()] == [d, c, b, a]
    assert [r["id"] for r in store.search("kucing")] == [c, a]
    assert [r["id"] for r in store.search("CAT")] == [c, a]  # English prompt, any case
    assert [r["id"] for r in store.search("cat oranye")] == [a]  # every word, either prompt
    assert [r["id"] for r in store.search("beach")] == [b]
    assert [r["id"] for r in store.search("100%")] == [d]
    assert store.search("0%m") == [] and store.search("a_c") == []  # % and _ are literal
    assert [r["id"] for r in store.search(limit=2)] == [d, c]
    assert store.search("zebra") == []


def test_dead_running_rows_show_as_interrupted_and_their_temp_files_go(store: History, tmp_path: Path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "out"
    out.mkdir()
    (out / f".gambarkan-{dead.pid}-5.png.tmp").write_bytes(b"partial")
    (out / ".gambarkan-999999999-5.png.tmp").write_bytes(b"someone else")
    mine = store.start(GenerationRequest(prompt="still running"), out_dir=out)
    theirs = store.start(GenerationRequest(prompt="was killed"), out_dir=out)
    reused = store.start(GenerationRequest(prompt="pid reused"))
    store.conn.execute("UPDATE generations SET pid = ? WHERE id = ?", (dead.pid, theirs))
    store.conn.execute("UPDATE generations SET pid_started = pid_started - 1000 WHERE id = ?", (reused,))
    elsewhere_old = store.start(GenerationRequest(prompt="other machine, yesterday"))
    elsewhere_new = store.start(GenerationRequest(prompt="other machine, now"))
    store.conn.execute(
        "UPDATE generations SET host = 'another-machine', pid = ? WHERE id IN (?, ?)",
        (dead.pid, elsewhere_old, elsewhere_new),
    )
    store.conn.execute("UPDATE generations SET created_at = '2020-01-01T00:00:00+00:00' WHERE id = ?", (elsewhere_old,))
    statuses = {r["id"]: r["status"] for r in store.search()}
    assert statuses == {
        mine: "running",
        theirs: "interrupted",
        reused: "interrupted",
        elsewhere_old: "interrupted",
        elsewhere_new: "running",
    }
    assert "stopped before the run finished" in store.get(theirs)["error"]
    assert sorted(p.name for p in out.iterdir()) == [".gambarkan-999999999-5.png.tmp"]


def test_export_jsonl_and_csv(store: History, tmp_path: Path):
    png = tmp_path / "00001-5.png"
    png.write_bytes(b"x")
    a = add(store, 'kucing "lucu", 1,2', "cute cat", paths=[png])
    b = add(store, "baris\ndua")
    lines = store.export("jsonl").splitlines()
    assert [json.loads(line)["id"] for line in lines] == [b, a]
    first = json.loads(lines[1])
    assert (
        first["original_prompt"] == 'kucing "lucu", 1,2'
        and first["paths"] == [str(png)]
        and first["request"]["seed"] == 5
    )

    rows = list(csv.DictReader(io.StringIO(store.export("csv"))))
    assert [int(r["id"]) for r in rows] == [b, a]
    assert rows[0]["original_prompt"] == "baris\ndua"
    assert rows[1]["original_prompt"] == 'kucing "lucu", 1,2' and rows[1]["prompt"] == "cute cat"
    assert json.loads(rows[1]["paths"]) == [str(png)] and json.loads(rows[1]["seeds"]) == [5]
    assert list(rows[0]) == list(H.COLUMNS)
    assert len(store.export("jsonl", text="kucing").splitlines()) == 1


def test_delete_rows_and_optionally_their_files(store: History, tmp_path: Path):
    files = [tmp_path / f"0000{i}-5.png" for i in range(3)]
    for f in files:
        f.write_bytes(b"png")
    keep = add(store, "keep", paths=[files[0]])
    rows_only = add(store, "rows only", paths=[files[1]])
    with_files = add(store, "with files", paths=[files[2]])
    assert store.delete([rows_only]) == []
    assert files[1].exists()
    assert store.delete([with_files], files=True) == [files[2]]
    assert not files[2].exists() and files[0].exists()
    assert [r["id"] for r in store.search()] == [keep]
    with pytest.raises(HistoryNotFoundError, match="no history entry with id 99"):
        store.delete([99])


WRITER = textwrap.dedent(
    """
    import sys
    from gambarkan.outputs.history import History
    from gambarkan.request import GenerationRequest
    name, n = sys.argv[1], int(sys.argv[2])
    for i in range(n):
        with History.open() as store:
            row = store.start(GenerationRequest(prompt=f"{name} {i}"))
            store.finish(row)
    print("ok")
    """
)


def test_two_processes_writing_at_once_both_get_every_row(isolated_home: Path):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, name, "40"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name in ("alpha", "beta")
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert all("locked" not in err for _, err in outputs)
    with History.open() as store:
        rows = store.search(limit=None)
        assert len(rows) == 80 and {r["status"] for r in rows} == {"done"}
        assert sum(r["original_prompt"].startswith("alpha") for r in rows) == 40
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- rows written by the engine ----------------------------------------------------------------


def test_engine_records_a_done_row_with_everything(engine, tiny_sd15_dir: Path, tmp_path: Path):
    request = GenerationRequest(
        prompt="a red cat",
        negative_prompt="blurry",
        model=str(tiny_sd15_dir),
        seed=-1,
        batch_size=2,
        out_dir=str(tmp_path),
        **SMALL,
    )
    result = engine.generate(request)
    with History.open() as store:
        (row,) = store.search()
    assert row["status"] == "done" and row["surface"] == "api" and row["pid"] == os.getpid()
    assert row["original_prompt"] == row["prompt"] == "a red cat" and row["negative_prompt"] == "blurry"
    assert row["model"] == "tiny-sd15" and row["model_hash"] == result.model_hash
    assert row["seed"] == result.seed and row["seeds"] == [result.seed, result.seed + 1]
    assert row["paths"] == [str(p) for p in result.paths] and all(Path(p).is_file() for p in row["paths"])
    assert row["steps"] == 2 and row["width"] == 64 and row["timings"]["total"] > 0
    assert row["request"] == request.model_dump()
    assert H.rerun_fields(row) == {**request.model_dump(), "seed": result.seed}


def test_engine_records_failed_and_cancelled_runs(engine, tiny_sd15_dir: Path, tmp_path: Path):
    import threading

    with pytest.raises(GambarkanError):
        engine.generate(GenerationRequest(prompt="x", model=str(tmp_path / "no-such-model"), **SMALL))
    cancel = threading.Event()
    with pytest.raises(CancelledError):
        engine.generate(
            GenerationRequest(prompt="y", model=str(tiny_sd15_dir), seed=1, save=False, **SMALL),
            on_progress=lambda e: cancel.set(),
            cancel=cancel,
        )
    with History.open() as store:
        cancelled, failed = store.search()
    assert failed["status"] == "failed" and "no-such-model" in failed["error"] and failed["paths"] == []
    assert cancelled["status"] == "cancelled" and cancelled["error"].startswith("generation cancelled")


def test_gambarkan_generate_api_adds_a_row(tiny_sd15_dir: Path, monkeypatch: pytest.MonkeyPatch):
    import gambarkan
    from gambarkan.engine import generate as gen

    monkeypatch.setattr(gen, "_default_engine", None)
    result = gambarkan.generate(prompt="a house", model=str(tiny_sd15_dir), seed=3, save=False, **SMALL)
    with History.open() as store:
        (row,) = store.search()
    assert row["surface"] == "api" and row["seed"] == 3 and row["paths"] == [] and result.seed == 3


def test_engine_without_history_adds_no_row(tiny_sd15_dir: Path, isolated_home: Path):
    from gambarkan.engine.generate import Engine

    Engine(history=False).generate(
        GenerationRequest(prompt="bench", model=str(tiny_sd15_dir), seed=1, save=False, **SMALL)
    )
    assert not (isolated_home / "history.db").exists()


def test_broken_history_never_costs_an_image(
    engine, tiny_sd15_dir: Path, tmp_path: Path, isolated_home: Path, caplog: pytest.LogCaptureFixture
):
    (isolated_home / "history.db").mkdir(parents=True)  # cannot be opened as a database
    result = engine.generate(
        GenerationRequest(prompt="x", model=str(tiny_sd15_dir), seed=1, out_dir=str(tmp_path), **SMALL)
    )
    assert result.paths[0].is_file()
    assert "not saved in the history" in caplog.text


def test_server_requests_add_rows_labelled_server(tiny_sd15_dir: Path, tmp_path: Path):
    """A1111 and OpenAI requests through the real app and engine each leave a done row."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from gambarkan.config import Settings
    from gambarkan.server.app import create_app
    from gambarkan.server.state import ServerConfig

    key = "k-history-0123456789"
    app = create_app(Settings.from_env(), config=ServerConfig(model=str(tiny_sd15_dir), api_keys=[key], max_steps=50))
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(app, base_url="http://127.0.0.1") as client:
        a1111 = client.post(
            "/sdapi/v1/txt2img",
            headers=auth,
            json={"prompt": "rumah merah", "steps": 2, "width": 64, "height": 64, "seed": 4, "cfg_scale": 5},
        )
        assert a1111.status_code == 200, a1111.text
        openai = client.post(
            "/v1/images/generations",
            headers=auth,
            json={"prompt": "a blue boat", "size": "64x64", "steps": 2, "seed": 9, "response_format": "b64_json"},
        )
        assert openai.status_code == 200, openai.text
    with History.open() as store:
        newest, oldest = store.search()
    assert [oldest["original_prompt"], newest["original_prompt"]] == ["rumah merah", "a blue boat"]
    assert {oldest["surface"], newest["surface"]} == {"server"}
    assert oldest["status"] == newest["status"] == "done"
    assert (oldest["seed"], oldest["steps"], oldest["cfg"]) == (4, 2, 5.0) and newest["seed"] == 9
    assert oldest["model"] == newest["model"] == "tiny-sd15"


def test_outputs_go_to_a_folder_per_day_unless_told(engine, tiny_sd15_dir: Path, tmp_path: Path):
    import datetime

    from gambarkan.config import Settings

    result = engine.generate(GenerationRequest(prompt="a cat", model=str(tiny_sd15_dir), seed=1, **SMALL))
    (path,) = result.paths
    assert path.parent == Settings.from_env().output_dir / datetime.date.today().isoformat()
    assert path.is_file()
    chosen = engine.generate(GenerationRequest(prompt="a cat", model=str(tiny_sd15_dir), seed=1, out_dir=str(tmp_path / "drive"), **SMALL))
    assert chosen.paths[0].parent == tmp_path / "drive"
    with History.open() as store:
        rows = store.search()
    assert [r["paths"] for r in rows] == [[str(chosen.paths[0])], [str(path)]]
