"""cbam_course.train: training for lessons 05 and 06. Not imported by ``import cbam_course``.

Reading order:

- ``data``: images in memory (``ImageSet``), the generated stand-in, batched augmentation,
  ``BatchLoader``; ``cifar10``: CIFAR-10 from disk or the network;
- ``loops``: ``train_step`` and ``evaluate``, the two loops lesson 05 builds (``scores`` is the one
  evaluation loop behind ``evaluate`` and the final test);
- ``recipes``: the Day 50 lesson's recipe (``day50``) and the course's (``fast``, ``fast128``), the
  quick/laptop/full profiles;
- ``history``: what a run did (``History``), ``plot_curves``, the live plot;
- ``files`` and ``checkpoints``: atomic writes, and checkpoint files read safely;
- ``budget``: the wall-clock budget; ``trainer``: the ``Trainer`` that puts them together and owns
  its state;
- ``run``: ``train_model``, a whole run in one call (the lessons and the command line use it);
- ``store`` and ``prepare``: the run store (each run trained once, then loaded) and the runs the
  lessons show;
- ``stats``: lesson 06's tests of a difference against noise;
- ``figures``: confusion matrices, attention on test images, comparisons of runs;
- ``cli``: ``python -m cbam_course train``, the one training command line.
"""
from .checkpoints import CheckpointError, load_checkpoint
from .cifar10 import DataError, load_cifar10
from .data import BatchLoader, ImageSet, augment_batch, make_standin, normalize
from .history import History, plot_curves
from .loops import evaluate, train_step
from .recipes import PROFILES, RECIPES, Profile, Recipe, get_profile, get_recipe
from .run import load_profile_data, train_model
from .trainer import Trainer, fit

__all__ = [
    "load_cifar10", "make_standin", "ImageSet", "BatchLoader", "augment_batch", "normalize", "DataError",
    "train_step", "evaluate", "Recipe", "RECIPES", "get_recipe", "Profile", "PROFILES", "get_profile",
    "History", "plot_curves", "Trainer", "fit", "train_model", "load_profile_data",
    "load_checkpoint", "CheckpointError",
]
