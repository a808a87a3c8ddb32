"""Ray (optional extra ``gambarkan[ray]``): batch rows with Ray Data over engine actors.

``gambarkan batch FILE --ray [ADDRESS]`` turns the rows still to run into a Ray Dataset and
maps it over a pool of actors, one :class:`~gambarkan.engine.generate.Engine` each (a model
is loaded once per actor). Workers do not write files: they return PNG bytes with their
metadata, and the driver saves them, adds the history rows (one writer for SQLite) and
appends the manifest, so resume works exactly as in a local run. Ray retries a task whose
actor died; the driver only records what comes back, once.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Iterator
from typing import Any

from gambarkan.errors import DependencyMissingError, GambarkanError, NetworkError

INSTALL = "pip install 'gambarkan[ray]'  (or: pip install 'ray[data,serve]')"
CONNECT_TIMEOUT_S = 5.0


def import_ray() -> Any:
    """The ``ray`` module, or one line saying what to install."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise DependencyMissingError(code="ray_not_installed", params={"install": INSTALL}) from None
    return ray


def _host_port(address: str) -> tuple[str, int]:
    rest = address.split("://", 1)[-1]
    host, _, port = rest.rpartition(":")
    if not host:
        host, port = rest, ""
    default = 10001 if address.startswith("ray://") else 6379
    try:
        return host.strip("[]"), int(port) if port else default
    except ValueError:
        raise GambarkanError(f"'{address}' is not a Ray address", "write host:port, e.g. 10.0.0.5:6379 or ray://head:10001") from None


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail in one line within ``timeout`` when nothing listens at ``address`` (Ray itself would wait long)."""
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        raise NetworkError(code="ray_unreachable", params={"address": address, "reason": str(exc.strerror or exc)}) from None


def connect(address: str | None = "auto", **init_kwargs: Any) -> Any:
    """Connect to the cluster at ``address``; ``auto``/None: RAY_ADDRESS if set, else a local Ray started here."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    target = os.environ.get("RAY_ADDRESS") if address in (None, "auto", "local") else address
    if address == "local":
        target = None
    if target:
        if target != "auto":  # RAY_ADDRESS=auto: Ray finds the cluster started on this machine itself
            check_reachable(target)
        try:
            ray.init(address=target, log_to_driver=False, **init_kwargs)
        except ConnectionError as exc:
            raise NetworkError(f"cannot connect to the Ray cluster at {target}: {str(exc).splitlines()[0] if str(exc) else exc}",
                               "start it with `ray start --head`, or check the address") from None  # fmt: skip
    else:
        env = {k: v for k, v in os.environ.items() if k.startswith(("GAMBARKAN_", "HF_")) or k == "PYTHONPATH"}
        ray.init(log_to_driver=False, include_dashboard=False, runtime_env={"env_vars": env}, **init_kwargs)
    return ray


def make_row(engine: Any, text: str) -> str:
    """Run one request (JSON) on ``engine`` without saving; JSON of its result with PNG bytes, or its error."""
    from gambarkan.outputs.png import encode_png
    from gambarkan.request import GenerationRequest
    from gambarkan.scale.runner import _error_text

    try:
        request = GenerationRequest(**json.loads(text)).merged(save=False)
        result = engine.generate(request)
    except Exception as exc:  # noqa: BLE001 - one row's failure is reported, the worker goes on
        from gambarkan.errors import GambarkanError

        return json.dumps({"error": _error_text(exc), "code": getattr(exc, "code", None) if isinstance(exc, GambarkanError) else None})
    data = result.to_dict()
    data["images"] = [
        {"seed": i.seed, "parameters": i.parameters, "png": base64.b64encode(encode_png(i.image, i.parameters)).decode("ascii")}
        for i in result.images
    ]
    return json.dumps(data)


def _engine(surface: str) -> Any:
    from gambarkan.cli.common import quiet_libraries
    from gambarkan.engine.generate import Engine

    quiet_libraries()
    return Engine(surface=surface, history=False)  # the driver / ingress keeps the history


def _quiet_ray_data(ray: Any) -> None:
    """Our progress and summary are the user's; Ray Data's own bars and INFO lines are noise on the terminal."""
    import logging

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    if hasattr(context, "print_on_execution_start"):
        context.print_on_execution_start = False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)


class EngineWorker:
    """A Ray Data actor: one Engine; makes each row's images and returns them as PNG bytes."""

    def __init__(self) -> None:
        self.engine = _engine("ray")

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        return {"key": [str(k) for k in batch["key"]], "output": [make_row(self.engine, str(t)) for t in batch["request"]]}


def _result_from(data: dict[str, Any], request: Any, settings: Any, on_image: Any = None) -> Any:
    """Save a worker's images where the row asked and rebuild its GenerationResult (driver side)."""
    import io

    from PIL import Image

    from gambarkan.engine.generate import _output_dir
    from gambarkan.outputs.png import save_png
    from gambarkan.request import GeneratedImage, GenerationResult

    folder = _output_dir(request, settings) if request.save else None
    images = []
    for index, item in enumerate(data.pop("images")):
        image = Image.open(io.BytesIO(base64.b64decode(item["png"])))
        image.load()
        path = save_png(image, folder, item["seed"], item["parameters"]) if folder is not None else None
        if on_image is not None:
            on_image(path, item["seed"])
        images.append(GeneratedImage(image, item["seed"], index, path, item["parameters"]))
    fields = {k: v for k, v in data.items() if k in GenerationResult.__dataclass_fields__ and k != "images"}
    return GenerationResult(images=images, **fields)


def run_jobs_on_ray(jobs: list[Any], *, manifest: Any, address: str | None = "auto", workers: int | None = None,
                    gpus_per_worker: float | None = None) -> Iterator[Any]:  # fmt: skip
    """Like ``scale.runner.run_jobs``, but the rows still to run go through Ray Data actors."""
    from gambarkan.config import Settings
    from gambarkan.outputs.history import record_finish
    from gambarkan.scale.runner import RowResult, done_entry, failed_entry, split_done

    skipped, pending = split_done(jobs, manifest, Settings.from_env())
    yield from skipped
    runnable = [j for j in pending if j.request is not None]
    for job in pending:
        if job.request is None:
            yield RowResult(job.key, job.line, "failed", error=job.error)
    if not runnable:
        return
    ray = connect(address)
    if gpus_per_worker is None:
        gpus_per_worker = 1.0 if ray.cluster_resources().get("GPU", 0) else 0.0
    if workers is None:
        fits = ray.cluster_resources().get("GPU", 0) / gpus_per_worker if gpus_per_worker else ray.cluster_resources().get("CPU", 1)
        workers = max(1, min(len(runnable), int(fits)))
    by_key = {j.key: j for j in runnable}
    _quiet_ray_data(ray)
    dataset = ray.data.from_items([{"key": j.key, "request": json.dumps(j.request.model_dump(mode="json", context={"pixels": True}))} for j in runnable])
    # Ray Data restarts a dead actor and retries its task by default (max_restarts/max_task_retries -1).
    mapped = dataset.map_batches(EngineWorker, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1, num_gpus=gpus_per_worker)
    settings = Settings.from_env()
    for row in mapped.iter_rows():
        job = by_key[row["key"]]
        data = json.loads(row["output"])
        if "error" in data:
            manifest.append(failed_entry(job, data["error"]))
            yield RowResult(job.key, job.line, "failed", job.request, error=data["error"])
            continue
        result = _result_from(data, job.request, settings)
        record_finish(settings, None, job.request, result, surface="batch")
        entry = done_entry(job, result)
        manifest.append(entry)
        yield RowResult(job.key, job.line, "done", job.request, result, images=entry["images"], seeds=entry["seeds"])


# -- Ray Serve: the engine as replicas behind the same FastAPI app ------------------------------


class EngineReplica:
    """A Ray Serve replica: one Engine (one model load per replica), one request at a time."""

    def __init__(self) -> None:
        self.engine = _engine("server")

    def generate(self, text: str) -> str:
        return make_row(self.engine, text)


def deploy_engines(replicas: int, gpus_per_replica: float | None = None, cpus_per_replica: float = 1.0) -> Any:
    """Start ``replicas`` EngineReplica copies on Serve (no HTTP route of their own); returns the handle."""
    from ray import serve

    ray = import_ray()
    if gpus_per_replica is None:
        gpus_per_replica = 1.0 if ray.cluster_resources().get("GPU", 0) else 0.0
    deployment = serve.deployment(EngineReplica, name="gambarkan-engine", max_ongoing_requests=1).options(
        num_replicas=replicas, ray_actor_options={"num_cpus": cpus_per_replica, "num_gpus": gpus_per_replica}
    )
    return serve.run(deployment.bind(), name="gambarkan-engine", route_prefix=None)


class RemoteEngine:
    """Stands where the server's Engine stands: the job queue calls ``generate``; a Serve replica runs it.

    History rows and PNG files are written here, at the ingress (one SQLite writer); the replica
    only makes pixels. A replica that dies mid-request is retried on another one (``retries``).
    Cancel is checked while waiting; step progress is not forwarded from the replica.
    """

    def __init__(self, handle: Any, settings: Any = None, surface: str = "server", retries: int = 2) -> None:
        from gambarkan.config import Settings

        self.handle = handle
        self.settings = settings or Settings.from_env()
        self.surface = surface
        self.history = True
        self.retries = retries

    def generate(self, request: Any, *, on_progress: Any = None, cancel: Any = None, preview_every: int = 0, surface: str | None = None) -> Any:
        from gambarkan.engine.generate import _output_dir
        from gambarkan.outputs.history import record_finish, record_image, record_start

        surface = surface or self.surface
        run_id = record_start(self.settings, request, surface=surface, out_dir=_output_dir(request, self.settings) if request.save else None)
        try:
            data = self._call(json.dumps(request.model_dump(mode="json", context={"pixels": True})), cancel)
            if "error" in data:
                raise _remote_error(data)
            result = _result_from(data, request, self.settings, lambda path, seed: record_image(self.settings, run_id, path, seed))
        except BaseException as exc:
            record_finish(self.settings, run_id, request, None, exc, surface=surface)
            raise
        record_finish(self.settings, run_id, request, result, surface=surface)
        return result

    def _call(self, text: str, cancel: Any) -> dict[str, Any]:
        from gambarkan.errors import CancelledError

        for attempt in range(self.retries + 1):
            response = self.handle.generate.remote(text)
            while True:
                if cancel is not None and cancel.is_set():
                    response.cancel()
                    raise CancelledError("generation cancelled", "the replica stops the request")
                try:
                    return json.loads(response.result(timeout_s=0.5))
                except TimeoutError:
                    continue
                except Exception as exc:
                    if attempt >= self.retries or not type(exc).__module__.startswith("ray"):
                        raise
                    break
        raise AssertionError("unreachable")


def _remote_error(data: dict[str, Any]) -> GambarkanError:
    """The replica's error as the same GambarkanError class, so the server answers with the same status."""
    from gambarkan import errors

    matches = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, GambarkanError) and c.code == data.get("code")]
    cls = max(matches, key=lambda c: len(c.__mro__), default=GambarkanError)  # the most specific (not the base's default code)
    return cls(data["error"])
