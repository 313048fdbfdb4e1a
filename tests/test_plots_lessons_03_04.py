"""The figures lessons 03-04 add to cbam_course.plots: titled, labelled, and clear about bad input."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch

from cbam_course import plots


def test_receptive_field_boxes_the_influential_pixels():
    image = torch.rand(3, 20, 20)
    influence = torch.zeros(20, 20)
    influence[8:13, 6:11] = 1.0  # a 5x5 neighbourhood around (10, 8)
    fig = plots.plot_receptive_field(image, influence, centre=(10, 8), zoom=4)
    full, zoom = fig.axes[:2]
    box = full.patches[0]
    assert (box.get_width(), box.get_height()) == (5, 5)
    assert box.get_xy() == (5.5, 7.5)
    assert "25 influential" in zoom.get_title()
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in (full, zoom))
    assert fig._suptitle is not None and fig._suptitle.get_text()
    plt.close(fig)


def test_receptive_field_rejects_wrong_shapes_and_centres():
    with pytest.raises(ValueError, match="Sum the gradient over channels"):
        plots.plot_receptive_field(torch.rand(3, 8, 8), torch.rand(2, 8, 8), centre=(4, 4))
    with pytest.raises(ValueError, match="outside"):
        plots.plot_receptive_field(torch.rand(3, 8, 8), torch.rand(8, 8), centre=(9, 4))
