"""Image classification datasets, offline first, through tensorflow-datasets.

The paper's continual supervised learning problems (Lyle et al. 2024, App. B.2) and
its contextual bandit (App. B.3) are built on MNIST, CIFAR-10 and CIFAR-100; this
module also serves Fashion-MNIST. ``load_dataset`` returns a small :class:`Dataset`
of numpy arrays.

How data is found (in this order; see :func:`data_locations`):

1. **npz cache** ``$PLASTICITY_CACHE_DIR/<name>-v2-<key>.npz`` (default
   ``~/.cache/plasticity_lib``): the raw uint8 images, int32 labels and the
   per-pixel training mean, written after the first successful preparation. ``<key>``
   is a digest of the SHA-256 checksums of the raw files in
   ``$PLASTICITY_DATA_DIR/<name>/`` (of the checksums TFDS registers for the dataset
   when those files are absent), so a cache built from other files can never shadow an
   explicitly set ``PLASTICITY_DATA_DIR``. The cache also stores a SHA-256 digest of its
   arrays, verified when it is read; a cache that cannot be read or fails the check is
   reported (its path) and rebuilt. A cache hit imports neither TensorFlow nor TFDS.
2. **TFDS data dir** ``$PLASTICITY_TFDS_DIR`` (default ``~/tensorflow_datasets``): a
   dataset TFDS already prepared there (``builder.is_prepared()``) is read as is.
3. **Raw files** in ``$PLASTICITY_DATA_DIR/<name>/``: the official distribution files,
   under the exact file names TFDS registers for the dataset (e.g. the four
   ``*-ubyte.gz`` files for MNIST; ``cifar-10-binary.tar.gz`` for CIFAR-10, *not* the
   python pickle archive). They go through TFDS's own manual-download mechanism:
   ``tfds.download.DownloadConfig(manual_dir=<that folder>)``. TFDS's
   ``DownloadManager._download_or_get_cache`` looks each registered URL's file name
   up in ``manual_dir`` (``_get_manually_downloaded_path``), computes its size and
   SHA-256 and validates them against the checksums TFDS ships in
   ``tensorflow_datasets/url_checksums/<name>.txt`` (a mismatch raises
   ``NonMatchingChecksumError``, turned into :class:`DataUnavailableError` here),
   then extracts and prepares the dataset into the TFDS data dir. Each dataset gets
   its own download/extraction folder ``<TFDS data dir>/downloads/<name>/``: TFDS keys
   its extraction cache by file name for manual files, and MNIST and Fashion-MNIST
   share their four file names, so with one shared folder the second dataset
   prepared silently got the first one's arrays (issue 21, defect 6).
   For the IDX datasets (MNIST, Fashion-MNIST) the arrays TFDS returns are checked
   against the raw files, decoded independently with numpy (an order-independent
   digest of the (image, label) pairs of each split); a TFDS copy that does not match
   (e.g. one prepared from the wrong files) is deleted and prepared again.
4. **Network download** by TFDS, only when step 3's files are missing *and* an HTTP
   HEAD request to the dataset's first registered URL succeeds within ~3 s (set
   ``PLASTICITY_OFFLINE=1`` to skip the network entirely). The download runs with
   TFDS's HTTP retry count cut from 10 to 2 (``downloader.MAX_RETRIES``), so a
   failing download never sits in TFDS's ~205 s retry back-off.
5. Otherwise :class:`DataUnavailableError` at once, naming the dataset, the exact
   files expected and ``PLASTICITY_DATA_DIR`` -- or, with ``allow_fallback=True``,
   scikit-learn's bundled 8x8 digits resized to the requested shape (smoke runs).
   Raw files that are present but wrong (checksum mismatch, undecodable) raise
   :class:`DataCorruptedError`, naming each bad file with its SHA-256 and the expected
   one, even with ``allow_fallback=True``: the fallback never hides a checksum error.

Preprocessing: pixels are scaled to [0, 1] and then **centred per feature**: the
per-pixel (and per-channel) mean of the full *training* split is subtracted from
every split, so training inputs have zero mean at every pixel. The paper notes that
input centring matters for MLPs; the subtracted mean is kept as
``Dataset.pixel_mean`` (add it back to display images). ``load_dataset(...,
center=False)`` skips the centring and returns the raw ``pixels / 255`` in [0, 1]
(non-negative inputs, e.g. for App. E.8's Fig. 24 toy); ``pixel_mean`` is then zero,
``Dataset.centered`` is False and ``Dataset.source`` ends in ``", not centred"``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path

import numpy as np

__all__ = [
    "DATASETS",
    "DataCorruptedError",
    "DataUnavailableError",
    "Dataset",
    "data_locations",
    "decode_idx",
    "expected_files",
    "load_dataset",
    "pairs_digest",
    "raw_file_digests",
    "resolve_cache_dir",
    "resolve_data_dir",
    "resolve_tfds_dir",
    "source_key",
]

_log = logging.getLogger(__name__)

#: Dataset name -> (image shape, number of classes).
DATASETS: dict[str, tuple[tuple[int, int, int], int]] = {
    "mnist": ((28, 28, 1), 10),
    "fashion_mnist": ((28, 28, 1), 10),
    "cifar10": ((32, 32, 3), 10),
    "cifar100": ((32, 32, 3), 100),
}
SPLITS = ("train", "test")

DATA_DIR_ENV = "PLASTICITY_DATA_DIR"
TFDS_DIR_ENV = "PLASTICITY_TFDS_DIR"
CACHE_DIR_ENV = "PLASTICITY_CACHE_DIR"
OFFLINE_ENV = "PLASTICITY_OFFLINE"

_CACHE_VERSION = "v2"  # bump when the cached arrays change meaning (v1: not keyed)
_REACH_TIMEOUT_S = 3.0
_DOWNLOAD_RETRIES = 2  # TFDS default is 10 with exponential back-off (~205 s)


class DataUnavailableError(RuntimeError):
    """No copy of a dataset could be found locally or downloaded."""


class DataCorruptedError(DataUnavailableError):
    """The raw files of a dataset are present but wrong (a checksum mismatch, a file
    that cannot be decoded, arrays that do not match the files). Never hidden by
    ``allow_fallback``: the fallback stands in for *missing* data only."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """One split of an image classification dataset (numpy arrays).

    Attributes:
      x: float32 ``(N, H, W, C)`` -- ``(N, 28, 28, 1)`` for (Fashion-)MNIST,
        ``(N, 32, 32, 3)`` for CIFAR -- or ``(N, H*W*C)`` when loaded with
        ``flatten=True``. Values are ``pixels / 255 - pixel_mean``: centred per
        feature by default, in [0, 1] when loaded with ``center=False``.
      y: int32 ``(N,)`` class labels in ``[0, num_classes)``.
      num_classes: number of classes of the data actually returned (10 for the
        digits fallback even when ``cifar100`` was asked).
      name: the dataset that was asked for.
      source: what really ran, e.g. ``"mnist (tfds, manual files)"`` or
        ``"digits (scikit-learn fallback for mnist)"``; with ``center=False`` it
        ends in ``", not centred"`` (so a claim record's ``dataset`` says so).
      split: ``"train"`` or ``"test"``.
      pixel_mean: float32, same trailing shape as one ``x`` row: the per-feature
        mean of the full training split (in [0, 1] units) that was subtracted; all
        zeros when ``centered`` is False (nothing was subtracted), so
        ``x + pixel_mean`` is always ``pixels / 255``.
      centered: whether ``x`` was centred (the ``center`` argument of
        :func:`load_dataset`).
    """

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    name: str
    source: str
    split: str
    pixel_mean: np.ndarray
    centered: bool = True

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, split={self.split!r}, x={self.x.shape} "
            f"{self.x.dtype}, y={self.y.shape} {self.y.dtype}, "
            f"num_classes={self.num_classes}, centered={self.centered}, "
            f"source={self.source!r})"
        )


# --------------------------------------------------------------------------- paths


def _repo_shared_datasets() -> Path:
    # src/plasticity_lib/data.py -> repository root -> sibling "shared/datasets".
    return Path(__file__).resolve().parents[3] / "shared" / "datasets"


def resolve_data_dir() -> Path:
    """Folder holding raw dataset files, one sub-folder per dataset.

    ``$PLASTICITY_DATA_DIR`` when set; otherwise the project's ``shared/datasets``
    folder next to the repository if it exists; otherwise ``~/plasticity_data``.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    shared = _repo_shared_datasets()
    return shared if shared.is_dir() else Path("~/plasticity_data").expanduser()


def resolve_tfds_dir() -> Path:
    """TFDS data dir: ``$PLASTICITY_TFDS_DIR``, default ``~/tensorflow_datasets``."""
    return Path(os.environ.get(TFDS_DIR_ENV) or "~/tensorflow_datasets").expanduser()


def resolve_cache_dir() -> Path:
    """npz cache dir: ``$PLASTICITY_CACHE_DIR``, default ``~/.cache/plasticity_lib``."""
    return Path(os.environ.get(CACHE_DIR_ENV) or "~/.cache/plasticity_lib").expanduser()


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"name={name!r} is not a known dataset; allowed: {sorted(DATASETS)}")


def _url_infos(name: str) -> list[tuple[str, str]]:
    """``[(url, file name), ...]`` that the installed TFDS registers for ``name``.

    Read from ``tensorflow_datasets/url_checksums/<name>.txt`` as text, without
    importing TFDS (``find_spec`` only locates the package).
    """
    spec = importlib.util.find_spec("tensorflow_datasets")
    if spec is None or not spec.submodule_search_locations:
        return []
    path = Path(list(spec.submodule_search_locations)[0]) / "url_checksums" / f"{name}.txt"
    infos = []
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and not line.startswith("#"):
            url = parts[0]
            fname = parts[3] if len(parts) > 3 else url.rsplit("/", 1)[-1]
            infos.append((url, fname))
    return infos


def expected_files(name: str) -> list[str]:
    """File names TFDS expects in ``$PLASTICITY_DATA_DIR/<name>/`` (its manual dir)."""
    _check_name(name)
    return [fname for _, fname in _url_infos(name)]


def _registered_checksums(name: str) -> list[tuple[str, str]]:
    """``[(file name, sha256), ...]`` TFDS registers for ``name`` (read as text)."""
    spec = importlib.util.find_spec("tensorflow_datasets")
    if spec is None or not spec.submodule_search_locations:
        return []
    path = Path(list(spec.submodule_search_locations)[0]) / "url_checksums" / f"{name}.txt"
    out = []
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and not line.startswith("#"):
            fname = parts[3] if len(parts) > 3 else parts[0].rsplit("/", 1)[-1]
            out.append((fname, parts[2]))
    return out


_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    """SHA-256 of a file, memoised per process by (path, size, mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_MEMO:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        _SHA_MEMO[key] = h.hexdigest()
    return _SHA_MEMO[key]


def source_key(name: str) -> str:
    """16 hex digits identifying the source files of ``name``: a digest of the SHA-256
    of every expected file in ``$PLASTICITY_DATA_DIR/<name>/`` when all are present,
    else of the checksums TFDS registers for the dataset (what a download or an
    already prepared TFDS copy is verified against). Keys the npz cache."""
    _check_name(name)
    raw = resolve_data_dir() / name
    files = expected_files(name)
    if files and all((raw / f).is_file() for f in files):
        pairs = [(f, _file_sha256(raw / f)) for f in sorted(files)]
    else:
        pairs = sorted(_registered_checksums(name))
    h = hashlib.sha256(name.encode())
    for fname, digest in pairs:
        h.update(f"{fname}:{digest};".encode())
    return h.hexdigest()[:16]


def data_locations(name: str) -> dict[str, Path]:
    """Where ``load_dataset(name)`` looks: ``cache`` (npz, keyed by
    :func:`source_key`), ``tfds`` (data dir), ``raw`` (manual files folder) and
    ``downloads`` (this dataset's own TFDS download/extraction folder)."""
    _check_name(name)
    tfds_dir = resolve_tfds_dir()
    return {
        "cache": resolve_cache_dir() / f"{name}-{_CACHE_VERSION}-{source_key(name)}.npz",
        "tfds": tfds_dir,
        "raw": resolve_data_dir() / name,
        "downloads": tfds_dir / "downloads" / name,
    }


# ------------------------------------------------------- digests and raw-file checks

#: Datasets whose raw files this module decodes itself (gzip IDX), to check TFDS's
#: arrays against: split -> (images file, labels file).
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IDX_DATASETS = ("mnist", "fashion_mnist")


def decode_idx(path: str | os.PathLike) -> np.ndarray:
    """Decode a (gzip-compressed) IDX file: magic ``0x00 0x00 0x08 ndim`` (uint8 data),
    then ``ndim`` big-endian int32 sizes, then the data. Returns a uint8 array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        buf = f.read()
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0 or buf[2] != 0x08:
        raise ValueError(f"{path}: not a uint8 IDX file (magic {buf[:4]!r})")
    ndim = buf[3]
    dims = np.frombuffer(buf, ">i4", count=ndim, offset=4).astype(np.int64)
    data = np.frombuffer(buf, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: IDX header says {tuple(dims)} but holds {data.size} bytes")
    return data.reshape(tuple(int(d) for d in dims))


def pairs_digest(x: np.ndarray, y: np.ndarray) -> str:
    """Order-independent SHA-256 of the (image, label) pairs of one split: each example
    becomes the bytes of its uint8 image followed by its label as little-endian int32;
    the examples are sorted bytewise and hashed. Equal for two copies of a split that
    hold the same examples in any order (TFDS shuffles the files' order)."""
    x = np.asarray(x, dtype=np.uint8).reshape(len(x), -1)
    y = np.asarray(y).astype("<i4").view(np.uint8).reshape(len(x), 4)
    rows = np.ascontiguousarray(np.concatenate([x, y], axis=1))
    rows = np.sort(rows.view(np.dtype((np.void, rows.shape[1]))).ravel())
    return hashlib.sha256(rows.tobytes()).hexdigest()


def _arrays_digest(raw: dict[str, np.ndarray]) -> str:
    """SHA-256 of the cached arrays, in order (dtype, shape and bytes of each)."""
    h = hashlib.sha256()
    for key in ("x_train", "y_train", "x_test", "y_test", "pixel_mean"):
        a = np.ascontiguousarray(raw[key])
        h.update(f"{key}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def raw_file_digests(name: str) -> dict[str, str] | None:
    """``{split: pairs_digest}`` of the raw IDX files of ``name`` decoded here, or None
    when ``name`` is not an IDX dataset or its files are not all present."""
    raw = resolve_data_dir() / name
    if name not in IDX_DATASETS or not all(
        (raw / f).is_file() for pair in IDX_FILES.values() for f in pair
    ):
        return None
    out = {}
    for split, (images, labels) in IDX_FILES.items():
        out[split] = pairs_digest(decode_idx(raw / images), decode_idx(raw / labels))
    return out


# ----------------------------------------------------------------- TFDS preparation


def _url_reachable(url: str, timeout: float = _REACH_TIMEOUT_S) -> bool:
    """Whether an HTTP HEAD request to ``url`` succeeds within ``timeout`` seconds.

    Runs in a daemon thread so that a slow DNS lookup cannot exceed the timeout.
    Proxy variables (``https_proxy`` ...) are honoured by urllib.
    """
    result: list[bool] = []

    def probe() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout)
            result.append(True)
        except urllib.error.HTTPError as err:
            # 405: HEAD not allowed, the file may still download. Any other error
            # status (e.g. a 404 from an intercepting gateway) means no usable copy.
            result.append(err.code == 405)
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _unavailable_message(name: str, reason: str, corrupted: bool = False) -> str:
    loc = data_locations(name)
    files = expected_files(name)
    raw = loc["raw"]
    missing = [f for f in files if not (raw / f).is_file()]
    return (
        f"Dataset {name!r} is not available: {reason}\n"
        f"  Put the official files, exactly as TFDS registers them (checksums are "
        f"verified), in {raw}/:\n"
        + "".join(f"    {f}{'' if f in missing else '  (present)'}\n" for f in files)
        + f"  or set {DATA_DIR_ENV} to a folder holding a '{name}/' sub-folder with "
        f"them (now {DATA_DIR_ENV}={os.environ.get(DATA_DIR_ENV, '<unset>')}).\n"
        f"  Also looked in: npz cache {loc['cache']} ({CACHE_DIR_ENV}), TFDS data dir "
        f"{loc['tfds']} ({TFDS_DIR_ENV}).\n"
        + (
            f"  allow_fallback=True does not apply: the files in {raw}/ are present but "
            f"wrong. Replace them with the official files (or remove that folder to let a "
            f"smoke run fall back to scikit-learn's digits)."
            if corrupted
            else "  For smoke runs, load_dataset(..., allow_fallback=True) uses scikit-learn's "
            "digits instead."
        )
    )


@contextlib.contextmanager
def _few_download_retries():
    """Temporarily cut TFDS's HTTP retry count (read at call time by the downloader)."""
    from tensorflow_datasets.core.download import downloader

    old = downloader.MAX_RETRIES
    downloader.MAX_RETRIES = _DOWNLOAD_RETRIES
    try:
        yield
    finally:
        downloader.MAX_RETRIES = old


def _prepare_with_tfds(name: str) -> dict[str, np.ndarray]:
    """Read ``name`` with TFDS (:func:`_tfds_arrays`) and, for the IDX datasets whose
    raw files are present, check the arrays against the raw files decoded here
    (:func:`raw_file_digests`). A TFDS copy that does not match (prepared from other
    files, e.g. MNIST's under Fashion-MNIST's name) is deleted, with this dataset's
    download/extraction folder, and prepared again from the raw files; if it still does
    not match, :class:`DataUnavailableError`.

    Returns the dict of :func:`_tfds_arrays` plus ``pairs_train``/``pairs_test`` (the
    :func:`pairs_digest` of each split) when the check ran.
    """
    out = _tfds_arrays(name)  # first: TFDS verifies the raw files' checksums
    try:
        expected = raw_file_digests(name)
    except (OSError, ValueError, EOFError) as err:
        raise DataCorruptedError(
            _unavailable_message(name, f"a raw file cannot be decoded ({err}).", corrupted=True)
        ) from err
    if expected is None:
        return out

    def digests(arrays):
        return {sp: pairs_digest(arrays[f"x_{sp}"], arrays[f"y_{sp}"]) for sp in SPLITS}

    got = digests(out)
    if got != expected:
        loc = data_locations(name)
        warnings.warn(
            f"plasticity_lib.data: the TFDS copy of {name!r} in {loc['tfds'] / name} does not "
            f"match the raw files in {loc['raw']} (it was prepared from other files); "
            "deleting it and preparing it again from the raw files.",
            stacklevel=3,
        )
        shutil.rmtree(loc["tfds"] / name, ignore_errors=True)
        shutil.rmtree(loc["downloads"], ignore_errors=True)
        out = _tfds_arrays(name)
        got = digests(out)
        if got != expected:
            raise DataCorruptedError(
                _unavailable_message(
                    name,
                    "the arrays TFDS prepared do not match the raw IDX files decoded "
                    f"independently (even after preparing again into {loc['tfds']}).",
                    corrupted=True,
                )
            )
    for sp in SPLITS:
        out[f"pairs_{sp}"] = np.array(got[sp])
    return out


def _tfds_arrays(name: str) -> dict[str, np.ndarray]:
    """Read ``name`` with TFDS, preparing it first (manual files or download) into the
    TFDS data dir, with this dataset's own download/extraction folder.

    Returns a dict with uint8 ``x_train``/``x_test``, int32 ``y_train``/``y_test``
    and ``source``. Raises :class:`DataUnavailableError` quickly when no copy exists;
    that decision is taken before TFDS is even imported unless the TFDS data dir
    already has a folder for the dataset.
    """
    loc = data_locations(name)
    infos = _url_infos(name)
    raw = loc["raw"]
    if (loc["tfds"] / name).is_dir() and _tfds_builder(name).is_prepared():
        how = "prepared data dir"
    elif infos and all((raw / fname).is_file() for _, fname in infos):
        how = "manual files"
    elif os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        raise DataUnavailableError(
            _unavailable_message(name, f"files are missing and {OFFLINE_ENV} is set.")
        )
    elif infos and _url_reachable(infos[0][0]):
        how = "downloaded"
    else:
        host = infos[0][0].split("/")[2] if infos else "?"
        raise DataUnavailableError(
            _unavailable_message(
                name,
                f"files are missing and {host} did not answer within "
                f"{_REACH_TIMEOUT_S:.0f} s (no network?).",
            )
        )

    builder = _tfds_builder(name)
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError

    if how != "prepared data dir":
        # manual_dir: TFDS's DownloadManager takes a registered URL's file from here
        # (by its registered file name) instead of downloading it, checksum-verified.
        config = tfds.download.DownloadConfig(manual_dir=str(raw), try_download_gcs=False)
        _log.warning("plasticity_lib.data: preparing %s with TFDS (%s), once.", name, how)
        tfds.disable_progress_bar()
        try:
            with _few_download_retries():
                builder.download_and_prepare(
                    download_dir=str(loc["downloads"]), download_config=config
                )
        except NonMatchingChecksumError as err:
            raise DataCorruptedError(
                _unavailable_message(name, _checksum_reason(name, raw, err), corrupted=True)
            ) from err
        except Exception as err:
            if how != "downloaded":
                raise
            raise DataUnavailableError(
                _unavailable_message(name, f"TFDS could not download it ({err}).")
            ) from err

    out: dict[str, np.ndarray] = {"source": np.array(f"{name} (tfds, {how})")}
    for split in SPLITS:
        images, labels = tfds.as_numpy(
            builder.as_dataset(split=split, batch_size=-1, as_supervised=True)
        )
        out[f"x_{split}"] = np.asarray(images, dtype=np.uint8)
        out[f"y_{split}"] = np.asarray(labels, dtype=np.int32)
    return out


def _checksum_reason(name: str, raw: Path, err: Exception) -> str:
    """One line per raw file of ``name`` whose SHA-256 is not the one TFDS registers,
    then TFDS's own message."""
    bad = []
    for fname, want in _registered_checksums(name):
        path = raw / fname
        if path.is_file():
            got = _file_sha256(path)
            if got != want:
                bad.append(f"    {path}: sha256 {got}, expected {want}\n")
    head = "checksum failure (TFDS verifies the raw files):\n" + "".join(bad)
    return head + "  TFDS: " + str(err).strip().replace("\n", "\n  ")


def _tfds_builder(name: str):
    """``tfds.builder(name)`` on the TFDS data dir (imports TFDS; TF stays quiet)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TF gets imported
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:  # pragma: no cover - tfds is a pinned dependency
        raise DataUnavailableError(
            _unavailable_message(name, f"tensorflow-datasets cannot be imported ({err}).")
        ) from err
    return tfds.builder(name, data_dir=str(data_locations(name)["tfds"]))


# ------------------------------------------------------------------------ raw arrays


def _read_cache(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an npz cache, after checking them against the digest stored with
    them; raises ``ValueError`` (naming ``path``) when it cannot be read or fails."""
    try:
        with np.load(path, allow_pickle=False) as f:
            raw = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"cannot read {path} ({type(err).__name__}: {err})") from err
    if "digest" not in raw or any(k not in raw for k in ("x_train", "x_test", "pixel_mean")):
        raise ValueError(f"{path} lacks the arrays or digest of a {_CACHE_VERSION} cache")
    if _arrays_digest(raw) != str(raw["digest"]):
        raise ValueError(f"{path}: its arrays do not match the digest stored with them")
    return raw


def _load_raw(name: str) -> dict[str, np.ndarray]:
    """Raw arrays plus ``pixel_mean`` and ``source``: from the npz cache (keyed by the
    source files' checksums, digest-checked), else TFDS. A cache that fails its check
    is reported with its path, deleted and rebuilt."""
    loc = data_locations(name)
    path = loc["cache"]
    bad_cache = ""
    if path.is_file():
        try:
            return _read_cache(path)
        except ValueError as err:
            bad_cache = str(err)
            warnings.warn(
                f"plasticity_lib.data: npz cache of {name!r} is bad: {err}; deleting it and "
                f"preparing the dataset again (clear every cache by hand with: rm "
                f"{path.parent}/{name}-*.npz).",
                stacklevel=3,
            )
            with contextlib.suppress(OSError):  # e.g. a read-only cache folder
                path.unlink(missing_ok=True)
    with _preparation_lock(name):
        # another process may have prepared the dataset while this one waited
        if not bad_cache and path.is_file():
            with contextlib.suppress(ValueError):
                return _read_cache(path)
        try:
            raw = _prepare_with_tfds(name)
        except DataUnavailableError as err:
            if bad_cache:
                raise type(err)(f"{err}\n  (the npz cache was bad: {bad_cache})") from err
            raise
        return _finish_raw(name, path, raw)


def _finish_raw(name: str, path: Path, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add ``pixel_mean``, ``source_key`` and ``digest`` to freshly prepared arrays and
    write the npz cache (atomically)."""
    raw["pixel_mean"] = raw["x_train"].mean(axis=0, dtype=np.float64).astype(np.float32) / 255.0
    raw["source_key"] = np.array(source_key(name))
    raw["digest"] = np.array(_arrays_digest(raw))
    try:
        _write_cache(path, raw)
    except OSError as err:  # the data is good; only the cache is lost
        warnings.warn(
            f"plasticity_lib.data: could not write the npz cache {path} ({err}); the next "
            f"load prepares {name!r} again (set {CACHE_DIR_ENV} to a writable folder).",
            stacklevel=3,
        )
    return raw


@contextlib.contextmanager
def _preparation_lock(name: str):
    """Hold an exclusive inter-process lock while ``name`` is prepared (TFDS and the npz
    cache), so that chapters executed side by side on a fresh machine do not both build
    the same TFDS folder (TFDS's final rename fails for the second one: "Cannot rename
    .../incomplete.XXXX ... already exists"). The lock file is
    ``resolve_cache_dir() / f".{name}.lock"``; ``fcntl.flock``, so POSIX only (elsewhere
    no lock is taken)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock_dir = resolve_cache_dir()
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
        f = open(lock_dir / f".{name}.lock", "a")  # noqa: SIM115 - closed below
    except OSError:  # a read-only cache folder: prepare without the lock
        yield
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        f.close()


def _write_cache(path: Path, raw: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Atomic write: concurrent processes may prepare the same dataset.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz")
    os.close(fd)
    try:
        np.savez(tmp, **raw)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _digits_fallback(name: str) -> dict[str, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1797 images, 10 classes), resized.

    Pixel values 0..16 become uint8 ``round(v * 255 / 16)``. Each 8x8 image is
    upsampled by pixel repetition (nearest neighbour): 3x to 24x24 and zero-padded by
    2 pixels on every side to 28x28x1 (like MNIST's centred digits), or 4x to 32x32
    and repeated over 3 channels for CIFAR shapes. A fixed permutation (seed 0)
    splits the images into 1437 train / 360 test (80/20).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    img = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8)
    (h, w, c), _ = DATASETS[name]
    factor = h // 8
    img = img.repeat(factor, axis=1).repeat(factor, axis=2)
    pad = (h - 8 * factor) // 2
    img = np.pad(img, ((0, 0), (pad, pad), (pad, pad)))
    img = np.repeat(img[..., None], c, axis=-1)
    assert img.shape[1:] == (h, w, c)
    labels = digits.target.astype(np.int32)
    perm = np.random.default_rng(0).permutation(len(labels))
    n_train = int(0.8 * len(labels))  # 1437
    tr, te = perm[:n_train], perm[n_train:]
    return {
        "x_train": img[tr],
        "y_train": labels[tr],
        "x_test": img[te],
        "y_test": labels[te],
        "pixel_mean": img[tr].mean(axis=0, dtype=np.float64).astype(np.float32) / 255.0,
        "source": np.array(f"digits (scikit-learn fallback for {name})"),
    }


# ----------------------------------------------------------------------- public API


def load_dataset(
    name: str,
    split: str = "train",
    n: int | None = None,
    seed: int = 0,
    flatten: bool = False,
    allow_fallback: bool = False,
    center: bool = True,
) -> Dataset:
    """Load one split of ``name`` as a float32 :class:`Dataset`, centred by default.

    Args:
      name: ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"`` or ``"cifar100"``
        (App. B.2: the paper uses CIFAR-10 mostly, MNIST and CIFAR-100 too).
      split: ``"train"`` or ``"test"``.
      n: if given, a random subset of ``n`` examples without replacement, drawn with
        ``numpy.random.default_rng(seed)`` and kept in dataset order (identical for
        identical ``(n, seed)``; not stratified).
      seed: seed of the subset draw, a non-negative int (ignored when ``n`` is None).
      flatten: return ``x`` as ``(N, H*W*C)`` (MLP inputs) instead of ``(N, H, W, C)``.
      allow_fallback: when no copy of the data can be had, return scikit-learn's
        digits resized to the dataset's image shape instead of raising (smoke
        profile only; ``source`` says so).
      center: ``True`` (default): subtract the per-pixel mean of the full training
        split (App. B.2 preprocessing). ``False``: no centring, ``x = pixels / 255`` in
        [0, 1] exactly (non-negative inputs, e.g. App. E.8 / Fig. 24); then
        ``pixel_mean`` is zero, ``centered`` is False and ``source`` ends in
        ``", not centred"``.

    Returns:
      :class:`Dataset` with ``x = pixels / 255 - pixel_mean`` (``pixel_mean`` the
      per-pixel mean of the full training split, or zero when ``center=False``),
      int32 ``y``; ``x`` is ``(N, H, W, C)``, or ``(N, H*W*C)`` with ``flatten``.

    Raises:
      ValueError: unknown ``name``/``split``, bad ``n``, or ``center`` not a bool.
      DataUnavailableError: no data and ``allow_fallback`` is False; the message
        names the files expected and ``PLASTICITY_DATA_DIR``.
      DataCorruptedError: (a DataUnavailableError) the raw files are present but fail
        TFDS's checksum check (the message names each file, its SHA-256 and the
        expected one) or cannot be decoded -- also with ``allow_fallback=True``, which
        stands in for missing data only.
    """
    _check_name(name)
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not allowed; allowed: {list(SPLITS)}")
    if n is not None and (not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1):
        raise ValueError(f"n={n!r} must be None or a positive int")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, (bool, np.bool_)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int (the subset draw's seed)")
    if not isinstance(center, (bool, np.bool_)):
        raise ValueError(f"center={center!r} is not allowed; allowed: True or False")
    try:
        raw = _load_raw(name)
    except DataCorruptedError:
        raise  # files present but wrong: reported, never replaced by the fallback
    except DataUnavailableError as err:
        if not allow_fallback:
            raise
        first = str(err).splitlines()[0]
        warnings.warn(
            f"plasticity_lib.data: {first} -- falling back to scikit-learn's digits "
            "(allow_fallback=True).",
            stacklevel=2,
        )
        raw = _digits_fallback(name)

    x_u8, y = raw[f"x_{split}"], raw[f"y_{split}"]
    if n is not None:
        if n > len(y):
            raise ValueError(
                f"n={n} exceeds the {len(y)} examples of the {split!r} split of "
                f"{str(raw['source'])!r}"
            )
        idx = np.sort(np.random.default_rng(seed).choice(len(y), size=n, replace=False))
        x_u8, y = x_u8[idx], y[idx]
    source = str(raw["source"])
    if center:
        mean = np.asarray(raw["pixel_mean"], dtype=np.float32)
        x = x_u8.astype(np.float32) / np.float32(255.0) - mean
    else:
        mean = np.zeros(x_u8.shape[1:], dtype=np.float32)
        x = x_u8.astype(np.float32) / np.float32(255.0)
        source += ", not centred"
    if flatten:
        x, mean = x.reshape(len(x), -1), mean.reshape(-1)
    x.flags.writeable = False
    y = np.array(y, dtype=np.int32)
    y.flags.writeable = False
    return Dataset(
        x=x,
        y=y,
        num_classes=10 if "fallback" in source else DATASETS[name][1],
        name=name,
        source=source,
        split=split,
        pixel_mean=mean,
        centered=bool(center),
    )
