"""Where the pixels come from: readers for each data set's files, decoded once into tensors.

Every loader returns :class:`RawData` with images as float32 NCHW in [0, 1] and int64 labels; splitting,
normalisation and resizing happen in :mod:`aaf_search.trials.data`, the same way for every set.

The MNIST-family (IDX) and CIFAR (pickled batch) formats are read here rather than through torchvision's
dataset classes: torchvision's CIFAR insists on the md5 sums of the official batch files, so a small file
written in the real format (a test fixture, a subset) would be refused, and going through its ``Dataset``
per sample is the slow path we avoid anyway. torchvision is used only to download, into the very layout
that it and these readers share (``<root>/MNIST/raw/*-ubyte``, ``<root>/cifar-10-batches-py/...``).
"""

from __future__ import annotations

import importlib.util
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import Tensor

from aaf_search.errors import UserError


class DataError(UserError):
    """A data set is unknown, its files are missing or unreadable, or one of its options is invalid."""


@dataclass(frozen=True)
class RawData:
    """Decoded images in [0, 1] (float32 NCHW) and int64 labels, freshly allocated (callers modify them in place).

    ``test_*`` is None for sets without an official test split; ``num_classes`` overrides the registry's
    value for sets whose class count is an option.
    """

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor | None = None
    test_y: Tensor | None = None
    num_classes: int | None = None


# ---------------------------------------------------------------------------------------------------
# Bundled and generated sets: no files, no download.


DIGITS_FILE = ("datasets", "data", "digits.csv.gz")  # in scikit-learn's package: 64 pixels, then the label


def load_digits_set(root: Path, options: Mapping[str, Any], download: bool) -> RawData:
    """scikit-learn's bundled 8x8 digits (1797 images, values 0..16), scaled to [0, 1].

    Read from the file ``sklearn.datasets.load_digits`` reads, found without importing scikit-learn:
    that import takes about a second (SciPy), paid by every process whose first trial trains on
    digits, and reading the file takes 20 ms. Where the file is not (another layout of scikit-learn),
    ``load_digits`` reads it.
    """
    path = _bundled_digits_file()
    if path is not None:
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
        pixels, labels = table[:, :-1], table[:, -1]
    else:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        pixels, labels = bunch.data, bunch.target
    images = torch.as_tensor(pixels, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    return RawData(images.contiguous(), torch.as_tensor(labels).to(torch.int64))


def _bundled_digits_file() -> Path | None:
    spec = importlib.util.find_spec("sklearn")  # locates the package without running it
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent.joinpath(*DIGITS_FILE)
    return path if path.is_file() else None


SYNTHETIC_DEFAULTS: dict[str, Any] = {"shape": [1, 8, 8], "classes": 4, "size": 512, "noise": 0.8, "data_seed": 0}


def load_synthetic(root: Path, options: Mapping[str, Any], download: bool) -> RawData:
    """Class prototypes of ±0.6 per pixel plus Gaussian noise (std ``noise``), balanced labels, seeded.

    With the defaults each pixel has mean 0 and variance 0.6² + 0.8² = 1, so the set is already normalised,
    and a prototype differs from another in about half its pixels: a linear model separates the classes
    well above chance while the noise keeps the task from being trivial on a few pixels.
    """
    shape = _int_list(options.get("shape", SYNTHETIC_DEFAULTS["shape"]), "synthetic option 'shape'", length=3)
    classes = _positive_int(options.get("classes", SYNTHETIC_DEFAULTS["classes"]), "synthetic option 'classes'")
    size = _positive_int(options.get("size", SYNTHETIC_DEFAULTS["size"]), "synthetic option 'size'")
    noise = float(options.get("noise", SYNTHETIC_DEFAULTS["noise"]))
    if classes < 2 or size < classes:
        raise DataError(f"synthetic needs classes >= 2 and size >= classes, got classes={classes}, size={size}")
    generator = torch.Generator().manual_seed(int(options.get("data_seed", SYNTHETIC_DEFAULTS["data_seed"])))
    signs = torch.randint(0, 2, (classes, *shape), generator=generator, dtype=torch.float32) * 2 - 1
    labels = torch.arange(size) % classes
    labels = labels[torch.randperm(size, generator=generator)]
    images = 0.6 * signs[labels] + noise * torch.randn((size, *shape), generator=generator)
    return RawData(images.contiguous(), labels.to(torch.int64), num_classes=classes)


# ---------------------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST: uncompressed IDX files, as torchvision stores them after download.

IDX_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_UBYTE = 0x08


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (magic ``00 00 08 ndim``, big-endian int32 dims, then data)."""
    data = path.read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _IDX_UBYTE:
        raise DataError(f"'{path}' is not an IDX file of unsigned bytes (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    if len(data) - header != int(np.prod(dims)):
        raise DataError(f"'{path}' is truncated or corrupt: dims {dims} need {int(np.prod(dims))} bytes of data")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist(root: Path, options: Mapping[str, Any], download: bool) -> RawData:
    """MNIST from ``<root>/MNIST/raw``."""
    return _load_idx_set(root, "MNIST", download)


def load_fashion_mnist(root: Path, options: Mapping[str, Any], download: bool) -> RawData:
    """Fashion-MNIST from ``<root>/FashionMNIST/raw``."""
    return _load_idx_set(root, "FashionMNIST", download)


def _idx_paths(root: Path, folder: str) -> list[Path]:
    return [root / folder / "raw" / name for split in (True, False) for name in IDX_FILES[split]]


def _load_idx_set(root: Path, folder: str, download: bool) -> RawData:
    raw = root / folder / "raw"
    _ensure_files(_idx_paths(root, folder), download, lambda: _torchvision_download(folder, root))
    parts: list[tuple[Tensor, Tensor]] = []
    for split in (True, False):
        images = read_idx(raw / IDX_FILES[split][0])
        labels = read_idx(raw / IDX_FILES[split][1])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"'{raw}': images {images.shape} and labels {labels.shape} do not match")
        parts.append((_to_unit(images[:, None]), torch.from_numpy(labels.astype(np.int64))))
    (train_x, train_y), (test_x, test_y) = parts
    return RawData(train_x, train_y, test_x, test_y)


# ---------------------------------------------------------------------------------------------------
# CIFAR-10/100: the pickled "python version" batches (a dict with 'data' as N x 3072 uint8 rows, RGB planes).

CIFAR_LAYOUT: dict[int, tuple[str, tuple[str, ...], tuple[str, ...], str]] = {
    # classes: (folder, train files, test files, label key)
    10: ("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "labels"),
    100: ("cifar-100-python", ("train",), ("test",), "fine_labels"),
}


class BatchUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR batch and nothing else: dicts, lists, bytes and numpy arrays.

    A pickle may name any importable callable and have it called; a file under the data root is not
    trusted to run code, so every global other than numpy's array rebuilding is refused.
    """

    ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),  # the official files, pickled by Python 2's numpy
            ("numpy._core.multiarray", "_reconstruct"),  # the same, pickled by numpy 2
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),  # how Python 3 writes bytes into a protocol-2 pickle
        }
    )

    def __init__(self, handle: BinaryIO, path: Path) -> None:
        super().__init__(handle, encoding="latin1")
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise DataError(f"'{self.path}' is not a CIFAR batch: it asks to load {module}.{name}, which is refused")
        return super().find_class(module, name)


def read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch file as (N x 3 x 32 x 32 uint8, N int64 labels).

    The official files were pickled by Python 2, so their keys are bytes; ``latin1`` (as torchvision uses)
    decodes the numpy payload, and keys are compared in both spellings.
    """
    with path.open("rb") as handle:
        entry = BatchUnpickler(handle, path).load()
    if not isinstance(entry, dict):
        raise DataError(f"'{path}' is not a CIFAR batch: expected a pickled dict, got {type(entry).__name__}")
    entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}
    if "data" not in entry or label_key not in entry:
        raise DataError(f"'{path}' is not a CIFAR batch: it lacks 'data' or '{label_key}' (keys: {sorted(entry)})")
    data = np.asarray(entry["data"], dtype=np.uint8)
    labels = np.asarray(entry[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataError(f"'{path}': data {data.shape} and {len(labels)} labels do not form N x 3072 images")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(root: Path, options: Mapping[str, Any], download: bool) -> RawData:
    """CIFAR-10 from ``<root>/cifar-10-batches-py``."""
    return _load_cifar(root, 10, download)


def load_cifar100(root: Path, options: Mapping[str, Any], download: bool) -> RawData:
    """CIFAR-100 (fine labels) from ``<root>/cifar-100-python``."""
    return _load_cifar(root, 100, download)


def _cifar_paths(root: Path, classes: int) -> list[Path]:
    folder, train_files, test_files, _ = CIFAR_LAYOUT[classes]
    return [root / folder / name for name in train_files + test_files]


def _load_cifar(root: Path, classes: int, download: bool) -> RawData:
    folder, train_files, test_files, label_key = CIFAR_LAYOUT[classes]
    base = root / folder
    _ensure_files(_cifar_paths(root, classes), download, lambda: _torchvision_download(folder, root))
    parts: list[tuple[Tensor, Tensor]] = []
    for files in (train_files, test_files):
        batches = [read_cifar_batch(base / name, label_key) for name in files]
        images = np.concatenate([b[0] for b in batches])
        parts.append((_to_unit(images), torch.from_numpy(np.concatenate([b[1] for b in batches]))))
    (train_x, train_y), (test_x, test_y) = parts
    return RawData(train_x, train_y, test_x, test_y)


# ---------------------------------------------------------------------------------------------------
# Files and downloads.


def check_files(loader: Callable[..., RawData], root: Path, download: bool) -> None:
    """Raise the loader's own "data files not found" error now, without reading anything.

    A search checks this before it opens its storage, so a wrong ``--data-root`` leaves no study behind.
    Bundled and generated sets need no files; with ``download`` the loader fetches what is missing.
    """
    paths = {
        load_mnist: lambda: _idx_paths(root, "MNIST"),
        load_fashion_mnist: lambda: _idx_paths(root, "FashionMNIST"),
        load_cifar10: lambda: _cifar_paths(root, 10),
        load_cifar100: lambda: _cifar_paths(root, 100),
    }.get(loader)
    if paths is not None and not download:
        _ensure_files(paths(), download, lambda: None)


_TORCHVISION_CLASSES = {
    "MNIST": "MNIST",
    "FashionMNIST": "FashionMNIST",
    "cifar-10-batches-py": "CIFAR10",
    "cifar-100-python": "CIFAR100",
}


def _ensure_files(expected: Sequence[Path], download: bool, fetch: Callable[[], None]) -> None:
    """Download when asked and needed; then fail with the missing paths and the flag that fetches them."""
    missing = [p for p in expected if not p.is_file()]
    if missing and download:
        fetch()
        missing = [p for p in expected if not p.is_file()]
    if missing:
        hint = "the download did not produce them" if download else "pass --download (data.download: true)"
        names = ", ".join(str(p) for p in missing)
        raise DataError(f"data files not found: {names}; {hint}, or set data.root to the folder that holds them")


def _torchvision_download(folder: str, root: Path) -> None:
    """Fetch the official files through torchvision (which checks their md5 sums) into ``root``."""
    dataset_class = _torchvision_class(folder)
    root.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            dataset_class(str(root), train=train, download=True)
    except (RuntimeError, OSError) as exc:  # URLError is an OSError; torchvision raises RuntimeError on bad md5
        reason = " ".join(str(exc).split())  # torchvision's message takes a line per mirror tried
        raise DataError(f"downloading {folder} into '{root}' failed: {reason}") from exc


def _torchvision_class(folder: str) -> Any:
    import torchvision.datasets  # imported on demand: it costs seconds and only a download needs it

    return getattr(torchvision.datasets, _TORCHVISION_CLASSES[folder])


def _to_unit(images: np.ndarray) -> Tensor:
    """uint8 array -> float32 tensor in [0, 1] (a copy: the source may be a read-only buffer)."""
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).div_(255.0)


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise DataError(f"{what} must be a positive integer, got {value!r}")
    return value


def _int_list(value: Any, what: str, *, length: int) -> list[int]:
    if not isinstance(value, list | tuple) or len(value) != length:
        raise DataError(f"{what} must be a list of {length} positive integers, got {value!r}")
    return [_positive_int(v, what) for v in value]
