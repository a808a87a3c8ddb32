"""The native job API: ``/api/jobs`` (+ SSE events), images, translate, presets, models, health."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from gambarkan import __version__
from gambarkan.errors import InvalidRequestError
from gambarkan.request import GenerationRequest
from gambarkan.server.jobs import Job

router = APIRouter(tags=["native"])

_JOB_SCHEMA: dict[str, Any] = {
    **{k: v for k, v in GenerationRequest.model_json_schema().items() if k not in ("title", "description")},
}
_JOB_SCHEMA["properties"] = {
    **{k: v for k, v in _JOB_SCHEMA.get("properties", {}).items() if k != "out_dir"},
    "preview_every": {
        "type": "integer",
        "minimum": 0,
        "maximum": 150,
        "default": 0,
        "description": "send a preview image every N steps (0: none)",
    },
}
_JOB_SCHEMA["additionalProperties"] = False


class TranslateBody(BaseModel):
    prompt: str = Field(max_length=20_000)
    negative_prompt: str = Field("", max_length=20_000)
    translator: str | None = None


def _state(request: Request) -> Any:
    return request.app.state.gambarkan


@router.post(
    "/api/jobs",
    status_code=202,
    summary="Queue a generation (a GenerationRequest as JSON); returns the job id at once",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _JOB_SCHEMA}}}},
)
async def create_job(request: Request, body: Any = Body(None)) -> JSONResponse:  # noqa: B008 - FastAPI idiom
    state = _state(request)
    if not isinstance(body, dict):
        raise InvalidRequestError("the request body must be a JSON object", 'e.g. {"prompt": "kucing lucu"}')
    fields = dict(body)
    preview_every = fields.pop("preview_every", 0)
    if not isinstance(preview_every, int) or isinstance(preview_every, bool) or not 0 <= preview_every <= 150:
        raise InvalidRequestError("invalid preview_every: must be an integer 0-150")
    job = Job(state.build_request(fields), source="api", preview_every=preview_every)
    state.queue.submit(job)
    data = job.to_dict(position=state.queue.position(job))
    data["urls"] = {"self": f"/api/jobs/{job.id}", "events": f"/api/jobs/{job.id}/events"}
    return JSONResponse(data, status_code=202, headers={"Location": f"/api/jobs/{job.id}"})


@router.get("/api/jobs", summary="Recent jobs, newest last")
async def list_jobs(request: Request) -> dict[str, Any]:
    state = _state(request)
    return {"jobs": [job.to_dict(state.queue.position(job)) for job in state.queue.jobs()]}


@router.get("/api/jobs/{job_id}", summary="State, progress and result of a job")
async def get_job(request: Request, job_id: str) -> dict[str, Any]:
    state = _state(request)
    job = state.queue.get(job_id)
    return job.to_dict(state.queue.position(job))


@router.delete("/api/jobs/{job_id}", summary="Cancel a job: queued ones at once, running ones at the next step")
async def cancel_job(request: Request, job_id: str) -> dict[str, Any]:
    state = _state(request)
    job = state.queue.cancel(job_id)
    data = job.to_dict(state.queue.position(job))
    if data["status"] == "running":
        data["status"] = "cancelling"
    return data


@router.get(
    "/api/jobs/{job_id}/events",
    summary="Server-sent events: queued (position), started, progress (step, preview), done (result) or error",
    response_class=JSONResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def job_events(request: Request, job_id: str) -> Any:
    from sse_starlette.sse import EventSourceResponse

    state = _state(request)
    job = state.queue.get(job_id)
    last = request.headers.get("last-event-id", "")
    start = int(last) + 1 if last.isdigit() else 0

    async def events():
        async for event in job.stream(start):
            yield {
                "id": str(event["id"]),
                "event": event["event"],
                "data": json.dumps(event["data"], ensure_ascii=False),
            }

    return EventSourceResponse(events(), ping=15)


@router.get(
    "/api/images/{name:path}",
    summary="A PNG from the server's output folder (names come from job results)",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}},
)
async def get_image(request: Request, name: str) -> FileResponse:
    path = _state(request).image_path(name)
    return FileResponse(path, media_type="image/png")


@router.post("/api/translate", summary="Translate a prompt the way generation would (Indonesian -> English)")
async def translate(request: Request, body: TranslateBody) -> dict[str, Any]:
    from starlette.concurrency import run_in_threadpool

    from gambarkan.engine import generate as engine_module

    state = _state(request)
    req = GenerationRequest(prompt=body.prompt, negative_prompt=body.negative_prompt, translator=body.translator)
    result = await run_in_threadpool(engine_module._translate, req.prompt, req.negative_prompt, req, state.settings)
    return {
        "prompt": result.prompt,
        "negative_prompt": result.negative_prompt,
        "original_prompt": result.original_prompt,
        "original_negative_prompt": result.original_negative_prompt,
        "translator": result.translator,
    }


@router.get("/api/presets", summary="Model packages (presets) and whether this server has them")
async def presets(request: Request) -> dict[str, Any]:
    from gambarkan.models.catalog import load_catalog

    state = _state(request)
    available = state.models()
    items = []
    for name, spec in load_catalog(state.settings).items():
        items.append(
            {
                "name": name,
                "title": spec.title_en,
                "title_id": spec.title_id,
                "description": spec.description_en,
                "description_id": spec.description_id,
                "kind": spec.kind,
                "license": spec.license,
                "installed": name in available,
                "default": name == state.default_entry.name,
                "defaults": {
                    "sampler": spec.sampler,
                    "steps": spec.steps,
                    "cfg": spec.cfg,
                    "width": spec.width,
                    "height": spec.height,
                    "clip_skip": spec.clip_skip,
                },
            }
        )
    return {"presets": items}


@router.get("/api/models", summary="Model names a request may use (the default first)")
async def models(request: Request) -> dict[str, Any]:
    state = _state(request)
    return {
        "models": [
            {"name": e.name, "kind": e.kind, "default": e.default, "description": e.description}
            for e in state.models().values()
        ]
    }


@router.get("/api/health", summary="Liveness and queue state (no API key needed)")
async def health(request: Request) -> dict[str, Any]:
    state = _state(request)
    queue = state.queue
    return {
        "status": "stopping" if queue.closing else "ok",
        "version": __version__,
        "queue": {"pending": queue.pending_count, "running": len(queue.running()), "size": queue.size},
        "workers": len(state.engines),
        "model": state.default_entry.name,
    }
