#!/usr/bin/env bash
# Makes cliptag's PNG icons from the SVG beside this script, at the sizes desktops look for
# (hicolor/<size>x<size>/apps). Needs rsvg-convert (Debian: librsvg2-bin).
set -euo pipefail
cd "$(dirname "$0")"
id=io.github.cliptag.Cliptag
for size in 16 32 48 64 128 256 512; do
    mkdir -p "hicolor/${size}x${size}/apps"
    rsvg-convert --width "$size" --height "$size" "$id.svg" -o "hicolor/${size}x${size}/apps/$id.png"
done
