"""CIFAR-10 from disk or the network: download, checksum, unpack, decode, cache.

``load_cifar10(root, train)`` returns an :class:`~cbam_course.train.data.ImageSet`, from
torchvision's download (verified by its md5) or from an image-folder copy
``root/{train,test}/<class>/*.jpg|png`` (decoded once, cached in ``root/.cbam_cache/``). Offline,
with nothing on disk, it raises :class:`DatasetNotFoundError`, whose message names the address,
the file and the folder to put it in.
"""
from __future__ import annotations

import hashlib
import os
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from .files import atomic_path
from ..i18n import tr
from ..runtime import DATA_ENV
from .data import ImageSet

__all__ = ["CIFAR10_URL", "CIFAR10_ARCHIVE", "CIFAR10_MD5", "DataError", "DatasetNotFoundError",
           "DatasetCorruptError", "default_data_root", "load_cifar10"]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
_CACHE_VERSION = 1


class DataError(RuntimeError):
    """Base class of the data errors: each message says what is wrong and how to fix it."""


class DatasetNotFoundError(DataError):
    """CIFAR-10 is not on disk and could not be downloaded."""


class DatasetCorruptError(DataError):
    """CIFAR-10's archive or unpacked files are damaged."""


def default_data_root() -> Path:
    """Where CIFAR-10 is looked for: ``$CBAM_COURSE_DATA``, else the repository's ``data/``
    folder (next to the package), else ``./data``."""
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    repo_data = Path(__file__).resolve().parents[2] / "data"  # <repository>/cbam_course/train/cifar10.py
    if repo_data.is_dir():
        return repo_data
    return Path.cwd() / "data"


def _md5(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _not_found_message(root: Path, reason: str) -> str:
    return tr(
        "CIFAR-10 is not in {root} and could not be downloaded ({reason}).\n"
        "Fix: on a machine with internet, download {url} (about 163 MB), put the file "
        "{archive} in the folder {folder} (so that {path} "
        "exists) and run again: it is verified and unpacked there. Or point the environment variable "
        "{env} at a folder that holds it. Without data, quick mode (CBAM_COURSE_QUICK=1) uses "
        "the generated stand-in.",
        root=root, reason=reason, url=CIFAR10_URL, archive=CIFAR10_ARCHIVE, folder=root.resolve(),
        path=root.resolve() / CIFAR10_ARCHIVE, env=DATA_ENV)


def _corrupt_message(what: Path, reason: str) -> str:
    if what.name == CIFAR10_ARCHIVE:
        return tr("CIFAR-10 at {what} is damaged ({reason}). Fix: delete it and the folder {folder}, then "
                  "download {url} again (or let the course download it) into {parent}.",
                  what=what, reason=reason, folder=what.parent / CIFAR10_FOLDER, url=CIFAR10_URL, parent=what.parent)
    return tr("CIFAR-10 at {what} is damaged ({reason}). Fix: delete it, then download {url} again (or let the "
              "course download it) into {parent}.", what=what, reason=reason, url=CIFAR10_URL, parent=what.parent)


def _is_image_folder(root: Path) -> bool:
    return (root / "train").is_dir() and (root / "test").is_dir()


def load_cifar10(root: str | os.PathLike | None = None, train: bool = True, download: bool = True) -> ImageSet:
    """CIFAR-10's training (50,000) or test (10,000) images as in-memory tensors.

    Looks in ``root`` (default: :func:`default_data_root`) for, in this order:

    1. torchvision's unpacked folder ``cifar-10-batches-py`` (md5-checked);
    2. the archive ``cifar-10-python.tar.gz``: verified against its md5, then unpacked;
    3. an image-folder copy ``root/{train,test}/<class>/*.jpg|png``, class folders sorting into
       CIFAR-10's label order; decoded once and cached in ``root/.cbam_cache/``;
    4. otherwise it downloads through torchvision (``download=True``).

    Raises:
        DatasetNotFoundError: nothing on disk and the download failed; the message names the
            address, the file and the folder to put it in.
        DatasetCorruptError: the archive or the unpacked files fail their check.
    """
    root = Path(root).expanduser() if root is not None else default_data_root()
    split = "train" if train else "test"
    folder, archive = root / CIFAR10_FOLDER, root / CIFAR10_ARCHIVE
    if folder.is_dir():
        return _load_torchvision(root, train)
    if archive.is_file():
        _unpack_archive(archive)
        return _load_torchvision(root, train)
    if _is_image_folder(root):
        return _load_image_folder(root, split)
    if not download:
        raise DatasetNotFoundError(_not_found_message(root, "download=False"))
    _download(root)
    return _load_torchvision(root, train)


def _download(root: Path) -> None:
    """Fetch and unpack the archive with torchvision (which checks its md5)."""
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        root.mkdir(parents=True, exist_ok=True)
        download_and_extract_archive(CIFAR10_URL, str(root), filename=CIFAR10_ARCHIVE, md5=CIFAR10_MD5)
    except (OSError, ConnectionError, ValueError) as err:  # URLError is an OSError
        archive = root / CIFAR10_ARCHIVE
        if archive.is_file() and _md5(archive) != CIFAR10_MD5:
            raise DatasetCorruptError(_corrupt_message(archive, tr("incomplete download, md5 mismatch"))) from None
        raise DatasetNotFoundError(_not_found_message(root, f"{type(err).__name__}: {err}")) from None
    except RuntimeError as err:  # torchvision: "File not found or corrupted."
        raise DatasetCorruptError(_corrupt_message(root / CIFAR10_ARCHIVE, str(err))) from None


def _unpack_archive(archive: Path) -> None:
    digest = _md5(archive)
    if digest != CIFAR10_MD5:
        raise DatasetCorruptError(_corrupt_message(archive, tr("md5 is {digest}, expected {md5}",
                                                               digest=digest, md5=CIFAR10_MD5)))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(archive.parent, filter="data")
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DatasetCorruptError(_corrupt_message(archive, tr("cannot unpack: {err}", err=err))) from None


def _load_torchvision(root: Path, train: bool) -> ImageSet:
    from torchvision.datasets import CIFAR10

    try:
        ds = CIFAR10(str(root), train=train, download=False)
    except Exception as err:  # torchvision raises RuntimeError / pickle errors on damaged files
        raise DatasetCorruptError(_corrupt_message(root / CIFAR10_FOLDER, f"{type(err).__name__}: {err}")) from None
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor(ds.targets, dtype=torch.long)
    split = "training" if train else "test"
    return ImageSet(images, labels, tuple(ds.classes), f"CIFAR-10 {split} set ({len(labels):,} images, {root}).")


def _list_image_folder(split_dir: Path) -> tuple[list[str], list[Path], list[int]]:
    classes = sorted(d.name for d in split_dir.iterdir() if d.is_dir())
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(p for p in (split_dir / name).iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
        files += found
        labels += [label] * len(found)
    return classes, files, labels


def _decode_with_torchvision(chunk: list[Path]) -> list[torch.Tensor]:
    import warnings

    with warnings.catch_warnings():  # torchvision 0.29 announces a move to torchcodec
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import ImageReadMode, decode_image, decode_jpeg, read_file

        raw = [read_file(str(p)) for p in chunk]
        if all(p.suffix.lower() in {".jpg", ".jpeg"} for p in chunk):
            return list(decode_jpeg(raw, mode=ImageReadMode.RGB))  # one call for the whole chunk
        return [decode_image(r, mode=ImageReadMode.RGB) for r in raw]


def _decode_with_pil(chunk: list[Path]) -> list[torch.Tensor]:
    import numpy as np
    from PIL import Image

    out = []
    for p in chunk:
        with Image.open(p) as im:
            out.append(torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1))
    return out


def _decode_files(files: list[Path]) -> torch.Tensor:
    """Decode image files into one uint8 tensor (N, 3, 32, 32), in threads (decoding drops the
    GIL). torchvision's decoder is about twice as fast as PIL's; PIL is the fallback."""

    def decode_chunk(chunk: list[Path]) -> torch.Tensor:
        try:
            out = _decode_with_torchvision(chunk)
        except (ImportError, AttributeError, RuntimeError):
            out = _decode_with_pil(chunk)
        bad = [str(p) for p, im in zip(chunk, out) if im.shape != (3, 32, 32)]
        if bad:
            raise DatasetCorruptError(tr("{file} is not a 32x32 image (CIFAR-10's size); {n} such files in this "
                                         "folder. Remove them or re-copy the data.", file=bad[0], n=len(bad)))
        return torch.stack(out)

    size = 2000
    chunks = [files[i:i + size] for i in range(0, len(files), size)]
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        parts = list(pool.map(decode_chunk, chunks))
    return torch.cat(parts) if parts else torch.empty(0, 3, 32, 32, dtype=torch.uint8)


def _load_image_folder(root: Path, split: str) -> ImageSet:
    split_dir = root / split
    classes, files, labels = _list_image_folder(split_dir)
    if not files:
        raise DatasetNotFoundError(tr("{folder} holds no .jpg/.png images in class folders. {fix}", folder=split_dir,
                                      fix=_not_found_message(root, tr("empty image folder"))))
    # The cache is keyed by the file list and sizes, so a changed copy is decoded again.
    key = hashlib.sha1(f"{_CACHE_VERSION}|{classes}|{len(files)}|{files[0].name}|{files[-1].name}|"
                       f"{sum(1 for _ in files)}|{split_dir.stat().st_mtime_ns}".encode()).hexdigest()[:16]
    cache = root / ".cbam_cache" / f"{split}-{key}.pt"
    images = None
    if cache.is_file():
        try:
            blob = torch.load(cache, weights_only=True)
            if blob["images"].shape[0] == len(files):
                images = blob["images"]
        except Exception:  # a damaged cache is simply rebuilt
            images = None
    if images is None:
        images = _decode_files(files)
        try:
            with atomic_path(cache) as tmp:
                torch.save({"images": images}, tmp)
        except OSError:
            pass  # read-only data folder: decode again next time
    split_name = "training" if split == "train" else "test"
    return ImageSet(images, torch.tensor(labels, dtype=torch.long), tuple(classes),
                    f"CIFAR-10 {split_name} set ({len(files):,} images, image-folder copy in {root}).")
