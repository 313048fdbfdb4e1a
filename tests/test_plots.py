"""The shared figures: titles and labels are there, shapes are checked, bad input is explained.

Runs headless: the Agg backend is forced before pyplot is imported. Data is generated here,
except the sample photograph, which ships with matplotlib.
"""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from cbam_course import FEATURE_NAMES, feature_stack, load_photo  # noqa: E402
from cbam_course import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def image():
    torch.manual_seed(0)
    return torch.rand(3, 32, 40)


def _image_axes(ax):
    """The AxesImage artists drawn on ``ax``."""
    return [a for a in ax.get_children() if isinstance(a, matplotlib.image.AxesImage)]


def test_feature_stack_grid_is_labelled_with_feature_names():
    stack = feature_stack(load_photo(32))
    fig = plots.show_feature_stack(stack, title="my stack")
    assert fig._suptitle is not None and fig._suptitle.get_text() == "my stack"
    visible = [ax for ax in fig.axes if ax.get_visible() and ax.images]
    assert len(visible) == len(FEATURE_NAMES)
    titles = [ax.get_title() for ax in visible]
    for i, name in enumerate(FEATURE_NAMES):
        assert titles[i] == f"{i}: {name}"
    assert any(ax.get_xlabel() for ax in visible) and any(ax.get_ylabel() for ax in visible)
    # one colourbar, labelled
    assert any(ax.get_ylabel() == "value" for ax in fig.axes if not ax.images)


def test_feature_stack_accepts_a_batch_of_one_and_generic_names():
    fig = plots.show_feature_stack(torch.rand(1, 5, 8, 8), ncols=2)
    shown = [ax for ax in fig.axes if ax.get_visible() and ax.images]
    assert [ax.get_title() for ax in shown] == [f"{i}: channel {i}" for i in range(5)]


@pytest.mark.parametrize("bad", [torch.rand(8, 8), torch.rand(2, 3, 8, 8)])
def test_feature_stack_rejects_wrong_shapes(bad):
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        plots.show_feature_stack(bad)


def test_feature_stack_rejects_wrong_number_of_names():
    with pytest.raises(ValueError, match="one name per channel"):
        plots.show_feature_stack(torch.rand(3, 8, 8), names=["a", "b"])


def test_channel_values_bars_carry_names_title_and_labels():
    attention = torch.linspace(0.1, 0.9, 8).view(1, 8, 1, 1)  # a channel attention map for one image
    ax = plots.plot_channel_values(attention, title="attention")
    assert ax.get_title() == "attention"
    assert ax.get_xlabel() == "channel" and ax.get_ylabel() == "attention"
    assert [t.get_text() for t in ax.get_xticklabels()] == list(FEATURE_NAMES)
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, attention.flatten().numpy(), rtol=1e-6)


def test_channel_values_draws_several_series_with_a_legend():
    ax = plots.plot_channel_values({"average": np.zeros(3), "max": np.ones(3)},
                                    names=["a", "b", "c"], ylabel="descriptor")
    assert len(ax.patches) == 6
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["average", "max"]
    assert ax.get_ylabel() == "descriptor"


def test_channel_values_rejects_a_batch_and_mismatched_series():
    with pytest.raises(ValueError, match="one value per channel"):
        plots.plot_channel_values(torch.rand(2, 8))
    with pytest.raises(ValueError, match="different lengths"):
        plots.plot_channel_values({"a": np.ones(3), "b": np.ones(4)})


@pytest.mark.parametrize("shape", [(32, 40), (1, 32, 40), (1, 1, 32, 40), (8, 10), (1, 4, 5)])
def test_overlay_upsamples_the_map_to_the_image(image, shape):
    ax = plots.overlay_attention(image, torch.rand(shape), title="overlay")
    assert ax.get_title() == "overlay"
    assert ax.get_xlabel() and ax.get_ylabel()
    base, heat = _image_axes(ax)
    assert base.get_array().shape == (32, 40, 3)
    assert heat.get_array().shape == (32, 40)
    assert heat.get_alpha() == 0.5
    # a colourbar was added, on its own labelled axes
    cbars = [a for a in ax.figure.axes if a is not ax]
    assert len(cbars) == 1 and cbars[0].get_ylabel() == "attention"


def test_overlay_keeps_the_values_when_no_resize_is_needed(image):
    att = torch.rand(1, 32, 40)
    ax = plots.overlay_attention(image, att, colorbar=False)
    np.testing.assert_allclose(_image_axes(ax)[1].get_array(), att[0].numpy())
    assert len(ax.figure.axes) == 1


def test_overlay_of_a_constant_map_stays_constant_after_upsampling(image):
    ax = plots.overlay_attention(image, torch.full((4, 5), 0.25))
    np.testing.assert_allclose(_image_axes(ax)[1].get_array(), 0.25, rtol=1e-6)


def test_overlay_draws_on_given_axes(image):
    fig, (a, b) = plt.subplots(1, 2)
    out = plots.overlay_attention(image, torch.rand(32, 40), ax=b)
    assert out is b and not a.images


@pytest.mark.parametrize("attention, message", [
    (torch.rand(2, 32, 40), r"\(H, W\) or \(1, H, W\)"),
    (torch.rand(8, 1, 1), "plot_channel_values"),
    (torch.rand(4, 1, 32, 40), r"attention\[0\]"),
    (torch.rand(40), r"\(H, W\)"),
])
def test_overlay_explains_a_wrong_attention_shape(image, attention, message):
    with pytest.raises(ValueError, match=message):
        plots.overlay_attention(image, attention)


def test_overlay_explains_a_channels_last_image():
    with pytest.raises(ValueError, match=r"permute\(2, 0, 1\)"):
        plots.overlay_attention(torch.rand(32, 40, 3), torch.rand(32, 40))


def test_overlay_rejects_bad_alpha(image):
    with pytest.raises(ValueError, match="alpha"):
        plots.overlay_attention(image, torch.rand(32, 40), alpha=1.5)


def test_show_image_titles_and_labels(image):
    ax = plots.show_image(image, title="photo")
    assert ax.get_title() == "photo" and ax.get_xlabel() and ax.get_ylabel()
    assert _image_axes(ax)[0].get_array().shape == (32, 40, 3)


def _texts(ax):
    return " ".join(t.get_text() for t in ax.texts)


def test_data_flow_shows_shapes_of_every_step():
    ax = plots.plot_data_flow(channels=64, height=32, width=32, ratio=16, kernel_size=7)
    assert "CBAM" in ax.get_title()
    assert ax.get_xlabel() and ax.get_ylabel() == "CBAM"
    text = _texts(ax)
    for piece in ["64x32x32", "64->4->64", "64x1x1", "1x32x32", "7x7", "channel attention",
                  "spatial attention", "output"]:
        assert piece in text, piece
    # channel attention comes before spatial attention, left to right
    xs = {t.get_text().split("\n")[0]: t.get_position()[0] for t in ax.texts}
    assert xs["channel attention"] < xs["spatial attention"] < xs["output"]


def test_data_flow_follows_its_arguments_and_draws_se():
    ax = plots.plot_data_flow(channels=128, height=16, width=8, ratio=8, kernel_size=3)
    text = _texts(ax)
    assert "128x16x8" in text and "128->16->128" in text and "3x3" in text and "1x16x8" in text
    se = plots.plot_data_flow("se", channels=32, ratio=4)
    assert "SE" in se.get_title() and "spatial" not in _texts(se)
    assert "32->8->32" in _texts(se)


def test_data_flow_rejects_unknown_kind_and_sizes():
    with pytest.raises(ValueError, match="'cbam' or 'se'"):
        plots.plot_data_flow("eca")
    with pytest.raises(ValueError, match="channels"):
        plots.plot_data_flow(channels=0)


def _chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_figures_are_drawn_in_chinese_where_a_chinese_font_exists(monkeypatch, image):
    """CBAM_COURSE_LANG=zh on a machine with a CJK font (pretended here: figure_text checks only that
    one was found): titles, labels, channel names and the diagram's boxes in Chinese, the diagram's
    shape unchanged (its skip paths are found by the boxes' text)."""
    from cbam_course import i18n

    english = {kind: plots.plot_data_flow(kind) for kind in ("cbam", "se")}
    monkeypatch.setenv(i18n.LANG_ENV, "zh")
    monkeypatch.setattr(i18n, "_FONT", ["a font with Chinese glyphs"])
    for kind, en in english.items():
        zh = plots.plot_data_flow(kind)
        assert _chinese(zh.get_title()) and _chinese(zh.get_xlabel()) and _chinese(_texts(zh)), kind
        assert (len(zh.lines), len(zh.patches)) == (len(en.lines), len(en.patches)), kind
    ax = plots.plot_channel_values(torch.rand(len(FEATURE_NAMES)), ax=plt.subplots()[1])  # no layout: nothing drawn
    assert [t.get_text() for t in ax.get_xticklabels()][:3] == ["红色", "绿色", "蓝色"]
    assert ax.get_title() == "通道注意力" and ax.get_ylabel() == "注意力"
    overlay = plots.overlay_attention(image, torch.rand(32, 40))
    assert _chinese(overlay.get_title()) and overlay.get_xlabel() == "x（像素）"
    monkeypatch.setattr(i18n, "_FONT", [None])  # no CJK font: English, never empty boxes
    assert plots.show_image(image).get_title() == "Input image"
