"""Tables of figures, printed as Markdown (pasteable into the README) or as one JSON object."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

Cell = float | int | str | None


def fmt(value: Cell) -> str:
    """A cell as text: n/a for missing, thousands separators, about three significant digits."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return "n/a"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    if size >= 0.01 or size == 0:
        return f"{value:.3f}"
    return f"{value:.2g}"


def _clean(value: Cell) -> Cell:
    """JSON has no NaN or infinity: a figure that could not be measured is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class Table:
    """One titled table; `key` names it in the JSON output, `notes` print under it."""

    key: str
    title: str
    columns: list[str]
    rows: list[dict[str, Cell]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *values: Cell) -> None:
        self.rows.append(dict(zip(self.columns, values, strict=True)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "columns": list(self.columns),
            "rows": [{c: _clean(row.get(c)) for c in self.columns} for row in self.rows],
            "notes": list(self.notes),
        }

    def to_markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        lines += [
            "| " + " | ".join(fmt(row.get(c)) for c in self.columns) + " |" for row in self.rows
        ]
        if self.notes:
            lines += ["", *(f"- {note}" for note in self.notes)]
        return "\n".join(lines)


@dataclass
class Goal:
    """A goal the figures are held to and whether this run met it (None: not measured here)."""

    goal: str
    measured: str
    met: bool | None

    def to_dict(self) -> dict[str, Any]:
        return {"goal": self.goal, "measured": self.measured, "met": self.met}


@dataclass
class Report:
    """Everything one benchmark run printed: where it ran, its tables, its goals."""

    command: str
    environment: dict[str, str]
    tables: list[Table] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)  # what was skipped here, and why

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "environment": dict(self.environment),
            "tables": [t.to_dict() for t in self.tables],
            "goals": [g.to_dict() for g in self.goals],
            "elapsed_s": self.elapsed_s,
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def to_markdown(self) -> str:
        env = ", ".join(f"{k} {v}" for k, v in self.environment.items())
        parts = [f"`{self.command}`", "", f"Machine: {env}."]
        parts += [f"\nNote: {note}" for note in self.notes]
        parts += ["", *(f"{t.to_markdown()}\n" for t in self.tables)]
        if self.goals:
            goals = Table("goals", "Goals", ["goal", "measured", "met"])
            for g in self.goals:
                goals.add(
                    g.goal, g.measured, "n/a" if g.met is None else ("yes" if g.met else "NO")
                )
            parts += [goals.to_markdown(), ""]
        parts.append(f"Benchmark time: {self.elapsed_s:.0f} s.")
        return "\n".join(parts)
