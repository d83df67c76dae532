"""Sphinx extension: the built book serves MathJax itself, so math renders offline.

Sphinx's default ``mathjax_path`` is a CDN URL: a book opened without network shows raw
``$...$`` and ``\\[...\\]``. When a local MathJax 3 copy is installed, this extension points
``mathjax_path`` at ``_static/mathjax/tex-chtml-full.js`` and copies into the built HTML
only what that needs (the combined component -- TeX input with every extension, the
CommonHTML output and the menu -- and its web fonts: about 1.7 MB, not the 24 MB of the
whole distribution).

Where the copy comes from, first found wins:

* ``$PLASTICITY_MATHJAX_DIR``: a folder holding ``tex-chtml-full.js`` and
  ``output/chtml/fonts/woff-v2/`` (a MathJax 3 ``es5`` folder);
* the ``sphinx-mathjax-offline`` package (MathJax 3.2.2; ``pip install
  sphinx-mathjax-offline``), used as a data package only: its own Sphinx extension,
  which copies all 24 MB, is not loaded.

Without either, the pages keep the CDN URL and the build says so (an info line, not a
warning, so that a strict build still passes). A ``mathjax_path`` set in ``_config.yml``
is left alone.

Loaded by ``_config.yml`` (``sphinx.local_extensions: {offline_mathjax: book/_ext}``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

#: The combined component the pages load (relative to the MathJax folder).
COMPONENT = "tex-chtml-full.js"
#: What the component loads at run time (relative to the MathJax folder).
FONTS = "output/chtml/fonts/woff-v2"
#: Where the copy goes in the built HTML (under ``_static``).
TARGET = "mathjax"
PACKAGE = "sphinx-mathjax-offline"


def _complete(folder: Path) -> bool:
    return (folder / COMPONENT).is_file() and (folder / FONTS).is_dir()


def find_mathjax() -> Path | None:
    """The local MathJax 3 ``es5`` folder, or None (see the module docstring)."""
    env = os.environ.get("PLASTICITY_MATHJAX_DIR")
    if env and _complete(Path(env)):
        return Path(env)
    try:
        from importlib import metadata

        dist = metadata.distribution(PACKAGE)
    except Exception:  # noqa: BLE001  (not installed)
        return None
    folder = Path(str(dist.locate_file(f"{PACKAGE}/static/mathjax")))
    return folder if _complete(folder) else None


def _config_inited(app, config) -> None:
    from sphinx.ext.mathjax import MATHJAX_URL

    app._offline_mathjax_dir = None  # the folder copied at build-finished
    if config.mathjax_path != MATHJAX_URL:
        logger.info("offline_mathjax: mathjax_path is set (%s); left alone", config.mathjax_path)
        return
    folder = find_mathjax()
    if folder is None:
        logger.info(
            "offline_mathjax: no local MathJax copy (pip install %s, or set "
            "PLASTICITY_MATHJAX_DIR); the pages load MathJax from %s",
            PACKAGE,
            MATHJAX_URL,
        )
        return
    config.mathjax_path = f"{TARGET}/{COMPONENT}"
    app._offline_mathjax_dir = folder
    logger.info("offline_mathjax: serving MathJax from _static/%s (copied from %s)", TARGET, folder)


def _build_finished(app, exc) -> None:
    folder = getattr(app, "_offline_mathjax_dir", None)
    if exc is not None or folder is None or app.builder.format != "html":
        return
    dest = Path(app.outdir) / "_static" / TARGET
    (dest / FONTS).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(folder / COMPONENT, dest / COMPONENT)
    shutil.copytree(folder / FONTS, dest / FONTS, dirs_exist_ok=True)
    for extra in ("LICENSE",):  # MathJax is Apache-2.0: ship its licence when present
        if (folder / extra).is_file():
            shutil.copy2(folder / extra, dest / extra)


def setup(app):
    app.setup_extension("sphinx.ext.mathjax")
    app.connect("config-inited", _config_inited)
    app.connect("build-finished", _build_finished)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
