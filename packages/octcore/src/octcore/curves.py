"""The curves figure of one job: loss and macro-F1 per epoch, phase switch marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_curves(rows: list[dict[str, str]], path: Path) -> None:
    """``rows`` as in history.csv (base rows first); epochs are numbered across phases."""
    fig, (ax_loss, ax_f1) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    offset = 0
    switch = None
    for phase, colour in (("base", "tab:blue"), ("target", "tab:green")):
        phase_rows = [r for r in rows if r["phase"] == phase]
        if not phase_rows:
            continue
        if phase == "target" and offset:
            switch = offset + 0.5
        x = [offset + int(r["epoch"]) for r in phase_rows]
        for ax, key in ((ax_loss, "loss"), (ax_f1, "macro_f1")):
            ax.plot(x, [float(r[f"train_{key}"]) for r in phase_rows], color=colour, alpha=0.45,
                    label=f"{phase} train")  # fmt: skip
            ax.plot(x, [float(r[f"val_{key}"]) for r in phase_rows], color=colour,
                    label=f"{phase} val")  # fmt: skip
            best = [xi for xi, r in zip(x, phase_rows, strict=True) if r["improved"] == "1"]
            if best:
                ax.axvline(best[-1], color=colour, linestyle=":", linewidth=1)
        offset = x[-1]
    for ax, title in ((ax_loss, "loss"), (ax_f1, "macro-F1")):
        if switch is not None:
            ax.axvline(switch, color="tab:red", linewidth=1.2, label="phase switch")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    ax_loss.set_yscale("log")
    ax_f1.legend(fontsize=8, loc="lower right")
    fig.savefig(path, dpi=110)
    plt.close(fig)
