"""plasticity_lib: the shared JAX library of the Plasticity Loss book.

Reproduces the experiments of Lyle et al. (2024), "Disentangling the Causes of
Plasticity Loss in Neural Networks". Modules: ``data``, ``tasks``, ``models``,
``train``, ``diagnostics``, ``claims``, ``profiles``, ``plotting``, ``progress``,
``pipeline``.
Submodules are imported lazily so that ``import plasticity_lib`` stays cheap.
"""

__version__ = "0.1.0"
