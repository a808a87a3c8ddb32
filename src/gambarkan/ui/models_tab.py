"""The Models tab's layout: every package with what it is good for, its size, speed and licence; download."""

from typing import Any

from gambarkan.ui.helpers import MODEL_COLUMNS
from gambarkan.ui.i18n import t


def build_models_tab(gr: Any, ctx: Any, L: Any, lang: str) -> dict[str, Any]:
    """The components of the Models tab, by name."""
    from gambarkan.models.catalog import load_catalog

    m: dict[str, Any] = {}
    m["table"] = L(gr.Dataframe(headers=[t(k, lang) for k in MODEL_COLUMNS], interactive=False, wrap=True,
                                label=t("models_table", lang), elem_id="gk-models"), label="models_table")
    m["disk"] = gr.Markdown("", elem_id="gk-models-disk")
    with gr.Row():
        m["pick"] = L(gr.Dropdown(list(load_catalog(ctx.settings)), label=t("models_pick", lang)), label="models_pick")
        m["download"] = L(gr.Button(t("models_download", lang)), value="models_download")
        m["refresh"] = L(gr.Button(t("models_refresh", lang), elem_id="gk-models-refresh"), value="models_refresh")
    m["status"] = gr.Markdown("")
    return m
