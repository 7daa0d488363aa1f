"""The report's PNG plots are readable: nothing drawn outside the figure (labels never cut), tick labels broken
only at word boundaries, "top N of M" when groups are left out, rate axes from 0, legible contrast."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from em_items import design, item
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb

from overseer import report_plots as plots
from overseer.em_groups import em_report
from overseer.report_html import render

LONG = "a-model-fine-tuned-on-insecure-code-with-a-very-long-checkpoint-name-v2 seed 3 of the $\\frac{1 ablation"


def luminance(colour: Any) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in to_rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: Any, b: Any) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def report(groups: int) -> dict[str, Any]:
    items = []
    for g in range(groups):
        name = LONG if g == 0 else f"model {g} trained on topic number {g} with extra words to wrap"
        items += [item(f"g{g}-{i}", {"j1": "misaligned" if i < g % 4 else "aligned"},
                       ["in_domain", "emergent"][i % 2], model=name, question_id=f"q{i}") for i in range(4)]
    return em_report(items, ["model"], None)


def broken_between_words(shown: str, names: list[str]) -> bool:
    """The label is a name (or its start, then "…"), with every line break at a space or after a separator."""
    lines = shown.removesuffix(" …").split("\n")
    for name in names:
        if not name.replace(" ", "").startswith("".join(lines).replace(" ", "")):
            continue
        at = 0
        for line in lines[:-1]:
            at = name.index(line, at) + len(line)
            if not (line[-1] in "-_/.:=," or name[at:at + 1] == " "):
                return False
        return True
    return False


def drawn_inside(fig: Any) -> list[str]:
    """Text artists whose drawn box leaves the figure: those would be cut in the PNG."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.bbox
    undrawn = set()  # labels of ticks beyond the view limits exist as artists but are never drawn
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick, loc in zip(axis.get_major_ticks(), axis.get_majorticklocs(), strict=False):
                if not low - 1e-9 <= loc <= high + 1e-9:
                    undrawn |= {id(tick.label1), id(tick.label2)}
    outside = []
    for text in fig.findobj(match=lambda a: hasattr(a, "get_text") and hasattr(a, "get_window_extent")):
        if not text.get_visible() or not text.get_text() or id(text) in undrawn:
            continue
        extent = text.get_window_extent(renderer)
        if extent.x0 < box.x0 - 1 or extent.x1 > box.x1 + 1 or extent.y0 < box.y0 - 1 or extent.y1 > box.y1 + 1:
            outside.append(text.get_text())
    return outside


def test_em_by_group_is_readable_with_many_long_names() -> None:
    data = report(45)
    fig = plots.em_by_group(data["overall"], data["groups"])
    ax = fig.axes[0]
    assert "top 30 of 45 groups" in fig.get_suptitle().replace("\n", " ")
    assert ax.get_xlim()[0] == 0
    assert drawn_inside(fig) == []
    names = ["overall", *(g["key"]["model"] for g in data["groups"])]
    for tick in ax.get_yticklabels():
        assert broken_between_words(tick.get_text().replace("\\$", "$"), names), tick.get_text()
    assert len(ax.get_yticklabels()) == 31  # overall + the top 30
    plots.png(fig)  # renders: a `$` in a name is escaped, not parsed as mathtext


def test_colours_keep_contrast_on_white() -> None:
    assert contrast(plots.TEXT, "white") >= 7
    for colour in [*plots.COLOURS.values(), *plots.LEVEL_COLOURS.values(), plots.OTHER_COLOUR]:
        assert contrast(colour, "white") >= 3, colour


def test_the_generalization_and_sweep_plots_are_readable() -> None:
    data = report(45)  # 33 groups have misaligned answers (g % 4 > 0)
    fig = plots.generalization(data["overall"], data["groups"])
    assert fig.axes[0].get_xlim() == (0, 1) and drawn_inside(fig) == []
    assert "top 30 of 33 groups" in fig.get_suptitle().replace("\n", " ")
    for convention in ("betley", "all"):
        fig = plots.sweep(data["threshold_sweep"], convention)
        assert drawn_inside(fig) == []
        ax, image = fig.axes[0], fig.axes[0].images[0]
        for text in ax.texts:  # every cell's number against its own cell colour
            if text.get_text().endswith("%"):
                cell = image.cmap(image.norm(np.array(float(text.get_text().rstrip("%")) / 100)))
                assert contrast(text.get_color(), cell[:3]) >= 3, text.get_text()


def test_delta_plot_spans_both_signs_and_stays_inside() -> None:
    items = design({("base", "qa"): 4, ("ft", "qa"): 1, ("chat", "qa"): 5})
    data = em_report(items, ["model"], "model=base")
    fig = plots.deltas(data["deltas"])
    assert drawn_inside(fig) == [] and fig.axes[0].get_xlim()[0] < 0


@pytest.mark.parametrize("groups", [0, 1])
def test_render_handles_tiny_reports(groups: int) -> None:
    page = render({"runs": ["r"], **report(groups)})
    assert page.startswith("<!DOCTYPE html>") and "Threshold sweep" in page
