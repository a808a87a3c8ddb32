"""Property-based requests from the OpenAPI schema (schemathesis): no input gives a 5xx.

Every response must also match the schema the app publishes. ``GAMBARKAN_SCHEMA_EXAMPLES``
(default 25 per operation) runs it longer.
"""

from __future__ import annotations

import os

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings

from tests.server.conftest import InstantEngine, server_settings


def _app():
    import tempfile
    from pathlib import Path

    from gambarkan.server.app import create_app
    from gambarkan.server.state import ServerConfig

    home = Path(tempfile.mkdtemp(prefix="gambarkan-schema-"))
    settings = server_settings(home)
    app = create_app(
        settings, InstantEngine(settings), config=ServerConfig(model="instant-model", queue_size=4, max_images=4, allowed_hosts=["testserver"]),  # schemathesis' ASGI host name
    )
    app.state.gambarkan.queue.start()  # schemathesis' ASGI client does not run the lifespan
    return app


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("GAMBARKAN_SCHEMA_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case):
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    if case.path == "/sdapi/v1/interrogate":  # promised: a clear 501 until gambarkan can caption (issue 19)
        response = case.call()
        assert (response.status_code == 501 or 400 <= response.status_code < 500) and response.json()["error"]["message"], response.text
        return
    # Cancelling or interrupting random jobs is fine; a 5xx or an off-schema answer never is.
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
