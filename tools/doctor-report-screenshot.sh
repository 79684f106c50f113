#!/usr/bin/env bash
# Regenerates docs/doctor-report.png: headless Chromium's screenshot of an HTML report of
# `sidecar-kit doctor pods -o html`.
#
#   tools/doctor-report-screenshot.sh REPORT.html [HEIGHT]   a report you made on a cluster
#   tools/doctor-report-screenshot.sh                         the golden test's report
#
# HEIGHT is the window's height in pixels (default 2470, the golden report's page). Without
# a file it uses the report of the doctor's scenario cluster. The
# golden test doctor_golden runs the real CLI against the project's fake API server
# (mixed kubelets, a pod stuck in Init, one its node refused, a Job kept alive by its
# legacy sidecar, a universal pod with its detection restart; the report taken at
# 10:00:50, 50 s after they started) and fails unless the CLI's output is exactly
# crates/cli/tests/doctor_golden/pods-html.stdout, so that file is the report as
# generated today.
#
# Needs chromium and pngquant (Debian: apt-get install -y chromium pngquant).
set -euo pipefail
cd "$(dirname "$0")/.."
report=${1:-crates/cli/tests/doctor_golden/pods-html.stdout}
height=${2:-2470}
out=docs/doctor-report.png

if [ $# -eq 0 ]; then
  cargo test -q --locked -p sidecar-kit --test doctor_golden
fi
[ -s "$report" ] || { echo "no report at $report" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$report" "$tmp/report.html"
if ! chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=1200,"$height" --screenshot="$tmp/shot.png" \
    "file://$tmp/report.html" 2>"$tmp/chromium.log" || [ ! -s "$tmp/shot.png" ]; then
  cat "$tmp/chromium.log" >&2
  echo "chromium made no screenshot" >&2
  exit 1
fi
# A palette of the page's few colours keeps the picture small (< 300 KB).
pngquant --quality=70-95 --speed 1 --strip --force --output "$out" "$tmp/shot.png"
ls -l "$out"
