"""plotting.figure: the PNG saved as savefig does, one display output that Jupyter shows
and that myst-nb's glue takes for a numbered {glue:figure} (and drops from the cell)."""

import base64

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402

from plasticity_lib import plotting  # noqa: E402


@pytest.fixture
def shown(monkeypatch, tmp_path):
    """Run plotting.figure as in a kernel; returns (path, [(data, metadata)], fig)."""
    import IPython
    import IPython.display

    monkeypatch.setenv("PLASTICITY_RESULTS_DIR", str(tmp_path))
    plotting.set_theme()
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [1, 0])
    calls = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())  # after pyplot's set-up
    monkeypatch.setattr(
        IPython.display, "display", lambda data, raw, metadata: calls.append((data, metadata))
    )
    assert plotting.figure(fig, "ch99_demo", "smoke") is None  # nothing echoed in a cell
    return tmp_path / "figures" / "ch99_demo.png", calls, fig


def test_saves_the_png_like_savefig_and_closes_the_figure(shown, tmp_path):
    path, calls, fig = shown
    assert path == plotting.figure_dir("smoke") / "ch99_demo.png"
    assert path.read_bytes().startswith(b"\x89PNG")
    assert not plt.fignum_exists(fig.number), "closed: the inline backend must not show it again"
    assert len(calls) == 1


def test_the_output_is_what_jupyter_shows(shown):
    path, [(data, metadata)], _ = shown
    assert base64.b64decode(data["image/png"]) == path.read_bytes()
    # shown at figure.dpi (100), not at savefig.dpi (130), as the inline backend shows it:
    # the PNG (4 in wide, cropped by bbox="tight") is 130/100 times wider than shown
    png_width = int.from_bytes(path.read_bytes()[16:20], "big")
    assert metadata["image/png"]["width"] == round(png_width * 100 / 130)
    assert 300 <= metadata["image/png"]["width"] <= 420
    assert metadata["scrapbook"] == {"name": "ch99_demo", "mime_prefix": plotting.GLUE_PREFIX}


def test_myst_nb_glues_it_and_drops_it_from_the_cell(shown):
    glue = pytest.importorskip("myst_nb.ext.glue")
    path, [(data, metadata)], _ = shown
    assert glue.GLUE_PREFIX == plotting.GLUE_PREFIX
    cell = nbformat.v4.new_code_cell("plotting.figure(fig, 'ch99_demo', P.profile)")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data=data, metadata=metadata),
        nbformat.v4.new_output("stream", name="stderr", text="a warning\n"),
    ]
    [(key, output)] = glue.extract_glue_data_cell(cell)
    assert key == "ch99_demo"
    assert base64.b64decode(output["data"]["image/png"]) == path.read_bytes()
    assert [o.output_type for o in cell.outputs] == ["stream"], (
        "the book must not show the figure under the code cell too"
    )


def test_outside_ipython_nothing_is_displayed(monkeypatch, tmp_path, capsys):
    import IPython

    monkeypatch.setenv("PLASTICITY_RESULTS_DIR", str(tmp_path))
    fig, _ = plt.subplots()
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    plotting.figure(fig, "ch99_plain", "smoke")
    assert (tmp_path / "figures" / "ch99_plain.png").exists()
    assert capsys.readouterr().out == ""
