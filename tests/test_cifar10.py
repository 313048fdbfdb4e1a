"""cbam_course.train.cifar10: CIFAR-10 from disk, and its errors (offline, fake files)."""
from __future__ import annotations

import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cbam_course.runtime import DATA_ENV
from cbam_course.train import cifar10 as C
from cbam_course.train.data import CIFAR10_CLASSES

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


# ---- CIFAR-10 on disk ---------------------------------------------------------------------------

@pytest.fixture
def offline(monkeypatch):
    """Every download attempt fails as it does with no network."""
    import torchvision.datasets.utils as U

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(U, "download_and_extract_archive", no_network)
    monkeypatch.setattr(U, "download_url", no_network)


def test_default_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert C.default_data_root() == tmp_path
    monkeypatch.delenv(DATA_ENV)
    # In a source checkout: the repository's data/, whatever the working folder (lessons run in notebooks/)
    monkeypatch.chdir(tmp_path)
    assert C.default_data_root() == Path(C.__file__).resolve().parents[2] / "data"


def test_offline_without_archive_says_where_to_put_it(offline, tmp_path):
    with pytest.raises(C.DatasetNotFoundError) as info:
        C.load_cifar10(tmp_path / "data")
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert C.CIFAR10_URL in message and C.CIFAR10_ARCHIVE in message
    assert str((tmp_path / "data").resolve()) in message


def test_damaged_archive_says_delete_and_fetch_again(offline, tmp_path, monkeypatch):
    archive = tmp_path / C.CIFAR10_ARCHIVE
    archive.write_bytes(b"not a tarball" * 100)
    with pytest.raises(C.DatasetCorruptError, match="md5") as info:
        C.load_cifar10(tmp_path)
    assert "delete" in str(info.value) and C.CIFAR10_URL in str(info.value)
    # right checksum but unreadable: still a clear error, not a tarfile traceback
    monkeypatch.setattr(C, "CIFAR10_MD5", C._md5(archive))
    with pytest.raises(C.DatasetCorruptError, match="cannot unpack"):
        C.load_cifar10(tmp_path)


def _write_fake_batches(folder: Path, n: int = 6) -> np.ndarray:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    flat = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": flat, "labels": list(range(n))}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CIFAR10_CLASSES)}, f)
    return flat


def test_torchvision_layout_loads_as_uint8_nchw(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    flat = _write_fake_batches(tmp_path / C.CIFAR10_FOLDER)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda path, md5=None: True)  # fake files, fake md5s
    test = C.load_cifar10(tmp_path, train=False)
    assert test.images.shape == (6, 3, 32, 32) and test.images.dtype == torch.uint8
    assert torch.equal(test.images[2], torch.from_numpy(flat[2].reshape(3, 32, 32)))
    assert test.labels.tolist() == list(range(6)) and not test.is_standin
    assert len(C.load_cifar10(tmp_path, train=True)) == 30


def test_damaged_unpacked_files_get_a_clear_error(tmp_path):
    _write_fake_batches(tmp_path / C.CIFAR10_FOLDER)  # md5s do not match the real files
    with pytest.raises(C.DatasetCorruptError, match="damaged"):
        C.load_cifar10(tmp_path)


def test_image_folder_layout_decodes_and_caches(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    pixels = {}
    for split in ("train", "test"):
        for cls in ("cat", "ant"):  # sorted: ant=0, cat=1
            d = tmp_path / split / cls
            d.mkdir(parents=True)
            for i in range(3):
                arr = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{i:04d}.png")
                pixels[(split, cls, i)] = arr
    train = C.load_cifar10(tmp_path, train=True)
    assert train.classes == ("ant", "cat") and train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(train.images[4], torch.from_numpy(pixels[("train", "cat", 1)]).permute(2, 0, 1))
    assert list((tmp_path / ".cbam_cache").glob("train-*.pt"))

    def must_not_decode(files):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(C, "_decode_files", must_not_decode)
    again = C.load_cifar10(tmp_path, train=True)
    assert torch.equal(again.images, train.images)
    monkeypatch.undo()
    # JPEGs (what the image-folder copy of CIFAR-10 uses): lossy, so close rather than equal
    smooth = np.stack([*np.meshgrid(np.arange(32) * 8, np.arange(32) * 4, indexing="ij"), np.full((32, 32), 90)], -1)
    jpg = tmp_path / "jpgset"
    for split in ("train", "test"):
        (jpg / split / "a").mkdir(parents=True)
        Image.fromarray(smooth.astype(np.uint8)).save(jpg / split / "a" / "0.jpg", quality=95)
    jtest = C.load_cifar10(jpg, train=False)
    assert jtest.images.shape == (1, 3, 32, 32)
    assert (jtest.images[0].float() - torch.from_numpy(smooth).permute(2, 0, 1).float()).abs().mean() < 4


def test_image_folder_rejects_wrong_sizes(tmp_path):
    for split in ("train", "test"):
        (tmp_path / split / "a").mkdir(parents=True)
        Image.new("RGB", (64, 48)).save(tmp_path / split / "a" / "0.png")
    with pytest.raises(C.DatasetCorruptError, match="32x32"):
        C.load_cifar10(tmp_path)
