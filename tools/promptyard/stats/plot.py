"""`--plot FILE.png`: each metric's interval per variant (matplotlib, Agg backend).

Needs matplotlib (`pip install 'promptyard[plot]'`). The file is written atomically (a
temporary file in the target folder, renamed over the target), into a folder that must exist:
a mistyped folder is an error, not a new directory.
"""

from __future__ import annotations

import io
from pathlib import Path

from promptyard.errors import ConfigError, InfraError
from promptyard.fsutil import atomic_write
from promptyard.stats.experiment import ExperimentAnalysis

COLORS = {"better": "#1a7f37", "worse": "#cf222e", "inconclusive": "#57606a"}


def check_plot_target(path: Path) -> Path:
    """`path` when a PNG can be written there, else a ConfigError naming it.

    Called before the analysis runs (so a bad path fails fast) and again before writing.
    """
    if path.suffix.lower() != ".png":
        raise ConfigError(f"--plot {path}: the plot is a PNG; name the file *.png")
    folder = path.parent
    if not folder.is_dir():
        problem = (
            f"{folder} is not a folder; fix the path"
            if folder.exists()
            else f"the folder {folder} does not exist; create it or fix the path"
        )
        raise ConfigError(f"--plot {path}: {problem}")
    if path.is_dir():
        raise ConfigError(f"--plot {path}: that is a folder; name a *.png file")
    return path


def plot_analysis(analysis: ExperimentAnalysis, path: Path) -> Path:
    """Draw one panel per metric: the difference to the control and its interval."""
    check_plot_target(path)
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
    try:
        atomic_write(path, buffer.getvalue())
    except (PermissionError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        # The path the user gave cannot take a file: their fix, exit 2.
        raise ConfigError(f"--plot {path}: cannot write the plot ({exc.strerror or exc})") from None
    except OSError as exc:  # the disk (full, read-only, failing): infrastructure, exit 3
        raise InfraError(f"--plot {path}: cannot write the plot ({exc.strerror or exc})") from None
    return path
