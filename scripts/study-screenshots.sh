#!/usr/bin/env bash
# Screenshots of the HTML report of every built-in study at its quick scale, for docs/study.md: each study runs
# with --quick (on `shapes` where the real files are absent; a few minutes each on two CPU cores), its report is
# rendered in headless Chromium at 1366x768 (a laptop screen), and the top of the page is saved as a palette PNG
# in docs/images/study-NAME.png. The Markdown report of each study is written too, and its links are checked.
#
#   scripts/study-screenshots.sh [WORK_DIR]     # caches, data and reports go there (default: a temp folder)
#   PYTHON=.venv/bin/python DLBENCH_DATA_DIR=../shared/data scripts/study-screenshots.sh /tmp/studies
set -euo pipefail
source "$(dirname "$0")/screenshot-setup.sh"  # ROOT, WORK, PY, C (Chromium)
export DLBENCH_HOME="$WORK/cache" DLBENCH_DATA_DIR="${DLBENCH_DATA_DIR:-$WORK/data}"
NAMES=$($PY -m dlbench study list --format json | $PY -c 'import json,sys; print(" ".join(r["name"] for r in json.load(sys.stdin)))')
for name in $NAMES; do
  start=$(date +%s)
  $PY -m dlbench study run "$name" --quick
  echo "study-screenshots: $name --quick took $(( $(date +%s) - start )) s" >&2
  $PY -m dlbench report --study "$name-quick" --out "$WORK/$name/report.html"
  $PY -m dlbench report --study "$name-quick" --out "$WORK/$name/report.md"
  "${C[@]}" --window-size=1366,768 "--screenshot=$WORK/$name/top.png" "file://$WORK/$name/report.html" 2>/dev/null
done
WORK=$WORK OUT="$ROOT/docs/images" NAMES=$NAMES $PY - <<'PY'
import os
import re
from pathlib import Path

from PIL import Image

work, out = Path(os.environ["WORK"]), Path(os.environ["OUT"])
for name in os.environ["NAMES"].split():
    im = Image.open(work / name / "top.png").convert("RGB")
    # text and flat colours: a palette of 256 keeps them sharp at a fifth of the size
    im.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out / f"study-{name}.png", optimize=True)
    md = work / name / "report.md"
    for target in re.findall(r"\]\(([^)#]+)\)", md.read_text()):  # every relative file link resolves
        if "://" not in target and not (md.parent / target).exists():
            raise SystemExit(f"{md}: link {target} does not resolve")
    print(out / f"study-{name}.png")
PY
