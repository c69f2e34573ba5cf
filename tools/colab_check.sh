#!/usr/bin/env bash
# Run the notebooks as Colab would, on this machine (heavy, not in CI; result goes into docs/colab.md).
#
#   tools/colab_check.sh [REF]        REF: the commit to install (default HEAD of this clone)
#   FLA_COLAB_NOTEBOOKS='01-*' tools/colab_check.sh     only some notebooks
#
# 1. A Colab-like Python (built once in $FLA_COLAB_DIR/base, ~5 GB, reused): Python 3.13 with what
#    Colab has preinstalled and we depend on: numpy 2.1, ipywidgets 7.7.1, a recent CUDA torch from
#    PyPI, torchvision, matplotlib, ...; no ultralytics, no fla.
# 2. A fresh copy of it (hard links: pip replaces files, never edits them, so the base stays pristine).
# 3. The setup cell of notebook 01 at REF, unchanged except FLA_SOURCE = git+file://<this clone>@REF, runs in a
#    kernel of that copy: `%pip install` must install fla-teach and its dependencies, then setup() runs.
# 4. Every notebook runs top to bottom in quick mode (FLA_QUICK=1) in a fresh kernel from an empty
#    folder (Colab opens a notebook alone, without the repository around it); notebook 01 in the
#    same kernel that just installed, the others as after Colab's "restart session".
# The training notebooks read the helmet subset from FLA_DATA (here: ../shared; Colab downloads it).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${FLA_COLAB_DIR:-/tmp/fla-colab}
PY=${COLAB_PYTHON:-$(ls -d "$HOME"/.pyenv/versions/3.13*/bin/python 2>/dev/null | tail -1)}
REF=$(git -C "$REPO" rev-parse "${1:-HEAD}")
DATA=${FLA_DATA:-$REPO/../shared/data/helmet}
[ -x "$PY" ] || { echo "no Python 3.13: set COLAB_PYTHON" >&2; exit 2; }
mkdir -p "$WORK"
t0=$(date +%s)

if [ ! -f "$WORK/base/.done" ]; then
  echo "== building the Colab-like base in $WORK/base ($("$PY" -V))"
  rm -rf "$WORK/base"
  "$PY" -m venv "$WORK/base"
  "$WORK/base/bin/python" -m pip install -q -U pip
  # Colab's preinstalled versions of what we use (Colab also has many more packages we do not need)
  "$WORK/base/bin/python" -m pip install "numpy==2.1.*" "ipywidgets==7.7.1" "ipykernel<7" torch torchvision \
    matplotlib pandas pyyaml tqdm einops pillow scipy requests psutil opencv-python nbclient nbformat
  touch "$WORK/base/.done"
fi
echo "== base ready after $(( $(date +%s) - t0 )) s"

RUN=$WORK/run
rm -rf "$RUN" && cp -al "$WORK/base" "$RUN" && rm -f "$RUN/.done"
SRC=$WORK/src  # the notebooks of REF, as the badges would open them (not this working tree)
rm -rf "$SRC" && git clone -q "$REPO" "$SRC" && git -C "$SRC" checkout -q "$REF"
"$RUN/bin/python" -m pip freeze --all | sort > "$WORK/freeze-before.txt"

t1=$(date +%s)
status=0
( "$RUN/bin/python" - "$SRC" "$RUN" "git+file://$REPO@$REF" "$DATA" "$WORK" <<'EOF'
import json, os, re, shutil, sys, tempfile, time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

repo, run, data, work = (Path(a) for a in (sys.argv[1], sys.argv[2], sys.argv[4], sys.argv[5]))
source = sys.argv[3]
jupyter = Path(tempfile.mkdtemp(prefix="jupyter-", dir=work))
spec = jupyter / "kernels" / "colab"
spec.mkdir(parents=True)
(spec / "kernel.json").write_text(json.dumps(
    {"argv": [str(run / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
     "display_name": "colab-like", "language": "python"}))
env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "JUPYTER"))}
env.update(JUPYTER_PATH=str(jupyter), FLA_QUICK="1", FLA_DATA=str(data), PATH=f"{run}/bin:{env['PATH']}")
os.environ.update(JUPYTER_PATH=str(jupyter))
helmet = Path(tempfile.mkdtemp(dir=work)) / "helmet"  # ultralytics writes label caches: a private copy
if data.is_dir():
    shutil.copytree(data, helmet, ignore=shutil.ignore_patterns("*.cache"))
    env["FLA_DATA"] = str(helmet)

failed = []
for i, path in enumerate(sorted((repo / "notebooks").glob(os.environ.get("FLA_COLAB_NOTEBOOKS", "[0-9][0-9]-*.ipynb")))):
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    first.source, n = re.subn(r'^FLA_SOURCE = "[^"]*"', f'FLA_SOURCE = "{source}"', first.source, flags=re.M)
    assert n == 1, f"{path.name}: no FLA_SOURCE line in the first code cell"
    cwd = Path(tempfile.mkdtemp(prefix="content-", dir=work))  # like Colab's /content: no repository around
    t = time.perf_counter()
    try:
        NotebookClient(nb, timeout=1800, kernel_name="colab", resources={"metadata": {"path": str(cwd)}}).execute(env=env)
        status = "ok"
    except Exception as e:  # noqa: BLE001 - report every notebook, then fail
        status = f"FAILED: {type(e).__name__}: {str(e)[-1500:]}"
        failed.append(path.name)
    setup_out = "".join(o.get("text", "") for o in first.outputs)
    if i == 0:
        (work / "install-output.txt").write_text(setup_out)
    last = [l for l in setup_out.splitlines() if l.strip()][-1:] or [""]
    stamps = first.metadata.get("execution", {})  # nbclient records when each cell started and ended
    took = ""
    if {"iopub.execute_input", "shell.execute_reply"} <= stamps.keys():
        start, end = (datetime.fromisoformat(stamps[k].replace("Z", "+00:00")) for k in ("iopub.execute_input", "shell.execute_reply"))
        took = f" (setup cell {(end - start).total_seconds():.0f} s)"
    print(f"{path.name}: {status} in {time.perf_counter() - t:.0f} s{took} | {last[0]}", flush=True)
    nbformat.write(nb, work / path.name)  # executed copy, outputs kept, for reading
sys.exit(1 if failed else 0)
EOF
) || status=$?
"$RUN/bin/python" -m pip freeze --all | sort > "$WORK/freeze-after.txt"
python3 - "$WORK/freeze-before.txt" "$WORK/freeze-after.txt" <<'EOF'
import re, sys
before, after = ({re.split(r"==| @ ", l, 1)[0].lower(): l.strip() for l in open(f) if l.strip()} for f in sys.argv[1:])
print("== Colab-preinstalled packages the install changed:", ", ".join(f"{before[k]} -> {after[k]}" for k in sorted(before) if k in after and before[k] != after[k]) or "none")
print("== added:", ", ".join(after[k] for k in sorted(after.keys() - before.keys())))
EOF
echo "== install log: $WORK/install-output.txt; executed notebooks: $WORK/*.ipynb"
echo "== notebooks: $(( $(date +%s) - t1 )) s; total $(( $(date +%s) - t0 )) s; REF $REF; $("$RUN/bin/python" -V)"
exit $status
