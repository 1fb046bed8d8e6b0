"""Data sets held in memory as normalised tensors, with fixed seeded splits.

``DATASETS`` is the registry: one :class:`DatasetInfo` per name, the single source of truth for CLI
choices, listings and tests. :func:`load_data` turns a :class:`~aaf_search.config.DataConfig` into
:class:`DataSplits` on the requested device; the training loop then walks them with
:func:`~aaf_search.trials.batches.iterate_batches` and, when ``config.augment`` is set, augments each batch
with ``splits.augmenter(generator)``.

Splits are a property of the data, not of the trial: the validation set is drawn with
``options["split_seed"]`` (default 0), never with the trial seed, so every trial of a search is scored on
the same images. Both the held-out test split (for sets without an official one) and the validation split
are stratified, so each class keeps its share.
"""

from __future__ import annotations

import dataclasses
import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from aaf_search.config import DataConfig
from aaf_search.trials import sources
from aaf_search.trials.batches import Augment, augment_batch, iterate_batches, resize_images
from aaf_search.trials.sources import DataError, RawData

__all__ = [
    "DATASETS",
    "DataError",
    "DataSplits",
    "DatasetInfo",
    "augment_batch",
    "check_data_files",
    "clear_cache",
    "dataset_names",
    "get_dataset",
    "iterate_batches",
    "load_data",
    "resize_images",
]

Loader = Callable[[Path, Mapping[str, Any], bool], RawData]

COMMON_OPTIONS = ("split_seed", "resize", "normalize")
TEST_FRACTION = 0.2  # held out once, stratified, for sets without an official test split
TEST_SPLIT_SEED = 0  # fixed for good: changing split_seed re-draws validation, never the test set
MAX_IN_MEMORY_GIB = 16.0  # refuse a resize that would not fit in memory (CIFAR at 224 px is ~36 GiB)
_CACHE_SIZE = 2  # prepared data sets kept per process; a search uses one, a comparison two


@dataclass(frozen=True)
class DatasetInfo:
    """A registered data set: what it is, its shape, its normalisation and its augmentation.

    ``source`` says where the pixels come from: ``bundled`` (shipped with a library), ``files`` (read from
    ``DataConfig.root``, downloaded on request) or ``generated``. ``flip`` enables random horizontal flips in
    augmentation (off for digits, whose mirror images are other glyphs); ``pad`` is the random-translation
    padding in pixels at the native size. ``options`` lists the data-set specific keys of
    ``DataConfig.options`` on top of :data:`COMMON_OPTIONS`.
    """

    name: str
    summary: str
    input_shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: Literal["bundled", "files", "generated"]
    flip: bool
    pad: int
    loader: Loader = field(repr=False, compare=False)
    long_tail: bool = False
    options: tuple[str, ...] = ()


_MNIST_STATS = ((0.1307,), (0.3081,))  # seed 001's constants
_FASHION_STATS = ((0.2860,), (0.3530,))
_CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))  # seed 001's constants
_CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "digits", "scikit-learn's bundled 8x8 handwritten digits (1797 images; 20% held out as test)",
            (1, 8, 8), 10, (0.3053,), (0.3760,), "bundled", flip=False, pad=1,  # 4 px would be half the image
            loader=sources.load_digits_set,
        ),
        DatasetInfo(
            "mnist", "MNIST handwritten digits, 28x28 grey (60k train, 10k test)",
            (1, 28, 28), 10, *_MNIST_STATS, "files", flip=False, pad=4, loader=sources.load_mnist,
        ),
        DatasetInfo(
            "fashion_mnist", "Fashion-MNIST clothing, 28x28 grey (60k train, 10k test)",
            (1, 28, 28), 10, *_FASHION_STATS, "files", flip=True, pad=4, loader=sources.load_fashion_mnist,
        ),
        DatasetInfo(
            "cifar10", "CIFAR-10, 32x32 RGB, 10 classes (50k train, 10k test)",
            (3, 32, 32), 10, *_CIFAR10_STATS, "files", flip=True, pad=4, loader=sources.load_cifar10,
        ),
        DatasetInfo(
            "cifar100", "CIFAR-100 fine labels, 32x32 RGB, 100 classes (50k train, 10k test)",
            (3, 32, 32), 100, *_CIFAR100_STATS, "files", flip=True, pad=4, loader=sources.load_cifar100,
        ),
        DatasetInfo(
            "cifar10_lt", "CIFAR-10 with an exponentially long-tailed training set (imbalance_ratio, default 100)",
            (3, 32, 32), 10, *_CIFAR10_STATS, "files", flip=True, pad=4, loader=sources.load_cifar10,
            long_tail=True, options=("imbalance_ratio",),
        ),
        DatasetInfo(
            "cifar100_lt", "CIFAR-100 with an exponentially long-tailed training set (imbalance_ratio, default 100)",
            (3, 32, 32), 100, *_CIFAR100_STATS, "files", flip=True, pad=4, loader=sources.load_cifar100,
            long_tail=True, options=("imbalance_ratio",),
        ),
        DatasetInfo(
            "synthetic", "seeded class prototypes plus noise, for tests (options shape, classes, size, noise)",
            (1, 8, 8), 4, (0.0,), (1.0,), "generated", flip=False, pad=1, loader=sources.load_synthetic,
            options=("shape", "classes", "size", "noise", "data_seed"),
        ),
    )
}  # fmt: skip


def dataset_names() -> tuple[str, ...]:
    """Registered data set names, in registry order."""
    return tuple(DATASETS)


def get_dataset(name: str) -> DatasetInfo:
    """The registry entry for ``name``; an unknown name raises :class:`DataError` listing the valid ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown data set '{name}'; valid names: {', '.join(DATASETS)}") from None


@dataclass(frozen=True)
class DataSplits:
    """Train/validation/test tensors of one data set, normalised, on one device.

    ``*_x`` are float32 NCHW, ``*_y`` int64 class indices. The tensors may share memory with the
    per-process cache: treat them as read-only (augmentation returns new tensors). ``flip`` and ``pad``
    (scaled to the current image size) configure :meth:`augmenter`.
    """

    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    test_x: Tensor
    test_y: Tensor
    input_shape: tuple[int, int, int]
    num_classes: int
    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    flip: bool = False
    pad: int = 0

    def augmenter(self, generator: torch.Generator | None) -> Augment:
        """This set's batch augmentation drawing from ``generator``, for ``iterate_batches(..., augment=...)``."""
        return partial(augment_batch, generator=generator, flip=self.flip, pad=self.pad)

    def to(self, device: torch.device | str) -> DataSplits:
        """The same splits on ``device`` (no copy when they are already there)."""
        return dataclasses.replace(self, **{name: getattr(self, name).to(device) for name in _TENSOR_FIELDS})


_TENSOR_FIELDS = ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")


def with_dataset(config: DataConfig, name: str) -> tuple[DataConfig, list[str]]:
    """``config`` for data set ``name`` (a registry name), and the options it drops: those ``name`` does
    not take (a long-tailed set's ``imbalance_ratio`` when moving to the full set), which it would refuse."""
    info = get_dataset(name)
    valid = COMMON_OPTIONS + info.options
    kept = {key: value for key, value in config.options.items() if key in valid}
    dropped = sorted(str(key) for key in config.options if key not in valid)
    return dataclasses.replace(config, name=name, options=kept), dropped


def check_data_files(config: DataConfig) -> None:
    """A :class:`DataError` now when ``config``'s files are missing (and not to be downloaded); reads nothing."""
    info = get_dataset(config.name)
    if info.source == "files":
        sources.check_files(info.loader, Path(config.root).expanduser().resolve(), config.download)


def load_data(config: DataConfig, *, device: torch.device | str = "cpu", min_size: int | None = None) -> DataSplits:
    """Load ``config.name`` as normalised in-memory splits on ``device``.

    ``val_fraction`` of the training set goes to validation (stratified, seeded by ``split_seed``). Images
    are resized (bilinear) to ``options["resize"]`` when given, and up to ``min_size`` when they are
    smaller, for architectures with a minimum input size. Decoded splits are cached per process on the CPU,
    so the trials that one worker runs read the files once.
    """
    info = get_dataset(config.name)
    options = dict(config.options)
    _check_options(info, options)
    if not 0.0 < config.val_fraction < 1.0:
        raise DataError(f"data.val_fraction must be in (0, 1), got {config.val_fraction}")
    resize = _resize_option(options)
    root = Path(config.root).expanduser().resolve() if info.source == "files" else Path()
    key = (info.name, str(root), config.val_fraction, min_size, json.dumps(options, sort_keys=True, default=str))
    splits = _CACHE.get(key)
    if splits is None:
        splits = _prepare(info, root, config.download, options, config.val_fraction, (resize, min_size))
        _CACHE[key] = splits
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return splits.to(device)


_CACHE: OrderedDict[tuple[Any, ...], DataSplits] = OrderedDict()


def clear_cache() -> None:
    """Forget the decoded data sets of this process (tests; freeing memory between searches)."""
    _CACHE.clear()


def _check_options(info: DatasetInfo, options: Mapping[str, Any]) -> None:
    valid = COMMON_OPTIONS + info.options
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise DataError(f"unknown option '{unknown[0]}' for data set '{info.name}'; valid options: {', '.join(valid)}")


def _resize_option(options: Mapping[str, Any]) -> int | None:
    size = options.get("resize")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise DataError(f"data option 'resize' must be a positive integer, got {size!r}")
    return size


def _target_size(height: int, resize: int | None, min_size: int | None) -> int | None:
    """The square size to resize to (``resize``, raised to ``min_size``), or None to keep the images as they are."""
    size = resize
    if min_size is not None and (size if size is not None else height) < min_size:
        size = min_size
    return size


def _prepare(
    info: DatasetInfo,
    root: Path,
    download: bool,
    options: Mapping[str, Any],
    val_fraction: float,
    sizes: tuple[int | None, int | None],
) -> DataSplits:
    """Decode, normalise, split and resize (``sizes`` = the ``resize`` option and ``min_size``) on the CPU."""
    split_seed = options.get("split_seed", 0)
    if isinstance(split_seed, bool) or not isinstance(split_seed, int):
        raise DataError(f"data option 'split_seed' must be an integer, got {split_seed!r}")
    raw = info.loader(root, options, download)
    num_classes = raw.num_classes or info.num_classes
    channels, native = raw.train_x.shape[1], raw.train_x.shape[-1]
    mean, std = _statistics(info, options, channels)
    # Normalise in place before splitting: loaders hand over fresh tensors, and CIFAR as float32 is 0.7 GB,
    # so every avoided copy counts.
    train_x, train_y = _normalise_(raw.train_x, mean, std), raw.train_y
    if raw.test_x is None or raw.test_y is None:
        keep, held = stratified_split(train_y, TEST_FRACTION, torch.Generator().manual_seed(TEST_SPLIT_SEED))
        test_x, test_y = train_x[held], train_y[held]
        train_x, train_y = train_x[keep], train_y[keep]
    else:
        test_x, test_y = _normalise_(raw.test_x, mean, std), raw.test_y
    # One generator for the whole preparation: the validation draw, then the long-tail draw.
    generator = torch.Generator().manual_seed(split_seed)
    keep, held = stratified_split(train_y, val_fraction, generator)
    if info.long_tail:
        keep = keep[long_tail_indices(train_y[keep], num_classes, _imbalance_ratio(options), generator)]
    xs = [train_x[keep], train_x[held], test_x]
    size = _target_size(raw.train_x.shape[-2], *sizes)
    if size is not None:
        _check_memory(sum(x.shape[0] for x in xs) * channels * size * size * 4, info.name, size)
        xs = [resize_images(x, size) for x in xs]
    height, width = xs[0].shape[-2:]
    return DataSplits(
        xs[0], train_y[keep], xs[1], train_y[held], xs[2], test_y,
        input_shape=(channels, height, width), num_classes=num_classes, name=info.name, mean=mean, std=std,
        flip=info.flip, pad=max(1, round(info.pad * width / native)) if info.pad else 0,
    )  # fmt: skip


def _statistics(info: DatasetInfo, options: Mapping[str, Any], channels: int) -> tuple[tuple[float, ...], ...]:
    """Per-channel (mean, std); identity with ``normalize: false`` (seed 002 trains on raw [0, 1] pixels)."""
    if not options.get("normalize", True):
        return (0.0,) * channels, (1.0,) * channels
    # A single value (grey sets, synthetic) applies to every channel.
    return tuple(values * channels if len(values) == 1 else values for values in (info.mean, info.std))


def stratified_split(labels: Tensor, fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Indices ``(kept, held)`` with ``round(fraction * n_c)`` samples of each class ``c`` held out.

    Each class is permuted with ``generator`` in increasing class order, so the split depends only on the
    labels, the fraction and the seed. Both index sets are sorted to keep the original sample order.
    """
    kept: list[Tensor] = []
    held: list[Tensor] = []
    for cls in torch.unique(labels).tolist():
        members = torch.nonzero(labels == cls).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        count = int(fraction * len(members) + 0.5)
        held.append(members[:count])
        kept.append(members[count:])
    return torch.cat(kept).sort().values, torch.cat(held).sort().values


def long_tail_sizes(n_max: int, num_classes: int, imbalance_ratio: float) -> list[int]:
    """Images kept per class: ``int(n_max · ρ^(−i/(C−1)))`` for class ``i`` (Cao et al., LDAM, NeurIPS 2019).

    Class 0 keeps ``n_max`` and the last class ``n_max / ρ``; the profile is the standard exponential one of
    CIFAR-10/100-LT.
    """
    return [int(n_max * imbalance_ratio ** (-i / (num_classes - 1))) for i in range(num_classes)]


def long_tail_indices(labels: Tensor, num_classes: int, imbalance_ratio: float, generator: torch.Generator) -> Tensor:
    """Positions in ``labels`` to keep for the long-tailed profile; a seeded random subset of each class."""
    counts = torch.bincount(labels, minlength=num_classes)
    sizes = long_tail_sizes(int(counts.max()), num_classes, imbalance_ratio)
    chosen = []
    for cls, size in enumerate(sizes):
        members = torch.nonzero(labels == cls).flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:size]])
    return torch.cat(chosen).sort().values


def _imbalance_ratio(options: Mapping[str, Any]) -> float:
    ratio = options.get("imbalance_ratio", 100)
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or ratio < 1:
        raise DataError(f"data option 'imbalance_ratio' must be a number >= 1, got {ratio!r}")
    return float(ratio)


def _normalise_(x: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """``(x - mean) / std`` per channel, in place."""
    shape = (1, len(mean), 1, 1)
    return x.sub_(torch.tensor(mean).view(shape)).div_(torch.tensor(std).view(shape))


def _check_memory(nbytes: int, name: str, size: int) -> None:
    gib = nbytes / 2**30
    if gib > MAX_IN_MEMORY_GIB:
        raise DataError(
            f"{name} resized to {size}x{size} needs {gib:.1f} GiB in memory (limit {MAX_IN_MEMORY_GIB:g} GiB); "
            "use a smaller data option 'resize' or resize each batch in the training loop with resize_images"
        )
