#!/usr/bin/env bash
# Run inside the Colab runtime image (.github/workflows/colab.yml), from the repository root:
# the chapters' Colab cell exactly as book/colab_cell.py has it, then every paired notebook
# (what Colab's launch button opens) at the smoke profile.
set -euo pipefail

# the interpreter of the notebooks' kernel, into which the cell installs (sys.executable): the
# python3 kernelspec's own, or, when it names a bare `python`, the one that runs papermill
KPY=$(python3 -c 'import os, sys
from jupyter_client.kernelspec import KernelSpecManager as M
exe = M().get_kernel_spec("python3").argv[0]
print(exe if os.path.isabs(exe) else sys.executable)')
"$KPY" --version

# 1. The cell (the last cell of book/colab_cell.py), with google.colab marked as imported,
#    as it is in a Colab kernel. It installs the library at the release tag from GitHub.
"$KPY" - <<'PY'
import sys
import types

sys.modules["google.colab"] = types.ModuleType("google.colab")
text = open("book/colab_cell.py").read()
cell = text.split("\n# %%")[-1].split("\n", 1)[1]
exec(compile(cell, "book/colab_cell.py", "exec"))
del sys.modules["google.colab"]  # the stand-in: jax would look for google.colab.output
import jax
import numpy
import plasticity_lib

print("plasticity_lib", plasticity_lib.__version__, "| jax", jax.__version__,
      "| numpy", numpy.__version__)
PY
echo "Colab's packages held by the cell:"
cat /tmp/colab-constraints.txt

# 2. The test harness only (not something a reader installs): papermill, held to the same
#    constraints, runs each paired notebook at the smoke profile in the python3 kernel.
python3 -m pip install -q -c /tmp/colab-constraints.txt papermill
mkdir -p /tmp/colab-out
for nb in chapters/[0-9][0-9]_*.ipynb; do
  echo "== $nb"
  python3 -m papermill --kernel python3 -p profile smoke "$nb" "/tmp/colab-out/$(basename "$nb")"
done
