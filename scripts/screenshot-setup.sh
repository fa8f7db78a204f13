# Sourced by the screenshot scripts: the repository root, the work folder (their first argument, else a temp
# folder), the Python to run dlbench with ($PYTHON, else python), and C, headless Chromium's command line with a
# profile in the work folder.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${1:-$(mktemp -d)}
mkdir -p "$WORK" && WORK=$(cd "$WORK" && pwd)
PY=${PYTHON:-python}
CHROMIUM=$(command -v chromium || command -v chromium-browser) || { echo "chromium is not installed" >&2; exit 1; }
C=("$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars "--user-data-dir=$WORK/profile")
