#!/usr/bin/env bash
# Turn the 256x256 PNG icon into an .icns with macOS's own tools (sips and iconutil).
#   bash packaging/macos/make_icns.sh resources/parlor.png build/parlor.icns
# An .iconset folder holds each size and its @2x twin; iconutil packs them. Sizes above the
# source (512, 1024) are left out rather than upscaled: macOS scales 256@2x when it needs to.
set -euo pipefail
src="$1"
out="$2"
iconset="$(dirname "$out")/parlor.iconset"
rm -rf "$iconset"
mkdir -p "$iconset"
for size in 16 32 128 256; do
    sips -z "$size" "$size" "$src" --out "$iconset/icon_${size}x${size}.png" >/dev/null
    double=$((size * 2))
    if [ "$double" -le 256 ]; then
        sips -z "$double" "$double" "$src" --out "$iconset/icon_${size}x${size}@2x.png" >/dev/null
    fi
done
iconutil --convert icns --output "$out" "$iconset"
rm -rf "$iconset"
echo "wrote $out"
