"""`--plot FILE.png`: each metric's interval per variant (matplotlib, Agg backend).

Needs matplotlib (`pip install 'promptyard[plot]'`). The file is written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

from promptyard.errors import ConfigError
from promptyard.fsutil import atomic_write
from promptyard.stats.experiment import ExperimentAnalysis

COLORS = {"better": "#1a7f37", "worse": "#cf222e", "inconclusive": "#57606a"}


def plot_analysis(analysis: ExperimentAnalysis, path: Path) -> Path:
    """Draw one panel per metric: the difference to the control and its interval."""
    if path.suffix.lower() != ".png":
        raise ConfigError(f"--plot {path}: the plot is a PNG; name the file *.png")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError(
            "--plot needs matplotlib", hint="pip install 'promptyard[plot]'"
        ) from None
    names = list(dict.fromkeys(r.metric for r in analysis.metrics))
    treatments = list(dict.fromkeys(r.treatment for r in analysis.metrics))
    height = 1.2 + 0.5 * len(treatments)
    figure, axes = plt.subplots(len(names), 1, figsize=(7, height * len(names)), squeeze=False)
    try:
        for axis, name in zip(axes[:, 0], names, strict=True):
            rows = [r for r in analysis.metrics if r.metric == name]
            scale = 100 if rows[0].type == "binary" else 1
            for y, r in enumerate(rows):
                color = COLORS[r.outcome]
                axis.errorbar(
                    r.difference * scale,
                    y,
                    xerr=[
                        [(r.difference - r.ci_low) * scale],
                        [(r.ci_high - r.difference) * scale],
                    ],
                    fmt="o",
                    color=color,
                    capsize=4,
                )
            axis.axvline(0, color="#8c959f", linewidth=1, linestyle="--")
            axis.set_yticks(range(len(rows)), [r.treatment for r in rows])
            axis.set_ylim(-0.8, len(rows) - 0.2)
            unit = "percentage points" if scale == 100 else "difference"
            role = rows[0].role
            axis.set_title(f"{name} ({role}, {rows[0].direction} is better)", fontsize=10)
            axis.set_xlabel(f"{unit} vs {analysis.control}, {1 - analysis.alpha:.0%} interval")
        if analysis.srm.flagged:
            figure.suptitle("SAMPLE RATIO MISMATCH: results cannot be trusted", color="#cf222e")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110)
    finally:
        plt.close(figure)
    atomic_write(path, buffer.getvalue())
    return path
