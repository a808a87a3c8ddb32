"""``gambarkan serve``: OpenAI-, AUTOMATIC1111-compatible and native HTTP APIs over one job queue.

Import ``gambarkan.server.app.create_app`` (needs the ``server`` extra: fastapi, uvicorn,
sse-starlette); this package itself imports nothing heavy.
"""
