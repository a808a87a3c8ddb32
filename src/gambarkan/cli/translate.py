"""``gambarkan translate``: show the English prompt gambarkan would use."""

from __future__ import annotations

import click

from gambarkan.cli.common import handle_errors, not_empty, print_json


@click.command()
@click.argument("text", callback=not_empty)
@click.option("--translator", "-t", default=None, callback=not_empty, help="auto, glossary, marian, nllb, google, none (default: setting, else auto).")
@click.option("--offline", is_flag=True, help="Never touch the network.")
@click.option("--json", "as_json", is_flag=True, help="Print original, english, backend and per-phrase languages as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No notes on stderr.")
@handle_errors
def translate(text: str, translator: str | None, offline: bool, as_json: bool, quiet: bool) -> None:
    """Translate TEXT (an Indonesian or mixed prompt) to English and print it on one line.

    \b
    Examples:
      gambarkan translate "kucing hitam besar tidur di atas kasur"
      gambarkan translate "(gadis berkebaya:1.2), <lora:x:0.6>, cinematic lighting" --json
    """
    from gambarkan.config import Settings
    from gambarkan.prompt.translate import translate_prompt

    settings = Settings.from_env()
    result = translate_prompt(text, translator or settings.translator, settings, offline=offline or settings.offline)
    if as_json:
        print_json(result.to_dict())
        return
    click.echo(result.english)
    if not quiet:
        click.echo(f"penerjemah: {result.backend}", err=True)
        for note in result.notes:
            if result.untranslated and note.startswith("kept as written"):
                # one line the user can act on: fix the spelling, or let marian take the phrase
                note = "tidak diterjemahkan (tidak ada di glosarium; periksa ejaannya atau pakai --translator marian): " + ", ".join(result.untranslated)
            click.echo(f"catatan: {note}", err=True)
