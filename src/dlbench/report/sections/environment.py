"""Where the runs in the report were trained, from each run's record."""

from __future__ import annotations

import pandas as pd

from dlbench.report.blocks import Heading, P, Table

COLUMNS = ["device_name", "torch_version", "dlbench_version", "python_version"]


def environment_section(runs: list[dict], outside: int) -> list:
    """Runs counted per device and versions; ``outside``: runs in the cache that belong to no study."""
    df = pd.DataFrame([{c: str(r.get(c) or "-") for c in COLUMNS} for r in runs])
    counts = df.groupby(COLUMNS, sort=True).size().reset_index(name="runs")
    blocks: list = [Heading(2, "Environment")]
    blocks.append(P("Where the runs in this report were trained (from each run's record)."))
    blocks.append(Table(COLUMNS + ["runs"], counts.to_dict("records")))
    if outside:
        blocks.append(
            P(
                f"{outside} run{'s' * (outside != 1)} in the cache belong to no sweep and are not in this "
                "report; list them with ",
                ("code", "dlbench runs"),
                ".",
            )
        )
    return blocks
