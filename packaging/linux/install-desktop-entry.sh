#!/bin/sh
# Put the portable Parlor (this folder) in the applications menu: a desktop entry whose Exec
# and Icon are this folder's own launcher and icon, as absolute paths. Run it again after
# moving the folder; remove ~/.local/share/applications/parlor.desktop to undo.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
mkdir -p "$data/applications" "$data/icons/hicolor/256x256/apps"
cp "$here/parlor.png" "$data/icons/hicolor/256x256/apps/parlor.png"
sed -e "s|^Exec=.*|Exec=\"$here/parlor\"|" -e "s|^Icon=.*|Icon=$here/parlor.png|" \
    "$here/parlor.desktop" > "$data/applications/parlor.desktop"
echo "Added Parlor to the applications menu: $data/applications/parlor.desktop"
