"""``gambarkan doctor``: is this machine ready, and what to fix if not."""

from __future__ import annotations

import sys

import click

from gambarkan.cli.common import handle_errors, print_json, quiet_libraries


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("--no-network", is_flag=True, help="Skip the Hugging Face Hub reachability check.")
@handle_errors
def doctor(as_json: bool, no_network: bool) -> None:
    """Check versions, GPU, memory, disk, network, and run a tiny offline generation."""
    from gambarkan.doctor import checks_as_dicts, run_doctor, summary

    quiet_libraries()
    checks = run_doctor(network=not no_network)
    ready, line = summary(checks)
    if as_json:
        print_json({"ready": ready, "summary": line, "checks": checks_as_dicts(checks)})
    else:
        from rich.console import Console
        from rich.table import Table

        marks = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}
        table = Table(box=None)
        table.add_column("Check", no_wrap=True)  # names to search for: never cut
        table.add_column("")
        table.add_column("Detail", overflow="fold")  # fold long paths instead of cutting them with "…"
        table.add_column("Fix", overflow="fold")
        for c in checks:
            table.add_row(c.name, marks[c.status], c.detail, c.fix)
        console = Console()
        console.print(table)
        console.print(("[green]" if ready else "[red]") + line + "[/]", soft_wrap=True)
    sys.exit(0 if ready else 1)
