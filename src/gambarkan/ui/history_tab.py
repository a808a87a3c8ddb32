"""The History tab's layout: a searchable gallery of past runs, their settings, reuse and delete.

The handlers live with the rest in ``app.py`` (they fill the Create tab's form).
"""

from typing import Any

from gambarkan.ui.i18n import t


def build_history_tab(gr: Any, L: Any, lang: str) -> dict[str, Any]:
    """The components of the History tab, by name."""
    h: dict[str, Any] = {"ids": gr.State([]), "selected": gr.State(-1)}
    with gr.Row():
        h["query"] = L(gr.Textbox(label=t("history_search", lang), scale=4, elem_id="gk-history-search"), label="history_search")
        h["refresh"] = L(gr.Button(t("history_refresh", lang), scale=1, elem_id="gk-history-refresh"), value="history_refresh")
    h["gallery"] = L(gr.Gallery(label=t("history_gallery", lang), columns=6, height="auto", allow_preview=False,
                                elem_id="gk-history"), label="history_gallery")
    h["details"] = L(gr.Textbox(label=t("history_details", lang), lines=3, interactive=False, elem_id="gk-history-details"), label="history_details")
    with gr.Row():
        h["reuse"] = L(gr.Button(t("send_to_prompt", lang), variant="primary", elem_id="gk-history-reuse"), value="send_to_prompt")
        # "send to image -> image / inpaint" buttons go here once those modes exist
        h["delete"] = L(gr.Button(t("history_delete", lang), variant="stop", elem_id="gk-history-delete"), value="history_delete")
    h["status"] = gr.Markdown("", elem_id="gk-history-status")
    return h
