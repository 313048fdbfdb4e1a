"""cbam_course.train.data: the stand-in, the batched augmentation against torchvision's per-image
transforms, and the BatchLoader. (CIFAR-10 on disk: test_cifar10.py.)"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cbam_course.train import data as D


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


# ---- the stand-in -------------------------------------------------------------------------------

def test_standin_has_cifar10_shapes_and_says_what_it_is():
    train, test = D.make_standin(300, 100, seed=1)
    assert train.images.shape == (300, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (100, 3, 32, 32)
    assert train.labels.dtype == torch.int64 and set(train.labels.tolist()) == set(range(10))
    assert len(train.classes) == 10
    assert train.is_standin and test.is_standin
    assert "stand-in" in train.description and "not real" in train.description
    # pixels use the range, not a constant
    assert train.images.float().std() > 30


def test_standin_is_seeded():
    a, _ = D.make_standin(50, 10, seed=3)
    b, _ = D.make_standin(50, 10, seed=3)
    c, _ = D.make_standin(50, 10, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)


def test_standin_classes_differ_in_more_than_colour():
    """Same colour family, different shapes: the class means differ (a model has to look at shape)."""
    train, _ = D.make_standin(2000, 10, seed=0)
    masks = [(train.labels == k) for k in range(5)]  # the five warm classes
    means = torch.stack([train.images[m].float().mean(0) for m in masks])
    for i in range(5):
        for j in range(i + 1, 5):
            assert (means[i] - means[j]).abs().mean() > 1.0


def test_standin_rejects_bad_sizes():
    with pytest.raises(ValueError, match="positive"):
        D.make_standin(0, 10)


# ---- augmentation -------------------------------------------------------------------------------

def _marked_image() -> torch.Tensor:
    """A (1, 3, 32, 32) int64 image whose every pixel value says where it is (and is never 0)."""
    rows = torch.arange(32).view(32, 1)
    cols = torch.arange(32).view(1, 32)
    plane = rows * 100 + cols + 1
    return torch.stack([plane, plane + 10_000, plane + 20_000]).unsqueeze(0)


def test_crop_flip_matches_torchvision_and_its_distribution():
    import torchvision.transforms.functional as F

    n = 9000
    images = _marked_image().expand(n, -1, -1, -1)
    out = D.random_crop_flip(images, torch.Generator().manual_seed(0))
    assert out.shape == (n, 3, 32, 32)
    # Every output is exactly one of torchvision's crops of the zero-padded image, maybe flipped.
    padded = F.pad(_marked_image()[0], [4, 4, 4, 4], fill=0)
    for i in range(0, n, 150):
        matches = [(oy, ox, f) for oy in range(9) for ox in range(9) for f in (False, True)
                   if torch.equal(out[i], F.hflip(F.crop(padded, oy, ox, 32, 32)) if f
                                  else F.crop(padded, oy, ox, 32, 32))]
        assert len(matches) == 1
    # The parameters, read back from the centre pixels (always inside the image):
    centre = out[:, 0, 16, 16] - 1
    is_flipped = out[:, 0, 16, 15] > out[:, 0, 16, 16]
    oy = centre // 100 - 12
    ox = centre % 100 - torch.where(is_flipped, 11, 12)
    assert oy.min() == 0 and oy.max() == 8 and ox.min() == 0 and ox.max() == 8
    for offsets in (oy, ox):  # uniform over 0..8, like RandomCrop(32, padding=4)
        share = torch.bincount(offsets, minlength=9).float() / n
        assert (share - 1 / 9).abs().max() < 0.02, share
    assert abs(is_flipped.float().mean().item() - 0.5) < 0.03  # RandomHorizontalFlip(p=0.5)
    # offsets and flips are independent of each other
    assert abs(is_flipped[oy < 4].float().mean().item() - is_flipped[oy > 4].float().mean().item()) < 0.05


def test_crop_pads_with_zeros_like_torchvision():
    images = torch.full((2000, 3, 32, 32), 200, dtype=torch.uint8)
    out = D.random_crop_flip(images, torch.Generator().manual_seed(1))
    zero_rows = (out[:, 0, :, 16] == 0).sum(1)  # padded rows show up as zeros
    assert zero_rows.max() == 4 and (zero_rows == 0).any()
    assert set(torch.unique(out).tolist()) <= {0, 200}


def test_the_recipes_crop_padding_reaches_the_training_batches():
    """``Recipe.crop_padding`` (the Day 50 lesson's 4 by default) is what the training loader pads with."""
    from cbam_course.train.recipes import get_recipe

    bright = D.ImageSet(torch.full((2000, 3, 32, 32), 200, dtype=torch.uint8), torch.zeros(2000, dtype=torch.long))
    for padding in (4, 2, 0):
        train, _, _ = D.run_loaders(bright, bright, get_recipe("fast", crop_padding=padding, holdout=0.0,
                                                                   batch_size=2000), "cpu")
        x, _ = next(iter(train))
        padded_rows = (x[:, 0, :, 16] < 0).sum(1)  # zero padding is far below the normalised 200s
        assert padded_rows.max() == padding, (padding, padded_rows.max())


def test_normalize_equals_totensor_normalize():
    import torchvision.transforms as T

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    reference = T.Compose([T.ToTensor(), T.Normalize(D.CIFAR10_MEAN, D.CIFAR10_STD)])(Image.fromarray(arr))
    ours = D.normalize(torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0))[0]
    assert torch.allclose(ours, reference, atol=1e-6)


def test_augment_batch_is_seeded_and_normalised():
    images, _ = D.make_standin(64, 8, seed=0)
    a = D.augment_batch(images.images, torch.Generator().manual_seed(5))
    b = D.augment_batch(images.images, torch.Generator().manual_seed(5))
    c = D.augment_batch(images.images, torch.Generator().manual_seed(6))
    assert a.dtype == torch.float32 and a.shape == (64, 3, 32, 32)
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="uint8"):
        D.normalize(images.images.float())


# ---- BatchLoader --------------------------------------------------------------------------------

def test_batch_loader_covers_each_image_once_and_reshuffles():
    train, _ = D.make_standin(100, 10, seed=0)
    train.labels = torch.arange(100)  # labels as ids, to follow each image
    loader = D.BatchLoader(train, batch_size=32, shuffle=True, seed=0)
    assert len(loader) == 4
    epoch1 = torch.cat([y for _, y in loader])
    epoch2 = torch.cat([y for _, y in loader])
    assert sorted(epoch1.tolist()) == list(range(100)) == sorted(epoch2.tolist())
    assert not torch.equal(epoch1, epoch2)
    dropped = D.BatchLoader(train, batch_size=32, drop_last=True)
    assert len(dropped) == 3 and sum(len(y) for _, y in dropped) == 96
    ordered = torch.cat([y for _, y in D.BatchLoader(train, batch_size=32)])
    assert torch.equal(ordered, torch.arange(100))


def test_batch_loader_channels_last_and_values():
    train, _ = D.make_standin(40, 10, seed=0)
    x, y = next(iter(D.BatchLoader(train, batch_size=16, channels_last=True)))
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(x, D.normalize(train.images[:16]))


def test_batch_loader_resumes_inside_an_epoch():
    train, _ = D.make_standin(200, 10, seed=0)
    full = D.BatchLoader(train, batch_size=32, shuffle=True, augment=True, seed=7)
    list(full)  # epoch 1
    reference = [x for x, _ in full]  # epoch 2
    part = D.BatchLoader(train, batch_size=32, shuffle=True, augment=True, seed=7)
    list(part)
    it = iter(part)
    got = [next(it)[0] for _ in range(3)]
    state = part.state_dict()
    fresh = D.BatchLoader(train, batch_size=32, shuffle=True, augment=True, seed=99)
    fresh.load_state_dict(state)
    got += [x for x, _ in fresh]
    assert len(got) == len(reference)
    assert all(torch.equal(a, b) for a, b in zip(got, reference))
    # an interrupted batch is handed out again, augmented the same way
    again = D.BatchLoader(train, batch_size=32, shuffle=True, augment=True, seed=99)
    again.load_state_dict(part.state_dict(last_batch_done=False))
    assert torch.equal(next(iter(again))[0], reference[2])
