"""The figures of trained networks (cbam_course.train.figures) and plot_curves: right numbers, titles, labels, clear errors."""
import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest
import torch

from cbam_course.train import figures

NAMES = [f"class {i}" for i in range(4)]


def test_confusion_matrix_counts_rows_true_columns_predicted():
    m = figures.confusion_matrix([0, 0, 1, 2, 3, 3], [0, 1, 1, 2, 3, 0], num_classes=4)
    assert m.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1]]
    assert m.trace() == 4


def test_confusion_matrix_rejects_logits():
    with pytest.raises(ValueError, match="argmax"):
        figures.confusion_matrix([0, 1], [5, 7], num_classes=4)


def test_confusion_plot_is_row_normalised_and_labelled():
    ax = figures.plot_confusion_matrix(np.diag([2, 3, 4, 5]), NAMES)
    assert ax.get_title() and ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert np.allclose(ax.images[0].get_array(), np.eye(4))
    with pytest.raises(ValueError, match="4"):
        figures.plot_confusion_matrix(np.eye(3), NAMES)


def test_gallery_and_attention_by_class_have_titles_and_check_shapes():
    fig = figures.show_attention_gallery(torch.rand(3, 3, 32, 32), torch.rand(3, 1, 8, 8), ncols=2)
    assert fig._suptitle is not None
    with pytest.raises(ValueError, match="one spatial map per image"):
        figures.show_attention_gallery(torch.rand(3, 3, 32, 32), torch.rand(2, 1, 8, 8))
    w = torch.zeros(8, 5)
    w[:, 2] = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1.0])  # channel 2 depends on the class
    ax = figures.plot_attention_by_class(w, torch.tensor([0, 0, 1, 1, 0, 0, 1, 1]), NAMES[:2], top=2)
    assert ax.get_xticklabels()[0].get_text() == "2"
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def test_budget_comparison_bars_are_means():
    ax = figures.plot_budget_comparison({"same epochs": {"none": [50, 52], "cbam": [51, 53]}})
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == [51.0, 52.0]
    assert ax.get_ylabel() and ax.get_title()


def test_image_grid_takes_uint8_and_refuses_normalised_images():
    fig = figures.show_image_grid(torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8), ncols=3, title="t")
    assert fig._suptitle.get_text() == "t"
    assert len([a for a in fig.axes if a.get_visible()]) == 5
    with pytest.raises(ValueError, match="normalised"):
        figures.show_image_grid(torch.randn(2, 3, 8, 8) - 3)


def test_plot_curves_draws_one_line_per_run_from_one():
    from cbam_course.train import plot_curves

    ax = plot_curves({"none": [50, 60, 70], "cbam": [52, 61]}, title="t", xlabel="epoch", ylabel="acc")
    lines = ax.get_lines()
    assert [l.get_label() for l in lines] == ["none", "cbam"]
    assert list(lines[0].get_xdata()) == [1, 2, 3] and list(lines[1].get_ydata()) == [52, 61]
    assert ax.get_title() == "t" and ax.get_xlabel() == "epoch" and ax.get_ylabel() == "acc"
    with pytest.raises(ValueError, match="no curves"):
        plot_curves({})


def test_error_drops_are_baseline_minus_module_in_the_given_order():
    errors = {"net A": {"baseline": 24.56, "SE": 23.14, "CBAM": 22.66},
              "net B": {"baseline": 22.85, "SE": 21.91, "CBAM": 21.92},
              "net C": {"baseline": 31.39, "CBAM": 29.01}}
    ax = figures.plot_error_drops(errors, title="Table 4")
    got = sorted(round(p.get_width(), 2) for p in ax.patches)
    assert got == [0.93, 0.94, 1.42, 1.9, 2.38]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["net A", "net B", "net C"]
    assert ax.get_title() == "Table 4" and ax.get_xlabel() and ax.get_ylabel() == "network"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["SE", "CBAM"]
    with pytest.raises(ValueError, match="baseline"):
        figures.plot_error_drops({"net": {"CBAM": 20.0}})
