"""Images in memory, a generated stand-in for CIFAR-10, batched augmentation and the loaders.

The whole course keeps its images as one uint8 tensor ``(N, 3, 32, 32)`` plus int64 labels
(CIFAR-10's 60,000 images take 184 MB that way). A batch is augmented as one tensor, the
Day 50 lesson's way (random crop 32 with zero padding 4, horizontal flip, its normalisation),
so no DataLoader workers are needed: on a laptop CPU that is the cheap part of a step.

- ``ImageSet``: images and labels in memory (``cifar10.load_cifar10`` reads the real ones);
- ``make_standin(n_train, n_test, seed)``: coloured shapes on noise, ten learnable classes,
  for tests and quick mode;
- ``augment_batch`` / ``normalize``: the Day 50 lesson's transforms on whole batches;
- ``BatchLoader``: shuffled mini-batches from memory, seeded, resumable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch

from ..i18n import tr

__all__ = [
    "CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "ImageSet", "make_standin", "normalize", "augment_batch",
    "random_crop_flip", "BatchLoader", "run_loaders",
]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
# The Day 50 lesson's normalisation (not the exact dataset statistics, but what that lesson used).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)


@dataclass
class ImageSet:
    """Images and labels held in memory.

    Attributes:
        images: uint8 tensor ``(N, 3, 32, 32)``, pixel values 0..255.
        labels: int64 tensor ``(N,)`` with values in ``0..len(classes)-1``.
        classes: class names, in label order.
        description: one plain sentence saying where the images come from; notebooks print it
            above their results.
        is_standin: True for the generated stand-in, False for real CIFAR-10.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...] = CIFAR10_CLASSES
    description: str = ""
    is_standin: bool = False

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4 or self.images.shape[1] != 3:
            raise ValueError(tr("images must be uint8 of shape (N, 3, H, W), got {dtype} {shape}.",
                                dtype=self.images.dtype, shape=tuple(self.images.shape)))
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(tr("labels must have shape ({n},), got {shape}.", n=self.images.shape[0],
                                shape=tuple(self.labels.shape)))
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, n: int) -> "ImageSet":
        """The first ``n`` images (all of them if there are fewer)."""
        return ImageSet(self.images[:n], self.labels[:n], self.classes, self.description, self.is_standin)

    def split(self, fraction: float, seed: int = 0) -> tuple["ImageSet", "ImageSet"]:
        """``(rest, held_out)``: a random ``fraction`` of the images held out, e.g. as a validation
        set. The split depends on ``seed`` alone (not on a run's seed), so every run of a course
        recipe holds out the same images and their validation numbers compare."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(tr("fraction must be between 0 and 1 (exclusive), got {fraction}.", fraction=repr(fraction)))
        n_held = max(1, round(len(self) * fraction))
        if n_held >= len(self):
            raise ValueError(tr("Holding out {fraction:.0%} of {n} images leaves none to train on.",
                                fraction=fraction, n=len(self)))
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        rest, held = order[n_held:].sort().values, order[:n_held].sort().values

        def part(idx: torch.Tensor, what: str) -> "ImageSet":
            return ImageSet(self.images[idx], self.labels[idx], self.classes,
                            f"{self.description} ({what}: {len(idx)} images)".strip(), self.is_standin)

        return part(rest, "training part"), part(held, f"validation split, {fraction:.0%} held out")


# ----------------------------------------------------------------------------------------------
# the generated stand-in

STANDIN_CLASSES = ("red disc", "red square", "red ring", "red cross", "red stripes",
                   "blue disc", "blue square", "blue ring", "blue cross", "blue stripes")


def _shape_masks(kind: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, r: torch.Tensor,
                 size: int = 32) -> torch.Tensor:
    """Boolean masks (N, size, size): one shape per image, all left-right symmetric so that a
    horizontal flip keeps the class."""
    ys = torch.arange(size).view(1, size, 1).float()
    xs = torch.arange(size).view(1, 1, size).float()
    dy = ys - cy.view(-1, 1, 1).float()
    dx = xs - cx.view(-1, 1, 1).float()
    rr = r.view(-1, 1, 1).float()
    dist = (dy ** 2 + dx ** 2).sqrt()
    disc = dist <= rr
    square = (dy.abs() <= rr * 0.85) & (dx.abs() <= rr * 0.85)
    ring = (dist <= rr) & (dist >= rr * 0.55)
    cross = ((dy.abs() <= rr * 0.3) & (dx.abs() <= rr)) | ((dx.abs() <= rr * 0.3) & (dy.abs() <= rr))
    stripes = (dy.abs() <= rr) & (dx.abs() <= rr) & ((dy + rr).floor().long() % 4 < 2)
    masks = torch.stack([disc, square, ring, cross, stripes], dim=1)  # (N, 5, H, W)
    return masks[torch.arange(kind.shape[0]), kind]


def _standin_split(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.randint(0, 10, (n,), generator=generator)
    kind, family = labels % 5, labels // 5
    r = torch.randint(5, 10, (n,), generator=generator)
    cy = torch.randint(9, 23, (n,), generator=generator)
    cx = torch.randint(9, 23, (n,), generator=generator)
    mask = _shape_masks(kind, cy, cx, r).unsqueeze(1)  # (N, 1, 32, 32)
    # Background: a random dull colour with pixel noise; shape: a warm or cool colour, jittered.
    background = torch.rand(n, 3, 1, 1, generator=generator) * 0.5 + 0.2
    hue = torch.rand(n, 1, generator=generator) * 0.4
    warm = torch.cat([0.8 + hue * 0.5, 0.2 + hue, 0.1 + 0.2 * torch.rand(n, 1, generator=generator)], 1)
    cool = torch.cat([0.1 + 0.2 * torch.rand(n, 1, generator=generator), 0.2 + hue, 0.8 + hue * 0.5], 1)
    colour = torch.where(family.view(n, 1) == 0, warm, cool).view(n, 3, 1, 1)
    image = torch.where(mask, colour, background)
    image = image + 0.12 * torch.randn(n, 3, 32, 32, generator=generator)
    return (image.clamp(0, 1) * 255).round().to(torch.uint8), labels


def make_standin(n_train: int = 2000, n_test: int = 500, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """A generated stand-in for CIFAR-10: the same shapes (uint8 3x32x32, ten classes), made in
    a blink, with no download.

    Each image shows one shape (disc, square, ring, cross, stripes) in a warm (red) or cool
    (blue) colour at a random place and size, on a noisy background: ten classes that a small
    CNN learns in a few hundred steps. Use it for tests and quick runs, never to judge a model.

    Returns:
        ``(train, test)`` ImageSets with ``is_standin=True`` and a ``description`` that says so.
    """
    if n_train <= 0 or n_test <= 0:
        raise ValueError(tr("n_train and n_test must be positive, got {n_train} and {n_test}.",
                            n_train=n_train, n_test=n_test))
    g = torch.Generator().manual_seed(seed)
    sets = []
    for n, split in ((n_train, "training"), (n_test, "test")):
        images, labels = _standin_split(n, g)
        text = (f"Generated stand-in for CIFAR-10, {split} split ({n:,} images of coloured shapes, "
                f"seed {seed}) - not real photographs: accuracies on it say nothing about CIFAR-10.")
        sets.append(ImageSet(images, labels, STANDIN_CLASSES, text, is_standin=True))
    return sets[0], sets[1]


# ----------------------------------------------------------------------------------------------
# batched augmentation


def _stats(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(CIFAR10_MEAN, device=device, dtype=dtype).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD, device=device, dtype=dtype).view(1, 3, 1, 1)
    return mean, std


def normalize(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 images (N, 3, H, W) -> float, normalised with the Day 50 lesson's mean and std.

    The same numbers (to 1e-6) as torchvision's ``ToTensor()`` then ``Normalize(mean, std)``,
    computed in one fused multiply-add: ``x * 1/(255 std) - mean/std``."""
    if images.dtype != torch.uint8:
        raise ValueError(tr("normalize expects uint8 images (0..255), got {dtype}.", dtype=images.dtype))
    mean, std = _stats(images.device, torch.float32)
    out = torch.addcmul(-mean / std, images.float(), 1.0 / (255.0 * std))
    return out if dtype == torch.float32 else out.to(dtype)


def random_crop_flip(images: torch.Tensor, generator: torch.Generator | None = None,
                     padding: int = 4, flip: bool = True) -> torch.Tensor:
    """The Day 50 lesson's ``RandomCrop(32, padding=4)`` then ``RandomHorizontalFlip()`` on a whole batch.

    Pads once with zeros, then takes every image's rows with one ``gather`` and its columns
    with a second (offsets uniform in 0..2*padding, like torchvision's); a flipped image reads
    its columns right to left. Works on any dtype and device (uint8 is cheapest); the random
    numbers come from ``generator`` (on the CPU), so a seeded run repeats.
    """
    n, c, h, w = images.shape
    dev = images.device
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
    oy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    ox = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    cols = torch.arange(w).expand(n, w)
    if flip:
        flipped = torch.rand(n, generator=generator) < 0.5
        cols = torch.where(flipped.view(n, 1), (w - 1) - cols, cols)
    rows = (oy.view(n, 1) + torch.arange(h)).to(dev)
    cols = (ox.view(n, 1) + cols).to(dev)
    out = torch.gather(padded, 2, rows.view(n, 1, h, 1).expand(n, c, h, w + 2 * padding))
    return torch.gather(out, 3, cols.view(n, 1, 1, w).expand(n, c, h, w))


def augment_batch(images: torch.Tensor, generator: torch.Generator | None = None,
                  dtype: torch.dtype = torch.float32, padding: int = 4) -> torch.Tensor:
    """The Day 50 lesson's training transform on a uint8 batch: random crop with zero ``padding`` (the Day 50
    lesson's 4), flip, normalise."""
    return normalize(random_crop_flip(images, generator, padding), dtype)


# ----------------------------------------------------------------------------------------------
# mini-batches from memory


@dataclass
class BatchLoader:
    """Mini-batches ``(images, labels)`` from an in-memory :class:`ImageSet`.

    Iterating gives one epoch: a fresh shuffle each time (from a seeded ``torch.Generator``),
    the Day 50 lesson's augmentation when ``augment`` is on, normalised float images on ``device``.
    uint8 images travel to the device and are augmented there (4x less to copy).

    ``state_dict()`` / ``load_state_dict()`` save the position inside an epoch, so a resumed
    run sees exactly the batches it would have seen.

    Args:
        data: the images and labels.
        batch_size: images per batch.
        shuffle: reshuffle every epoch (training) or keep the order (evaluation).
        augment: apply random crop + flip (training only).
        drop_last: skip the last, smaller batch.
        device: where batches go.
        channels_last: return images in channels-last memory format (faster convolutions on
            CUDA and often on CPU).
        seed: seeds the shuffle and the augmentation.
        dtype: float type of the returned images.
        padding: the random crop's zero padding (the Day 50 lesson's: 4).
    """

    data: ImageSet
    batch_size: int = 128
    shuffle: bool = False
    augment: bool = False
    drop_last: bool = False
    device: torch.device | str = "cpu"
    channels_last: bool = False
    seed: int = 0
    dtype: torch.dtype = torch.float32
    padding: int = 4

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ValueError(tr("batch_size must be positive, got {batch_size}.", batch_size=self.batch_size))
        self.device = torch.device(self.device)
        self._generator = torch.Generator().manual_seed(self.seed)
        self._epoch_state = self._generator.get_state()  # before this epoch's shuffle
        self._batch_state = self._generator.get_state()  # before the batch handed out last
        self._position = 0  # batches handed out in this epoch
        self._resume_state: torch.Tensor | None = None
        # uint8 images go to the device once; batches are gathered and augmented there.
        self._images = self.data.images.to(self.device)
        self._labels = self.data.labels.to(self.device)

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def dataset(self) -> ImageSet:
        return self.data

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.data)
        start = 0
        if self._resume_state is not None:  # continue inside a saved epoch
            self._generator.set_state(self._epoch_state)
            start = self._position
        else:
            self._epoch_state = self._generator.get_state()
        order = torch.randperm(n, generator=self._generator) if self.shuffle else torch.arange(n)
        if self._resume_state is not None:
            self._generator.set_state(self._resume_state)
            self._resume_state = None
        order = order.to(self.device)
        for b in range(start, len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            images, labels = self._images[idx], self._labels[idx]
            self._batch_state = self._generator.get_state()
            if self.augment:
                x = augment_batch(images, self._generator, self.dtype, self.padding)
            else:
                x = normalize(images, self.dtype)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            self._position = b + 1
            yield x, labels
        self._position = 0

    def state_dict(self, last_batch_done: bool = True) -> dict:
        """Where this loader is, to continue exactly: the generator state before this epoch's
        shuffle, the batches handed out, and the generator state now. With
        ``last_batch_done=False`` the batch handed out last counts as not seen (a step that was
        interrupted), so a resumed run gets it again, augmented the same way."""
        position, current = self._position, self._generator.get_state()
        if not last_batch_done and position > 0:
            position, current = position - 1, self._batch_state.clone()
        return {"epoch_state": self._epoch_state.clone(), "position": position, "current_state": current}

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state``: the next iteration picks up at the saved batch."""
        self._epoch_state = state["epoch_state"].clone()
        self._position = int(state["position"])
        if self._position > 0:
            self._resume_state = state["current_state"].clone()
        else:
            self._resume_state = None
            self._generator.set_state(state["current_state"].clone())

    def end_epoch(self) -> None:
        """Forget the position inside the current epoch: the next iteration starts a new one
        (used when a run stops an epoch early, e.g. at its step or time budget)."""
        self._position = 0
        self._resume_state = None


def run_loaders(train_data: ImageSet, test_data: ImageSet, recipe, device: torch.device | str,
                channels_last: bool = False, seed: int = 0) -> tuple[BatchLoader, BatchLoader, BatchLoader]:
    """A training run's ``(train, eval, test)`` loaders for a ``Recipe``: shuffled, augmented
    training batches; the set evaluated after every epoch (a validation split of ``recipe.holdout``
    of the training images, or, with 0, the test set itself); and the test set."""
    val_data = None
    if recipe.holdout:
        train_data, val_data = train_data.split(recipe.holdout)
    n = len(train_data)
    train = BatchLoader(train_data, recipe.batch_size, shuffle=True, augment=True,
                        drop_last=(n % recipe.batch_size == 1),  # BatchNorm needs 2+ images
                        device=device, channels_last=channels_last, seed=seed, padding=recipe.crop_padding)
    test = BatchLoader(test_data, recipe.eval_batch_size, device=device, channels_last=channels_last)
    held_out = test if val_data is None else BatchLoader(val_data, recipe.eval_batch_size, device=device,
                                                         channels_last=channels_last)
    return train, held_out, test
