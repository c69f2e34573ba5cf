"""Every figure the course draws fits the book's text column (fla.figures): drawn at most PAGE_WIDTH inches wide,
so the page shows it at the size it was drawn, with no text below 7 pt (9.7 px at 100 dpi). The browser test
measures the same on the built pages; here each drawing function is checked on real inputs, in seconds."""
from __future__ import annotations

import io

import matplotlib.pyplot as plt
import pytest
from matplotlib.text import Text

from fla.figures import PAGE_WIDTH, panels

MIN_POINTS = 7.0
DPI = 100  # matplotlib's default, the inline backend's
#: the diagrams read by their labels (the data flow's shapes on the arrows, the regrouping's matrix sizes): capitals at
#: least 9 px tall on the page, where a figure PAGE_WIDTH wide is shown at 0.94 of its size (the narrowest scale the
#: browser test measured, chromium at 1300 px) and a capital of DejaVu Sans is 0.73 of the font size: 9.4 pt
CAP_HEIGHT, PAGE_SCALE, MIN_CAPITAL_PX = 0.73, 0.94, 9.0


def capital_px(points: float, drawn_px: float) -> float:
    """How tall a capital letter of ``points`` is on the page, in a figure drawn ``drawn_px`` wide (at DPI)."""
    return points * DPI / 72 * CAP_HEIGHT * PAGE_SCALE * min(1.0, PAGE_WIDTH * DPI / drawn_px)


def check_fits(fig, name: str, labels_px: float | None = None):
    """The figure as the inline backend saves it (tight, 100 dpi) within the column; every text ≥ 7 pt, and with
    ``labels_px`` every text's capitals at least that tall on the page (``capital_px``)."""
    from PIL import Image

    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=DPI, bbox_inches="tight")
    width = Image.open(png).size[0]
    assert width <= PAGE_WIDTH * DPI + 8, f"{name}: {width} px wide, the page shows {PAGE_WIDTH * DPI:.0f}"
    texts = [t for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible()]
    small = {t.get_text(): t.get_fontsize() for t in texts if t.get_fontsize() < MIN_POINTS}
    assert not small, f"{name}: text below {MIN_POINTS} pt: {small}"
    if labels_px is not None:
        small = {t.get_text(): round(capital_px(t.get_fontsize(), width), 1) for t in texts
                 if capital_px(t.get_fontsize(), width) < labels_px}
        assert not small, f"{name}: capitals below {labels_px} px on the page: {small}"
    plt.close(fig)


def test_the_check_fails_on_a_row_of_four_panels():
    fig, _ = plt.subplots(1, 4, figsize=(16, 3.6))  # what notebook 04 drew before
    with pytest.raises(AssertionError, match="px wide"):
        check_fits(fig, "four in a row")
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.text(0.5, 0.5, "tiny", fontsize=6)
    with pytest.raises(AssertionError, match="below"):
        check_fits(fig, "tiny text")
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.text(0.5, 0.5, "B×N×C", fontsize=7.5)  # the data flow's arrow labels before: capitals 6.9 px on the page
    with pytest.raises(AssertionError, match="capitals below 9.0 px"):
        check_fits(fig, "small labels", labels_px=MIN_CAPITAL_PX)


def test_panels_wrap_into_rows_within_the_page():
    fig, axes = panels(5, per_row=3)
    assert len(axes) == 5 and fig.get_figwidth() == PAGE_WIDTH
    assert sum(ax.get_visible() and ax.axison for ax in fig.axes) == 5  # the sixth cell is switched off
    plt.close(fig)
    fig, axes = panels(2, per_row=3)
    assert fig.get_figwidth() == pytest.approx(PAGE_WIDTH * 2 / 3)  # two panels keep a third of a row's width each
    plt.close(fig)


def test_the_course_views_fit_the_page():
    from fla.course import complexity, dataflow, views
    from fla.course.tokens import image_tokens, load_image

    image = load_image()
    tokens = image_tokens(image)
    check_fits(views.plot_focusing(views.focusing_view(tokens, 3.0, (7, 7)), image), "02 focusing slider")
    check_fits(views.plot_rank(views.rank_view(tokens, 3.0, 5)), "03 rank")
    check_fits(views.plot_strength(views.StrengthViews(tokens).view(1e-4)), "03 strength slider")
    check_fits(complexity.order_view(32)[0], "01 order slider")
    check_fits(complexity.regrouping_figure(), "01 regrouping", labels_px=MIN_CAPITAL_PX)
    check_fits(dataflow.draw(), "data flow", labels_px=MIN_CAPITAL_PX)


def test_the_experiments_figures_fit_the_page(tmp_path):
    from fla.experiments import ablation
    from fla.experiments.training import plot_curves, plot_paired, read_comparisons
    from fla.experiments.training.shipped import shipped_folder as shipped

    rows, s = ablation.shipped()
    check_fits(ablation.plot(rows, presets={t: ablation.Preset.from_json(s[t]) for t in ablation.TASKS if t in s}), "04 ablation")
    from fla.experiments import kernelfit

    fits, _ = kernelfit.shipped()
    check_fits(kernelfit.plot(fits), "02 kernel fit")
    folder = shipped()
    if folder is None:
        pytest.skip("no shipped helmet runs in this installation")
    check_fits(plot_curves(folder, path=tmp_path / "curves.png"), "06 curves")  # not into the shipped folder
    check_fits(plot_paired(read_comparisons(folder)), "06 paired")


def test_the_detector_picture_fits_the_page():
    import fla.yolo as Y
    from fla.yolo.table import plot_network
    from ultralytics import YOLO

    fig, axes = plt.subplots(3, 1, figsize=(PAGE_WIDTH, 9.6))  # as notebook 05 draws it
    for ax, v in zip(axes, ["c2f_fla", "c2f_fla_p3", "yolo11:c3k2_fla_p3"]):
        plot_network(YOLO(Y.model_yaml(v)), 320, ax=ax, title=v)
    fig.tight_layout()
    check_fits(fig, "05 network")


def test_the_shipped_detections_picture_fits_the_page(helmet_copy):
    from fla.experiments.stats import Detections
    from fla.experiments.training import DETECTIONS, read_results, run_dir
    from fla.experiments.training.shipped import shipped_folder as shipped
    from fla.yolo.detections import found, show_found

    folder = shipped()
    if folder is None:
        pytest.skip("no shipped helmet runs in this installation")
    r = next(r for r in read_results(folder) if r["variant"] == "base" and r["seed"] == 0)
    kept = {v: Detections.load(run_dir(folder, v, 0, r["epochs"], r["imgsz"]) / DETECTIONS) for v in ("base", "c2f_fla")}
    fig = show_found(kept, helmet_copy, "test", n=4)
    assert fig is not None, "the shipped runs were scored on the helmet test photos"
    labels = [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()]
    assert labels and all("base: helmets" in t and "c2f_fla: helmets" in t for t in labels)
    check_fits(fig, "06 detections")
    everything = found(kept["base"])  # over all test images: every label counted once
    assert everything[0][1] + everything[1][1] == len(kept["base"].target_cls)
    assert 0 < everything[1][0] <= everything[1][1]
