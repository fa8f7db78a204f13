#!/usr/bin/env bash
# Screenshots of the HTML report for docs/report.md: a small `shapes` study (a depth-by-width grid and an lr sweep
# with --repeats 2; a few minutes on two CPU cores) rendered in headless Chromium at 1920x1080 and 1366x768,
# saved as palette PNGs (tens of KB) in docs/images/.
#
#   scripts/report-screenshots.sh [WORK_DIR]     # the study's cache and data go there (default: a temp folder)
#   PYTHON=.venv/bin/python scripts/report-screenshots.sh
set -euo pipefail
source "$(dirname "$0")/screenshot-setup.sh"  # ROOT, WORK, PY, C (Chromium)
export DLBENCH_HOME="$WORK/cache" DLBENCH_DATA_DIR="$WORK/data"
STUDY=(--dataset shapes --dataset-opt train_size=2000 --dataset-opt test_size=500 --epochs 6)
$PY -m dlbench sweep --grid depth=1,2,3 --grid width=32,64,128 --model mlp "${STUDY[@]}" --name depth-by-width
$PY -m dlbench sweep lr 0.3,0.1,0.03,0.01 --model cnn --set channels=8/16 --repeats 2 "${STUDY[@]}" --name lr-cnn
$PY -m dlbench report --out "$WORK/report.html"

URL="file://$WORK/report.html"
top() {  # top ANCHOR WIDTH: where that heading starts at that window width (a probe copy records its offset)
  sed "s#</body>#<script>addEventListener('load',function(){document.body.dataset.top=document.getElementById('$1').offsetTop})</script></body>#" \
    "$WORK/report.html" > "$WORK/probe.html"
  "${C[@]}" "--window-size=$2,768" --virtual-time-budget=5000 --dump-dom "file://$WORK/probe.html" 2>/dev/null \
    | grep -o 'data-top="[0-9]*"' | grep -o '[0-9]*'
}
GRID=$(top final-accuracy-over-the-grid 1366)
REPEATS=$(top final-accuracy-against-the-swept-value 1920)
"${C[@]}" --window-size=1920,1080 "--screenshot=$WORK/raw-1920.png" "$URL" 2>/dev/null
"${C[@]}" --window-size=1366,768 "--screenshot=$WORK/raw-1366.png" "$URL" 2>/dev/null
"${C[@]}" "--window-size=1366,$((GRID + 800))" "--screenshot=$WORK/raw-1366-figures.png" "$URL" 2>/dev/null
"${C[@]}" "--window-size=1920,$((REPEATS + 1100))" "--screenshot=$WORK/raw-1920-repeats.png" "$URL" 2>/dev/null
WORK=$WORK OUT="$ROOT/docs/images" GRID=$GRID REPEATS=$REPEATS $PY - <<'PY'
import os
from PIL import Image

work, out = os.environ["WORK"], os.environ["OUT"]
grid, repeats = int(os.environ["GRID"]) - 20, int(os.environ["REPEATS"]) - 20
for name, box in (
    ("1920", None),
    ("1366", None),
    ("1366-figures", (0, grid, 1366, grid + 768)),
    ("1920-repeats", (0, repeats, 1920, repeats + 1080)),
):
    im = Image.open(f"{work}/raw-{name}.png").convert("RGB")
    im = im.crop(box) if box else im
    # text and flat colours: a palette of 256 keeps them sharp at a fifth of the size
    im.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(f"{out}/report-{name}.png", optimize=True)
    print(f"{out}/report-{name}.png")
PY
