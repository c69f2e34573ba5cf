"""The full runs shipped with the package (package data, so a pip install on Colab has them too):
``ablation/`` (notebook 04, ``fla ablate``) and, once run, ``helmet-cpu60/`` (notebook 06, ``fla train``)."""
from pathlib import Path

#: the folder of every shipped run: ``HERE / name``
HERE = Path(__file__).resolve().parent
