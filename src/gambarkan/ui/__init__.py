"""The web UI (Gradio): ``gambarkan ui`` alone, or mounted at ``/`` by ``gambarkan serve``.

Needs the ``ui`` extra (``pip install 'gambarkan[ui]'``); importing this package imports nothing heavy.
"""
