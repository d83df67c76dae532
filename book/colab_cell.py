# %% [markdown]
# # The Colab install cell (reference copy)
#
# Every chapter's first code cell is exactly the code cell below, tags included;
# `tests/test_book_config.py` checks it. To change it, edit it here, copy it into each
# `chapters/NN_name.py` and run `make pair`.
#
# What it does, only when running in Colab (elsewhere nothing):
#
# - installs the library **at the release this book was built from**, `BOOK_REF`, a git
#   tag `v<version>` (never the moving `main`). `BOOK_REF` is `"v"` + the version in
#   `pyproject.toml` (a test checks it); the `book` workflow creates that tag on the commit
#   it builds and refuses to publish when the library (`src/`, `pyproject.toml`) has changed
#   since an existing tag, so the tag's library is the one the book ran, and a library
#   change needs a new version;
# - installs only what Colab lacks: `plasticity-lib[colab]` with the library's dependencies
#   as lower bounds, and Colab's own jax (with its CUDA plugin), numpy, pandas, TensorFlow,
#   ... held at their installed versions by a constraints file, so pip never replaces a
#   package under the running kernel; were one of them older than the library needs, pip
#   stops and names it instead;
# - does nothing when that release is already installed (re-running the cell);
# - data: `plasticity_lib.data` finds a dataset through tensorflow-datasets, offline or
#   online: the raw files (e.g. MNIST's four `*-ubyte.gz`) in `/content/data/<dataset>/`
#   (upload them there, or set `PLASTICITY_DATA_DIR` first) are used as they are, else TFDS
#   downloads them.

# %% tags=["hide-input"]
import sys

if "google.colab" in sys.modules:  # in Colab: install the library (elsewhere this does nothing)
    import importlib
    import importlib.metadata
    import os
    import subprocess

    BOOK_REF = "v0.1.0"  # the release of the library this book was built from
    REPO = "https://github.com/plasticity-book/plasticity-loss-book"
    try:
        installed = importlib.metadata.version("plasticity-lib")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed != BOOK_REF.removeprefix("v"):
        # hold Colab's own packages at their versions: pip adds only what Colab lacks
        keep = []
        for name in (
            "jax",
            "jaxlib",
            "jax-cuda12-plugin",
            "jax-cuda12-pjrt",
            "ml-dtypes",
            "numpy",
            "scipy",
            "pandas",
            "matplotlib",
            "flax",
            "optax",
            "protobuf",
            "tensorflow",
            "tensorflow-datasets",
            "keras",
        ):
            try:
                keep.append(f"{name}=={importlib.metadata.version(name)}\n")
            except importlib.metadata.PackageNotFoundError:
                pass
        with open("/tmp/colab-constraints.txt", "w") as f:
            f.writelines(keep)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "-c",
                "/tmp/colab-constraints.txt",
                f"plasticity-lib[colab] @ git+{REPO}@{BOOK_REF}",
            ],
            check=True,
        )
        importlib.invalidate_caches()
    os.environ.setdefault("PLASTICITY_DATA_DIR", "/content/data")
