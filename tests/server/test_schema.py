"""Property-based requests from the OpenAPI schema (schemathesis): no input gives a 5xx."""

from __future__ import annotations

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
        settings, InstantEngine(settings), config=ServerConfig(model="instant-model", queue_size=4, max_images=4)
    )
    app.state.gambarkan.queue.start()  # schemathesis' ASGI client does not run the lifespan
    return app


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case):
    from schemathesis.checks import not_a_server_error

    # Cancelling or interrupting random jobs is fine; a 5xx never is.
    case.call_and_validate(checks=[not_a_server_error])
