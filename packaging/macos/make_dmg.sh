#!/usr/bin/env bash
# Pack Parlor.app into a compressed .dmg whose window shows the app next to an
# /Applications link, so installing is one drag.
#   bash packaging/macos/make_dmg.sh dist/Parlor.app dist/Parlor-0.1.0-macos-arm64.dmg build/dmg
set -euo pipefail
app="$1"
dmg="$2"
stage="$3"
[ -d "$app" ] || { echo "make_dmg.sh: $app does not exist (run PyInstaller first)" >&2; exit 1; }
rm -rf "$stage" "$dmg"
mkdir -p "$stage"
# ditto keeps symlinks, extended attributes and the code signature intact (cp -R may not).
ditto "$app" "$stage/$(basename "$app")"
ln -s /Applications "$stage/Applications"
hdiutil create -volname "Parlor" -srcfolder "$stage" -fs HFS+ -format UDZO -ov "$dmg"
rm -rf "$stage"
echo "wrote $dmg"
