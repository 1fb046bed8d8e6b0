"""In-memory data sets: registry, splits, file formats, long tail, synthetic data, resizing and batching.

The MNIST and CIFAR tests write tiny files in the real on-disk formats (IDX, pickled batches) into
``tmp_path`` and read them back through :func:`load_data`, so no download is ever needed.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from aaf_search.config import DataConfig
from aaf_search.errors import UserError
from aaf_search.trials import batches, sources
from aaf_search.trials.data import (
    DATASETS,
    DataError,
    DataSplits,
    augment_batch,
    clear_cache,
    dataset_names,
    iterate_batches,
    load_data,
    long_tail_sizes,
    resize_images,
)

# ---------------------------------------------------------------------------------------------------
# Writers for the real file formats.


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of unsigned bytes: magic 00 00 08 ndim, big-endian int32 dims, raw data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str, train: int, test: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx(root / folder / "raw" / name, array)
    return arrays


def write_cifar_batch(path: Path, images: np.ndarray, labels: np.ndarray, label_key: str) -> None:
    """A batch as the official files hold it: bytes keys (Python 2 pickles), N x 3072 uint8 rows, list labels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        b"batch_label": b"test fixture",
        b"data": images.reshape(len(images), -1),
        label_key.encode(): labels.tolist(),
        b"filenames": [f"img_{i}.png".encode() for i in range(len(images))],
    }
    if label_key == "fine_labels":
        entry[b"coarse_labels"] = (labels // 5).tolist()
    with path.open("wb") as handle:
        pickle.dump(entry, handle, protocol=2)


def write_cifar10(root: Path, per_class: int, test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """Five training batches holding ``per_class`` images of each class in total, plus a test batch."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(10), per_class))
    images = rng.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8)
    base = root / "cifar-10-batches-py"
    for i, part in enumerate(np.array_split(np.arange(len(labels)), 5), start=1):
        write_cifar_batch(base / f"data_batch_{i}", images[part], labels[part], "labels")
    test_x = rng.integers(0, 256, (test, 3, 32, 32), dtype=np.uint8)
    test_y = rng.integers(0, 10, test)
    write_cifar_batch(base / "test_batch", test_x, test_y, "labels")
    return {"train_x": images, "train_y": labels, "test_x": test_x, "test_y": test_y}


def unnormalise(x: torch.Tensor, splits: DataSplits, scale: float) -> np.ndarray:
    """Back to the file's integer pixel values."""
    shape = (1, len(splits.mean), 1, 1)
    pixels = (x * torch.tensor(splits.std).view(shape) + torch.tensor(splits.mean).view(shape)) * scale
    return pixels.round().to(torch.int64).numpy()


def image_multiset(images: np.ndarray, labels: np.ndarray) -> list[tuple[int, bytes]]:
    return sorted((int(label), image.astype(np.uint8).tobytes()) for image, label in zip(images, labels, strict=True))


# ---------------------------------------------------------------------------------------------------
# Registry.


def test_registry_is_the_source_of_names() -> None:
    assert dataset_names() == tuple(DATASETS)
    assert {"digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "cifar10_lt", "cifar100_lt", "synthetic"} == set(
        DATASETS
    )
    assert DataConfig().name == "digits"
    assert not DATASETS["digits"].flip and not DATASETS["mnist"].flip
    assert DATASETS["fashion_mnist"].flip and DATASETS["cifar10"].flip


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(DataError) as info:
        load_data(DataConfig(name="imagenet"))
    assert isinstance(info.value, UserError)
    assert "imagenet" in str(info.value)
    assert all(name in str(info.value) for name in DATASETS)


def test_unknown_option_lists_valid_options() -> None:
    with pytest.raises(DataError, match="valid options: split_seed, resize, normalize, imbalance_ratio"):
        load_data(DataConfig(name="cifar10_lt", options={"imbalance": 10}))


# ---------------------------------------------------------------------------------------------------
# Digits: bundled, default, 20 % stratified test hold-out.


def test_digits_shapes_normalisation_and_split_sizes() -> None:
    from sklearn.datasets import load_digits

    splits = load_data(DataConfig())
    counts = np.bincount(load_digits().target)
    test_counts = [int(0.2 * n + 0.5) for n in counts]
    val_counts = [int(0.1 * (n - t) + 0.5) for n, t in zip(counts, test_counts, strict=True)]
    assert splits.input_shape == (1, 8, 8) and splits.num_classes == 10 and splits.name == "digits"
    assert splits.train_x.dtype == torch.float32 and splits.train_y.dtype == torch.int64
    assert torch.bincount(splits.test_y, minlength=10).tolist() == test_counts
    assert torch.bincount(splits.val_y, minlength=10).tolist() == val_counts
    assert len(splits.train_y) + len(splits.val_y) + len(splits.test_y) == 1797
    assert abs(splits.train_x.mean().item()) < 0.02
    assert abs(splits.train_x.std().item() - 1.0) < 0.02


def test_digits_pixels_round_trip() -> None:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    splits = load_data(DataConfig())
    images = np.concatenate([unnormalise(x, splits, 16.0) for x in (splits.train_x, splits.val_x, splits.test_x)])
    labels = torch.cat([splits.train_y, splits.val_y, splits.test_y]).numpy()
    assert image_multiset(images[:, 0], labels) == image_multiset(bunch.images.astype(np.uint8), bunch.target)


@pytest.mark.parametrize("bundled_file", [True, False])
def test_digits_are_scikit_learns_whether_read_from_its_file_or_through_load_digits(
    bundled_file: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.datasets import load_digits

    if not bundled_file:  # a scikit-learn whose file is elsewhere
        monkeypatch.setattr(sources, "DIGITS_FILE", ("nowhere", "digits.csv.gz"))
    assert (sources._bundled_digits_file() is not None) == bundled_file
    raw = sources.load_digits_set(Path("unused"), {}, download=False)

    bunch = load_digits()
    assert raw.train_x.shape == (1797, 1, 8, 8) and raw.train_x.is_contiguous()
    assert torch.equal(raw.train_x * 16, torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1))
    assert raw.train_y.dtype == torch.int64 and raw.train_y.tolist() == bunch.target.tolist()


def test_split_is_fixed_and_independent_of_trial_seed() -> None:
    clear_cache()
    torch.manual_seed(1)
    first = load_data(DataConfig())
    clear_cache()
    torch.manual_seed(2)
    torch.rand(100)  # move the global stream: the split must not depend on it
    second = load_data(DataConfig())
    for name in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name


def test_split_seed_redraws_validation_but_not_test() -> None:
    base = load_data(DataConfig())
    other = load_data(DataConfig(options={"split_seed": 1}))
    assert torch.equal(base.test_x, other.test_x)
    assert not torch.equal(base.val_x, other.val_x)
    assert torch.equal(torch.bincount(base.val_y), torch.bincount(other.val_y))  # still stratified


def test_cache_shares_tensors_within_a_process() -> None:
    first = load_data(DataConfig())
    second = load_data(DataConfig())
    assert first.train_x.data_ptr() == second.train_x.data_ptr()


def test_normalize_false_keeps_unit_pixels() -> None:
    splits = load_data(DataConfig(options={"normalize": False}))
    assert splits.mean == (0.0,) and splits.std == (1.0,)
    assert splits.train_x.min().item() == 0.0 and splits.train_x.max().item() == 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_load_on_cuda() -> None:
    splits = load_data(DataConfig(), device="cuda")
    assert splits.train_x.is_cuda and splits.test_y.is_cuda


# ---------------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST: IDX files.


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_idx_files_round_trip(tmp_path: Path, name: str, folder: str) -> None:
    arrays = write_mnist(tmp_path, folder, train=50, test=12)
    splits = load_data(DataConfig(name=name, root=str(tmp_path)))
    assert splits.input_shape == (1, 28, 28) and splits.num_classes == 10
    assert np.array_equal(unnormalise(splits.test_x, splits, 255.0)[:, 0], arrays["t10k-images-idx3-ubyte"])
    assert splits.test_y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    images = np.concatenate([unnormalise(x, splits, 255.0)[:, 0] for x in (splits.train_x, splits.val_x)])
    labels = torch.cat([splits.train_y, splits.val_y]).numpy()
    assert image_multiset(images, labels) == image_multiset(
        arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    )
    assert torch.bincount(splits.val_y).tolist() == [1] * 10  # 10 % of 5 per class, stratified


def test_corrupt_idx_file_is_a_data_error(tmp_path: Path) -> None:
    write_mnist(tmp_path, "MNIST", train=10, test=10)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match="truncated"):
        load_data(DataConfig(name="mnist", root=str(tmp_path)))


def test_missing_mnist_names_files_and_flag(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_data(DataConfig(name="mnist", root=str(tmp_path)))
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte") in message
    assert "t10k-labels-idx1-ubyte" in message
    assert "--download" in message


def test_download_goes_through_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, bool, bool]] = []

    class FakeMNIST:
        def __init__(self, root: str, *, train: bool, download: bool) -> None:
            calls.append((root, train, download))
            write_mnist(Path(root), "MNIST", train=20, test=10)

    monkeypatch.setattr(sources, "_torchvision_class", lambda folder: {"MNIST": FakeMNIST}[folder])
    splits = load_data(DataConfig(name="mnist", root=str(tmp_path), download=True))
    assert len(splits.test_y) == 10
    assert calls and all(download for _, _, download in calls) and calls[0][0] == str(tmp_path)


def test_failed_download_is_a_one_line_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Offline:
        def __init__(self, root: str, *, train: bool, download: bool) -> None:
            # torchvision's message, one line per mirror tried
            raise RuntimeError(
                "Error downloading train-images-idx3-ubyte.gz:\nTried https://a.example/mnist/, got:\n"
                "<urlopen error [Errno -2] Name or service not known>\n"
            )

    monkeypatch.setattr(sources, "_torchvision_class", lambda folder: Offline)
    with pytest.raises(DataError) as raised:
        load_data(DataConfig(name="mnist", root=str(tmp_path), download=True))
    assert str(raised.value) == (
        f"downloading MNIST into '{tmp_path}' failed: Error downloading train-images-idx3-ubyte.gz: "
        "Tried https://a.example/mnist/, got: <urlopen error [Errno -2] Name or service not known>"
    )


# ---------------------------------------------------------------------------------------------------
# CIFAR: pickled batches.


def test_cifar10_batches_round_trip(tmp_path: Path) -> None:
    arrays = write_cifar10(tmp_path, per_class=10)
    splits = load_data(DataConfig(name="cifar10", root=str(tmp_path)))
    assert splits.input_shape == (3, 32, 32) and splits.num_classes == 10
    assert np.array_equal(unnormalise(splits.test_x, splits, 255.0), arrays["test_x"])
    assert splits.test_y.tolist() == arrays["test_y"].tolist()
    images = np.concatenate([unnormalise(x, splits, 255.0) for x in (splits.train_x, splits.val_x)])
    labels = torch.cat([splits.train_y, splits.val_y]).numpy()
    assert image_multiset(images, labels) == image_multiset(arrays["train_x"], arrays["train_y"])
    assert torch.bincount(splits.train_y).tolist() == [9] * 10


def test_cifar100_fine_labels_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    train_y, test_y = np.arange(200) % 100, rng.integers(0, 100, 7)
    train_x = rng.integers(0, 256, (200, 3, 32, 32), dtype=np.uint8)
    test_x = rng.integers(0, 256, (7, 3, 32, 32), dtype=np.uint8)
    write_cifar_batch(tmp_path / "cifar-100-python" / "train", train_x, train_y, "fine_labels")
    write_cifar_batch(tmp_path / "cifar-100-python" / "test", test_x, test_y, "fine_labels")
    splits = load_data(DataConfig(name="cifar100", root=str(tmp_path), val_fraction=0.5))
    assert splits.num_classes == 100
    assert np.array_equal(unnormalise(splits.test_x, splits, 255.0), test_x)
    assert splits.test_y.tolist() == test_y.tolist()
    assert torch.bincount(splits.val_y).tolist() == [1] * 100


def test_missing_cifar_names_files_and_flag(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_data(DataConfig(name="cifar10", root=str(tmp_path)))
    message = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_1") in message
    assert "test_batch" in message and "--download" in message


# ---------------------------------------------------------------------------------------------------
# Long tail.


def test_long_tail_profile_is_the_standard_one() -> None:
    # CIFAR-10-LT at ρ = 100 (Cao et al. 2019): 5000 images for the head class down to 50 for the tail.
    assert long_tail_sizes(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def test_cifar10_lt_counts_follow_the_formula(tmp_path: Path) -> None:
    write_cifar10(tmp_path, per_class=40)
    config = DataConfig(name="cifar10_lt", root=str(tmp_path), options={"imbalance_ratio": 10})
    splits = load_data(config)
    n_max = 40 - 4  # after the balanced 10 % validation split
    expected = [int(n_max * 10 ** (-i / 9)) for i in range(10)]
    assert torch.bincount(splits.train_y, minlength=10).tolist() == expected
    assert torch.bincount(splits.val_y).tolist() == [4] * 10  # validation stays balanced
    assert len(splits.test_y) == 20  # the official test set is untouched
    clear_cache()
    again = load_data(config)
    assert torch.equal(splits.train_x, again.train_x)  # seeded selection


def test_bad_imbalance_ratio(tmp_path: Path) -> None:
    write_cifar10(tmp_path, per_class=2)
    with pytest.raises(DataError, match="imbalance_ratio"):
        load_data(DataConfig(name="cifar10_lt", root=str(tmp_path), options={"imbalance_ratio": 0.5}))


# ---------------------------------------------------------------------------------------------------
# Synthetic.


def test_synthetic_is_learnable() -> None:
    splits = load_data(DataConfig(name="synthetic"))
    assert splits.input_shape == (1, 8, 8) and splits.num_classes == 4
    assert len(splits.train_y) + len(splits.val_y) + len(splits.test_y) == 512
    train = splits.train_x.flatten(1)
    centroids = torch.stack([train[splits.train_y == c].mean(0) for c in range(4)])
    predicted = torch.cdist(splits.test_x.flatten(1), centroids).argmin(1)
    accuracy = (predicted == splits.test_y).float().mean().item()
    assert accuracy > 0.8  # chance is 0.25


def test_synthetic_options_and_seed() -> None:
    options = {"shape": [3, 4, 4], "classes": 3, "size": 90}
    splits = load_data(DataConfig(name="synthetic", options=options))
    assert splits.input_shape == (3, 4, 4) and splits.num_classes == 3 and len(splits.mean) == 3
    clear_cache()
    assert torch.equal(load_data(DataConfig(name="synthetic", options=options)).train_x, splits.train_x)
    other = load_data(DataConfig(name="synthetic", options={**options, "data_seed": 1}))
    assert not torch.equal(other.train_x, splits.train_x)


# ---------------------------------------------------------------------------------------------------
# Resizing.


def test_min_size_resizes_up_only() -> None:
    splits = load_data(DataConfig(), min_size=16)
    assert splits.input_shape == (1, 16, 16) and splits.train_x.shape[1:] == (1, 16, 16)
    assert splits.pad == 2  # the 1-pixel digit translation scaled with the image
    assert abs(splits.train_x.mean().item()) < 0.05
    assert load_data(DataConfig(), min_size=4).input_shape == (1, 8, 8)


def test_resize_option_and_min_size() -> None:
    assert load_data(DataConfig(options={"resize": 12})).input_shape == (1, 12, 12)
    assert load_data(DataConfig(options={"resize": 12}), min_size=20).input_shape == (1, 20, 20)
    small = DataConfig(name="synthetic", options={"shape": [1, 4, 4]})
    assert load_data(small, min_size=8).input_shape == (1, 8, 8)  # the actual size counts, not the default
    with pytest.raises(DataError, match="resize"):
        load_data(DataConfig(options={"resize": "big"}))


def test_resize_images_keeps_constants_and_chunks_agree() -> None:
    x = torch.randn(10, 3, 8, 8)
    assert torch.allclose(resize_images(x, 20, chunk=3), resize_images(x, 20))
    flat = torch.full((2, 1, 8, 8), 0.7)
    assert torch.allclose(resize_images(flat, 32), torch.full((2, 1, 32, 32), 0.7))
    assert resize_images(x, 4).shape == (10, 3, 4, 4)


# ---------------------------------------------------------------------------------------------------
# Batching and augmentation.


def test_iterate_batches_covers_each_sample_once() -> None:
    x = torch.arange(10, dtype=torch.float32).view(10, 1, 1, 1)
    y = torch.arange(10)
    generator = torch.Generator().manual_seed(0)
    batches = list(iterate_batches(x, y, 3, shuffle=True, generator=generator))
    assert [len(b[1]) for b in batches] == [3, 3, 3, 1]
    order = torch.cat([b[1] for b in batches])
    assert sorted(order.tolist()) == list(range(10)) and order.tolist() != list(range(10))
    assert torch.equal(torch.cat([b[0] for b in batches]).flatten(), order.float())  # x and y stay paired
    second_epoch = torch.cat([b[1] for b in iterate_batches(x, y, 3, shuffle=True, generator=generator)])
    assert not torch.equal(order, second_epoch)
    replay = torch.Generator().manual_seed(0)
    assert torch.equal(torch.cat([b[1] for b in iterate_batches(x, y, 3, shuffle=True, generator=replay)]), order)


def test_shuffled_batches_are_the_same_gathered_once_or_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = torch.randn(10, 1, 2, 2), torch.arange(10)
    once = list(iterate_batches(x, y, 3, shuffle=True, generator=torch.Generator().manual_seed(0)))
    monkeypatch.setattr(batches, "GATHER_ONCE_BYTES", 0)
    per_batch = list(iterate_batches(x, y, 3, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert len(once) == len(per_batch) == 4
    for (xa, ya), (xb, yb) in zip(once, per_batch, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_iterate_batches_in_order_and_drop_last() -> None:
    x, y = torch.randn(7, 1, 2, 2), torch.arange(7)
    batches = list(iterate_batches(x, y, 3, shuffle=False, generator=None))
    assert [b[1].tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    assert batches[0][0].data_ptr() == x.data_ptr()  # a view, no copy
    assert len(list(iterate_batches(x, y, 3, shuffle=True, generator=None, drop_last=True))) == 2


def test_iterate_batches_applies_augment() -> None:
    x, y = torch.zeros(5, 1, 2, 2), torch.arange(5)
    batches = list(iterate_batches(x, y, 2, shuffle=False, generator=None, augment=lambda b: b + 1))
    assert all(torch.all(b[0] == 1) for b in batches)


def test_augment_batch_is_deterministic_and_keeps_shape() -> None:
    x = torch.randn(16, 3, 32, 32)
    before = x.clone()
    first = augment_batch(x, torch.Generator().manual_seed(5))
    second = augment_batch(x, torch.Generator().manual_seed(5))
    assert first.shape == x.shape and torch.equal(first, second)
    assert torch.equal(x, before)  # input untouched
    assert not torch.equal(first, augment_batch(x, torch.Generator().manual_seed(6)))
    assert torch.equal(augment_batch(x, None, flip=False, pad=0), x)


def test_augment_batch_flips_and_crops() -> None:
    x = torch.randn(64, 2, 6, 6)
    flipped = augment_batch(x, torch.Generator().manual_seed(0), pad=0)
    same = [torch.equal(a, b) for a, b in zip(flipped, x, strict=True)]
    mirrored = [torch.equal(a, b.flip(2)) for a, b in zip(flipped, x, strict=True)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True)) and 10 < sum(mirrored) < 54
    cropped = augment_batch(x, torch.Generator().manual_seed(0), flip=False, pad=2)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for out, source in zip(cropped, padded, strict=True):
        windows = source.unfold(1, 6, 1).unfold(2, 6, 1)  # (C, 5, 5, 6, 6): every 6x6 crop
        assert any(torch.equal(out, windows[:, i, j]) for i in range(5) for j in range(5))


def test_augmenter_uses_the_data_set_flags() -> None:
    splits = load_data(DataConfig())
    generator = torch.Generator().manual_seed(0)
    batch = splits.train_x[:32]
    out = splits.augmenter(generator)(batch)
    expected = augment_batch(batch, torch.Generator().manual_seed(0), flip=False, pad=1)
    assert torch.equal(out, expected)
