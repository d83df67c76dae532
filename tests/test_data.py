"""Tests of plasticity_lib.data: offline TFDS path, fast failure, fallback.

Every test points the TFDS data dir and the npz cache at temporary folders. The MNIST
tests prepare MNIST once per session from the raw files (``PLASTICITY_DATA_DIR``,
default ``../shared/datasets``) through TFDS (~20 s) and skip when they are absent.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from plasticity_lib import data

MNIST_FILES = [
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
]


def _raw_root() -> Path:
    return Path(os.environ.get(data.DATA_DIR_ENV) or data.resolve_data_dir())


def _point_at(monkeypatch, raw, tfds_dir, cache, offline=False):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(raw))
    monkeypatch.setenv(data.TFDS_DIR_ENV, str(tfds_dir))
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(cache))
    if offline:
        monkeypatch.setenv(data.OFFLINE_ENV, "1")
    else:
        monkeypatch.delenv(data.OFFLINE_ENV, raising=False)


@pytest.fixture
def empty_dirs(tmp_path, monkeypatch):
    dirs = [tmp_path / d for d in ("raw", "tfds", "cache")]
    for d in dirs:
        d.mkdir()
    _point_at(monkeypatch, *dirs)
    return dirs


@pytest.fixture(scope="session")
def mnist_dirs(tmp_path_factory):
    raw = _raw_root()
    if not all((raw / "mnist" / f).is_file() for f in MNIST_FILES):
        pytest.skip(f"MNIST raw files not found in {raw / 'mnist'} (set {data.DATA_DIR_ENV})")
    return raw, tmp_path_factory.mktemp("tfds"), tmp_path_factory.mktemp("cache")


@pytest.fixture
def mnist_env(mnist_dirs, monkeypatch):
    _point_at(monkeypatch, *mnist_dirs, offline=True)
    return mnist_dirs


def test_expected_files_are_tfds_registered_names():
    assert sorted(data.expected_files("mnist")) == MNIST_FILES
    assert data.expected_files("cifar10") == ["cifar-10-binary.tar.gz"]
    assert data.expected_files("cifar100") == ["cifar-100-binary.tar.gz"]
    assert len(data.expected_files("fashion_mnist")) == 4


def test_locations_follow_environment(empty_dirs):
    raw, tfds_dir, cache = empty_dirs
    assert data.resolve_data_dir() == raw
    loc = data.data_locations("cifar10")
    assert loc["raw"] == raw / "cifar10" and loc["tfds"] == tfds_dir
    assert loc["cache"].parent == cache


def test_mnist_through_tfds_manual_dir(mnist_env):
    raw, tfds_dir, cache = mnist_env
    tr = data.load_dataset("mnist")  # first call: TFDS prepares from the manual files
    assert tr.source == "mnist (tfds, manual files)"
    assert (tfds_dir / "mnist").is_dir() and data.data_locations("mnist")["cache"].is_file()
    assert tr.x.shape == (60000, 28, 28, 1) and tr.x.dtype == np.float32
    assert tr.y.shape == (60000,) and tr.y.dtype == np.int32
    assert tr.num_classes == 10 and tr.name == "mnist" and tr.split == "train"
    assert set(np.unique(tr.y)) == set(range(10))
    # Centred per pixel with the training mean; raw values were pixels / 255.
    assert np.abs(tr.x.mean(axis=0)).max() < 1e-5
    raw01 = tr.x + tr.pixel_mean
    assert raw01.min() > -1e-6 and raw01.max() < 1 + 1e-6 and raw01.max() > 0.99
    te = data.load_dataset("mnist", "test", flatten=True)
    assert te.x.shape == (10000, 784) and te.y.shape == (10000,)
    np.testing.assert_allclose(te.pixel_mean, tr.pixel_mean.reshape(-1))


def test_mnist_subsets_are_seeded(mnist_env):
    full = data.load_dataset("mnist", "test")
    a = data.load_dataset("mnist", "test", n=500, seed=1)
    b = data.load_dataset("mnist", "test", n=500, seed=1)
    c = data.load_dataset("mnist", "test", n=500, seed=2)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.y, c.y)
    idx = np.sort(np.random.default_rng(1).choice(10000, size=500, replace=False))
    np.testing.assert_array_equal(a.x, full.x[idx])
    np.testing.assert_array_equal(a.y, full.y[idx])
    with pytest.raises(ValueError, match="n=10001"):
        data.load_dataset("mnist", "test", n=10001)


def test_mnist_uncentred(mnist_env):
    """center=False: raw pixels / 255 in [0, 1]; the centred load minus the training
    mean; the record says so."""
    c = data.load_dataset("mnist", "test", n=300, seed=4)
    u = data.load_dataset("mnist", "test", n=300, seed=4, center=False)
    assert u.centered is False and c.centered is True
    assert u.source == c.source + ", not centred" and "not centred" in repr(u)
    assert u.x.shape == c.x.shape and u.x.dtype == np.float32
    assert u.x.min() == 0.0 and u.x.max() == 1.0  # 0 and 255 pixels, exactly
    np.testing.assert_array_equal(np.round(u.x * 255), u.x * 255)  # multiples of 1/255
    np.testing.assert_array_equal(u.pixel_mean, np.zeros((28, 28, 1), np.float32))
    np.testing.assert_allclose(u.x, c.x + c.pixel_mean, atol=1e-6)
    np.testing.assert_array_equal(u.y, c.y)
    f = data.load_dataset("mnist", "test", n=300, seed=4, center=False, flatten=True)
    np.testing.assert_array_equal(f.x, u.x.reshape(300, -1))
    assert f.pixel_mean.shape == (784,)


def test_cached_load_does_not_import_tensorflow(mnist_env):
    data.load_dataset("mnist", "test", n=10)  # make sure the cache exists
    code = (
        "import sys, time; t = time.time()\n"
        "from plasticity_lib.data import load_dataset\n"
        "d = load_dataset('mnist', 'test', n=100, flatten=True)\n"
        "assert d.x.shape == (100, 784), d.x.shape\n"
        "assert 'tensorflow' not in sys.modules and 'tensorflow_datasets' not in sys.modules\n"
        "print(time.time() - t)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy()
    )
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.split()[-1]) < 10.0


def test_missing_files_fail_fast_offline(empty_dirs, monkeypatch):
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    start = time.monotonic()
    with pytest.raises(data.DataUnavailableError) as err:
        data.load_dataset("fashion_mnist")
    assert time.monotonic() - start < 15.0
    msg = str(err.value)
    assert "fashion_mnist" in msg and data.DATA_DIR_ENV in msg
    for fname in data.expected_files("fashion_mnist"):
        assert fname in msg
    assert isinstance(err.value, RuntimeError)


def test_missing_files_fail_fast_without_network(empty_dirs, monkeypatch):
    """The real path: a reachability probe (here to an unresolvable host) and no
    TFDS download attempt, well within the 15 s budget."""
    names = data.expected_files("cifar10")
    monkeypatch.setattr(
        data,
        "_url_infos",
        lambda name: [(f"http://plasticity-lib-test.invalid/{f}", f) for f in names],
    )
    start = time.monotonic()
    with pytest.raises(data.DataUnavailableError, match=data.DATA_DIR_ENV) as err:
        data.load_dataset("cifar10")
    assert time.monotonic() - start < 15.0
    assert "cifar-10-binary.tar.gz" in str(err.value) and "did not answer" in str(err.value)
    assert not (empty_dirs[1] / "downloads").exists()  # TFDS never started downloading


def test_reachability_probe_times_out():
    start = time.monotonic()
    assert data._url_reachable("http://10.255.255.1/", timeout=1.0) is False
    assert time.monotonic() - start < 3.0


def test_checksum_mismatch_is_reported(empty_dirs):
    raw = empty_dirs[0] / "mnist"
    raw.mkdir()
    for fname in MNIST_FILES:
        (raw / fname).write_bytes(b"not mnist")
    with pytest.raises(data.DataUnavailableError, match="checksum"):
        data.load_dataset("mnist")


def test_checksum_failure_is_never_hidden_by_the_fallback(empty_dirs):
    """Issue 21 defect 5: a corrupted MNIST file at the smoke profile (allow_fallback)
    fell back to the digits, the warning cut before the checksum error."""
    raw = empty_dirs[0] / "mnist"
    raw.mkdir()
    for fname in MNIST_FILES:
        (raw / fname).write_bytes(b"not mnist")
    with pytest.raises(data.DataCorruptedError) as err:
        data.load_dataset("mnist", allow_fallback=True)
    msg = str(err.value)
    assert isinstance(err.value, data.DataUnavailableError)
    assert "checksum failure" in msg and "allow_fallback=True does not apply" in msg
    bad = raw / "train-images-idx3-ubyte.gz"
    want = dict(data._registered_checksums("mnist"))["train-images-idx3-ubyte.gz"]
    assert f"{bad}: sha256 {data._file_sha256(bad)}, expected {want}" in msg


def test_bad_cache_is_named_and_falls_back_when_allowed(empty_dirs, monkeypatch):
    """A corrupted npz cache gave BadZipFile without its path, even with allow_fallback."""
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    path = data.data_locations("mnist")["cache"]
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(UserWarning, match=f"npz cache of 'mnist' is bad: cannot read {path}"):
        ds = data.load_dataset("mnist", n=10, allow_fallback=True)
    assert ds.source == "digits (scikit-learn fallback for mnist)" and not path.exists()
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(UserWarning, match=f"rm {path.parent}/mnist-"):
        with pytest.raises(data.DataUnavailableError, match="the npz cache was bad"):
            data.load_dataset("mnist", n=10)


@pytest.mark.parametrize(
    "name, shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3)), ("cifar100", (32, 32, 3))]
)
def test_fallback_digits(empty_dirs, monkeypatch, name, shape):
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    tr = data.load_dataset(name, allow_fallback=True)
    assert tr.source == f"digits (scikit-learn fallback for {name})" and tr.name == name
    assert tr.x.shape == (1437, *shape) and tr.x.dtype == np.float32 and tr.y.dtype == np.int32
    assert tr.num_classes == 10 and set(np.unique(tr.y)) == set(range(10))
    assert np.abs(tr.x.mean(axis=0)).max() < 1e-5
    te = data.load_dataset(name, "test", n=100, seed=3, flatten=True, allow_fallback=True)
    assert te.x.shape == (100, int(np.prod(shape)))
    if name == "mnist":  # 8x8 -> 3x nearest-neighbour 24x24, zero border of 2 pixels
        img = tr.x[0, ..., 0] + tr.pixel_mean[..., 0]
        np.testing.assert_allclose(img[:2], 0.0, atol=1e-6)
        np.testing.assert_allclose(img[2:5, 2:5], img[2, 2], atol=1e-6)


def test_fallback_uncentred_matches_independent_digits(empty_dirs, monkeypatch):
    """center=False on the digits fallback equals round(v * 255 / 16) / 255 of
    scikit-learn's digits, rebuilt here independently (3x upsampling, 2-pixel border)."""
    from sklearn.datasets import load_digits

    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    u = data.load_dataset("mnist", "test", n=50, seed=2, allow_fallback=True, center=False)
    c = data.load_dataset("mnist", "test", n=50, seed=2, allow_fallback=True)
    assert not u.centered and u.source == "digits (scikit-learn fallback for mnist), not centred"
    digits = load_digits()
    perm = np.random.default_rng(0).permutation(1797)
    test_idx = perm[1437:][np.sort(np.random.default_rng(2).choice(360, size=50, replace=False))]
    img = np.round(digits.images[test_idx] * 255.0 / 16.0) / 255.0
    img = np.kron(img, np.ones((1, 3, 3)))  # nearest neighbour 8x8 -> 24x24
    img = np.pad(img, ((0, 0), (2, 2), (2, 2)))[..., None]
    np.testing.assert_allclose(u.x, img, atol=1e-7)
    assert u.x.min() >= 0.0 and u.x.max() <= 1.0
    np.testing.assert_allclose(u.x - c.pixel_mean, c.x, atol=1e-6)  # default still centred
    np.testing.assert_array_equal(u.y, digits.target[test_idx])


def test_cifar10_when_available(tmp_path, monkeypatch):
    raw = _raw_root()
    if not (raw / "cifar10" / "cifar-10-binary.tar.gz").is_file():
        pytest.skip(f"CIFAR-10 not available: no {raw / 'cifar10' / 'cifar-10-binary.tar.gz'}")
    _point_at(monkeypatch, raw, tmp_path / "tfds", tmp_path / "cache", offline=True)
    ds = data.load_dataset("cifar10", "test")
    assert ds.x.shape == (10000, 32, 32, 3) and ds.num_classes == 10


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"name": "svhn"}, "name"),
        ({"name": "mnist", "split": "validation"}, "split"),
        ({"name": "mnist", "n": 0}, "n="),
        ({"name": "mnist", "n": 2.5}, "n="),
        ({"name": "mnist", "center": "no"}, "center="),
        ({"name": "mnist", "center": 0}, "center="),
        ({"name": "mnist", "n": 5, "seed": -1}, "seed=-1"),
        ({"name": "mnist", "seed": 1.5}, "seed=1.5"),
        ({"name": "mnist", "seed": True}, "seed=True"),
    ],
)
def test_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        data.load_dataset(**kwargs)


# ------------------------------------------- issue 21 defect 6: one dataset, its own files


def _decode_idx_gz(path: Path) -> np.ndarray:
    """Independent IDX reader (not the library's): gzip, 4-byte magic 0,0,8,ndim, the
    big-endian int32 sizes, then uint8 data."""
    import gzip

    buf = gzip.decompress(path.read_bytes())
    assert buf[:3] == b"\x00\x00\x08"
    ndim = buf[3]
    dims = [int.from_bytes(buf[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(buf[4 + 4 * ndim :], np.uint8).reshape(dims)


def _sorted_pairs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(image, label) pairs of a split as sorted byte rows (TFDS reorders examples)."""
    rows = np.concatenate([x.reshape(len(x), -1), y.astype(np.uint8).reshape(-1, 1)], 1)
    rows = np.ascontiguousarray(rows)
    return np.sort(rows.view(np.dtype((np.void, rows.shape[1]))).ravel())


def _matches_raw(name: str, ds: "data.Dataset", split_prefix: str) -> bool:
    raw = _raw_root() / name
    x = _decode_idx_gz(raw / f"{split_prefix}-images-idx3-ubyte.gz")
    y = _decode_idx_gz(raw / f"{split_prefix}-labels-idx1-ubyte.gz")
    u8 = np.round((ds.x + ds.pixel_mean) * 255).astype(np.uint8)[..., 0]
    assert u8.shape == x.shape and ds.y.shape == y.shape
    return bool(np.array_equal(_sorted_pairs(u8, ds.y), _sorted_pairs(x, y)))


@pytest.fixture(scope="module")
def two_datasets(mnist_dirs):
    """MNIST, then Fashion-MNIST, prepared in ONE fresh TFDS data dir (as on a machine
    where MNIST was prepared first): the order that gave MNIST's arrays to both. The
    session's MNIST data dir is reused (MNIST is prepared there first, once)."""
    raw, tfds_dir, cache = mnist_dirs
    if not all((raw / "fashion_mnist" / f).is_file() for f in MNIST_FILES):
        pytest.skip(f"Fashion-MNIST raw files not found in {raw / 'fashion_mnist'}")
    mp = pytest.MonkeyPatch()
    _point_at(mp, raw, tfds_dir, cache, offline=True)
    try:
        out = {
            (name, split): data.load_dataset(name, split)
            for name in ("mnist", "fashion_mnist")
            for split in ("train", "test")
        }
    finally:
        mp.undo()
    return raw, tfds_dir, cache, out


@pytest.mark.slow  # prepares Fashion-MNIST with TFDS (and MNIST, if no other test did)
def test_fashion_mnist_is_not_mnist(two_datasets):
    _, tfds_dir, _, ds = two_datasets
    for split, prefix in (("train", "train"), ("test", "t10k")):
        m, f = ds[("mnist", split)], ds[("fashion_mnist", split)]
        assert f.source == "fashion_mnist (tfds, manual files)"
        assert not np.array_equal(m.x, f.x) and not np.array_equal(m.pixel_mean, f.pixel_mean)
        assert _matches_raw("mnist", m, prefix)
        assert _matches_raw("fashion_mnist", f, prefix)
    # each dataset extracted into its own folder
    assert (tfds_dir / "downloads" / "mnist").is_dir()
    assert (tfds_dir / "downloads" / "fashion_mnist").is_dir()


def test_cache_is_keyed_by_source_files_and_digest_checked(two_datasets, tmp_path, monkeypatch):
    raw, tfds_dir, cache, _ = two_datasets
    _point_at(monkeypatch, raw, tfds_dir, cache, offline=True)
    path = data.data_locations("fashion_mnist")["cache"]
    assert path.is_file() and data.source_key("fashion_mnist") in path.name
    assert data.source_key("mnist") != data.source_key("fashion_mnist")
    # an explicitly set PLASTICITY_DATA_DIR with other files is never shadowed by the cache
    other = tmp_path / "other"
    (other / "mnist").mkdir(parents=True)
    for fname in MNIST_FILES:
        (other / "mnist" / fname).write_bytes(b"not mnist")
    _point_at(monkeypatch, other, tmp_path / "tfds_other", cache, offline=True)
    assert data.data_locations("mnist")["cache"] != path.with_name(path.name)
    with pytest.raises(data.DataUnavailableError, match="checksum"):
        data.load_dataset("mnist")
    # a corrupted cache is reported with its path and rebuilt (from the TFDS copy)
    _point_at(monkeypatch, raw, tfds_dir, cache, offline=True)
    good = data.load_dataset("fashion_mnist", "test")
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(UserWarning, match=str(path.name)):
        again = data.load_dataset("fashion_mnist", "test")
    np.testing.assert_array_equal(again.x, good.x)
    assert data._read_cache(path)["digest"].size == 1  # a valid cache again


def test_a_tfds_copy_from_the_wrong_files_is_rebuilt(two_datasets, tmp_path, monkeypatch):
    """A TFDS copy of fashion_mnist that holds MNIST's arrays (what the shared
    extraction folder produced) is detected against the raw files, deleted and
    prepared again."""
    raw, tfds_dir, _, ds = two_datasets
    _point_at(monkeypatch, raw, tfds_dir, tmp_path / "cache", offline=True)
    real = data._tfds_arrays
    stale = {"source": np.array("fashion_mnist (tfds, prepared data dir)")}
    for split in ("train", "test"):  # MNIST's arrays, as the stale TFDS copy holds them
        m = ds[("mnist", split)]
        stale[f"x_{split}"] = np.round((m.x + m.pixel_mean) * 255).astype(np.uint8)
        stale[f"y_{split}"] = np.asarray(m.y, np.int32)
    calls = []

    def stale_then_real(name):
        calls.append(name)
        return stale if len(calls) == 1 else real(name)

    deleted = []  # record the deletions instead of re-preparing (saves a TFDS run)
    monkeypatch.setattr(data.shutil, "rmtree", lambda p, **kw: deleted.append(Path(p)))
    monkeypatch.setattr(data, "_tfds_arrays", stale_then_real)
    with pytest.warns(UserWarning, match="does not match the raw files"):
        f = data.load_dataset("fashion_mnist", "test")
    assert calls == ["fashion_mnist", "fashion_mnist"]
    assert deleted == [tfds_dir / "fashion_mnist", tfds_dir / "downloads" / "fashion_mnist"]
    assert _matches_raw("fashion_mnist", f, "t10k")
    np.testing.assert_array_equal(f.y, ds[("fashion_mnist", "test")].y)


def test_concurrent_first_loads_prepare_the_dataset_once(empty_dirs, monkeypatch):
    """Two loads racing on a fresh machine (chapters executed side by side) prepare the
    dataset once: the second waits for the preparation lock, then reads the npz cache the
    first wrote (without the lock both ran TFDS and the second's rename failed)."""
    import threading

    calls = []
    rng = np.random.default_rng(0)
    fake = {
        "source": np.array("mnist (fake)"),
        "x_train": rng.integers(0, 256, (6, 28, 28, 1), dtype=np.uint8),
        "y_train": np.arange(6, dtype=np.int32),
        "x_test": rng.integers(0, 256, (4, 28, 28, 1), dtype=np.uint8),
        "y_test": np.arange(4, dtype=np.int32),
    }

    def slow_prepare(name):
        calls.append(name)
        time.sleep(0.5)  # long enough for the other thread to reach the lock
        return {k: v.copy() for k, v in fake.items()}

    monkeypatch.setattr(data, "_prepare_with_tfds", slow_prepare)
    monkeypatch.setattr(data, "source_key", lambda name: "fakekey")
    out = [None, None]

    def load(i):
        out[i] = data._load_raw("mnist")

    threads = [threading.Thread(target=load, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["mnist"]
    for o in out:
        np.testing.assert_array_equal(o["x_train"], fake["x_train"])
        np.testing.assert_array_equal(o["y_test"], fake["y_test"])


def test_without_the_lock_both_loads_prepare(empty_dirs, monkeypatch):
    """Negative control for the test above: with the lock replaced by a no-op, both
    racing loads run the preparation."""
    import contextlib
    import threading

    calls = []

    def slow_prepare(name):
        calls.append(name)
        time.sleep(0.5)
        x = np.zeros((2, 28, 28, 1), np.uint8)
        y = np.zeros(2, np.int32)
        return {"source": np.array("fake"), "x_train": x, "y_train": y, "x_test": x, "y_test": y}

    monkeypatch.setattr(data, "_prepare_with_tfds", slow_prepare)
    monkeypatch.setattr(data, "source_key", lambda name: "fakekey")
    monkeypatch.setattr(data, "_preparation_lock", lambda name: contextlib.nullcontext())
    threads = [threading.Thread(target=data._load_raw, args=("mnist",)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["mnist", "mnist"]
