"""The figures' frame: a long title and a long provenance footer stay on the page and off the axes."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from eval.plots import Series, frame, line_panels

TITLE = "PrefEval: acknowledgment rate against filler turns (20 items, 95% intervals)"
FOOTER = (
    "model bundled:smollm2-135m-instruct · data /work/shared/data/prefeval · judge PreferenceJudge (local "
    "MiniLM: acknowledged at similarity >= 0.607 or the target's words; violated at >= 0.6359 to a violating "
    "option) · commit db3f3b406a3cf9ba41d6c021363b74292b08e59e+dirty"
)


@pytest.mark.parametrize("panels", [1, 2, 3])
def test_title_and_footer_fit_the_page_and_clear_the_axes(panels: int) -> None:
    cols = min(2, panels)
    rows = (panels + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.plot([0, 4, 10], [1.0, 0.5, 0.65])
        ax.set_xlabel("filler turns")
        ax.set_title("explicit")
    frame(fig, TITLE, FOOTER)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # Agg canvas
    page = fig.bbox
    texts = {t.get_text().split()[0]: t.get_window_extent(renderer) for t in fig.texts}
    title, footer = texts["PrefEval:"], texts["model"]
    for box in (title, footer):
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
    for ax in axes.flat:
        assert ax.get_tightbbox(renderer).y0 >= footer.y1  # x label above the footer
        assert ax.get_tightbbox(renderer).y1 <= title.y0  # panel title below the figure's title
    plt.close(fig)


def test_a_one_panel_figure_grows_to_hold_its_title_and_footer(tmp_path: Path) -> None:
    """The panel keeps its 5.2 x 3.4 inches; the wrapped title and footer add height, not squeeze the axes."""
    series = [Series("edit:rome", [0, 4, 10], [1.0, 0.5, None], [(0.8, 1.0), (0.3, 0.7), None])]
    path = line_panels(tmp_path / "f.png", {"explicit": series}, TITLE, "filler turns", {}, FOOTER, True)
    height, width = plt.imread(path).shape[:2]
    dpi = 110
    assert width == round(5.2 * dpi)
    assert height > round(3.4 * dpi) + 2 * 12 * 1.35 / 72 * dpi  # at least a two-line title's worth more
