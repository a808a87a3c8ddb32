"""Every failure becomes ``{"error": {...}}`` JSON with a 4xx/5xx status; never a traceback.

``GambarkanError.to_dict()`` gives code, message, hint and status; ``type`` and ``param`` are
added so OpenAI clients (which read ``error.message``/``error.type``) show it well.
"""

from __future__ import annotations

import logging
from typing import Any

from gambarkan.errors import GambarkanError

log = logging.getLogger("gambarkan.server")


class NotFoundError(GambarkanError):
    """A path, image or resource that does not exist."""

    http_status = 404
    code = "not_found"


def error_body(error: GambarkanError, param: str | None = None) -> dict[str, Any]:
    data = error.to_dict()
    data["type"] = "invalid_request_error" if error.http_status < 500 else "server_error"
    data["param"] = param
    return {"error": data}


def _simple(status: int, code: str, message: str, hint: str | None = None, param: str | None = None) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"code": code, "message": message, "hint": hint, "status": status, "type": kind, "param": param}}


def _validation_message(errors: list[Any]) -> tuple[str, str | None]:
    """One line naming the first bad field, like GenerationRequest's own errors."""
    if not errors:
        return "invalid request", None
    err = errors[0]
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc) or "body"
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if err.get("type") == "missing":
        return f"{field} is required", field
    if err.get("type") in ("json_invalid", "model_attributes_type", "dict_type") and field == "body":
        return "the request body is not a JSON object", None
    if err.get("type") == "extra_forbidden":
        return f"unknown field '{field}'", field
    return f"invalid {field}: {msg}", field


def _a1111(request: Any, body: dict[str, Any]) -> dict[str, Any]:
    """A1111 clients read ``detail`` (FastAPI's key): on ``/sdapi/`` it sits beside our ``error``.

    A 422 carries FastAPI's list shape (what A1111 answers for a bad field), other statuses a string.
    """
    if request.url.path.startswith("/sdapi/"):
        error = body["error"]
        if error["status"] == 422:
            body["detail"] = [{"loc": ["body", error.get("param") or "body"], "msg": error["message"], "type": error["code"]}]
        else:
            body["detail"] = error["message"]
    return body


def install_error_handlers(app: Any) -> None:
    """Register handlers so no response ever carries a Python traceback."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(GambarkanError)
    async def _gambarkan(request: Any, exc: GambarkanError) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        return JSONResponse(_a1111(request, error_body(exc)), status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Any, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(list(exc.errors()))
        return JSONResponse(_a1111(request, _simple(422, "invalid_request", message, None, param)), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Any, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(status, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        return JSONResponse(_a1111(request, _simple(status, code, detail)), status_code=status, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Any, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            _simple(500, "internal_error", "internal server error", "see the server log"), status_code=500
        )
