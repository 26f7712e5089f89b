"""A measured phase of a benchmark: its figures as (what, value) rows, the CPU share each
process took during it, and notes (targets met or not, what went wrong), printed as a
Markdown table."""

from __future__ import annotations


class Phase:
    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: list[tuple[str, str]] = []
        self.cpu: dict[str, float] = {}
        self.notes: list[str] = []
        self.tables: list[list[str]] = []  # more Markdown tables, after the CPU line

    def add(self, what: str, value: str) -> None:
        self.rows.append((what, value))

    def lines(self) -> list[str]:
        out = [f"### {self.title}", "", "| measure | value |", "|---|---|"]
        out += [f"| {what} | {value} |" for what, value in self.rows]
        if self.cpu:
            shares = ", ".join(f"{who} {share:.0%}" for who, share in self.cpu.items())
            out += ["", f"CPU (share of one core over the phase): {shares}."]
        for table in self.tables:
            out += ["", *table]
        if self.notes:
            out.append("")
        out += [f"- {note}" for note in self.notes]
        return [*out, ""]


def since(moment: float | None, start: float) -> str:
    """Seconds from ``start`` to ``moment`` (perf_counter values); "never" for None or 0."""
    return f"{moment - start:.1f} s" if moment else "never"
