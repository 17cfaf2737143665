#!/usr/bin/env bash
# Add lssviewer to the desktop's application menu (current user; no root needed). Idempotent.
#
#   ./install-desktop-entry.sh             # in the unpacked app folder: menu entry runs this folder's binary
#   bash packaging/install_desktop_entry.sh [LAUNCHER]   # from a checkout/pip install: LAUNCHER defaults to
#                                          # the `lssviewer` found on PATH
#   ... --uninstall                        # remove the entry and icons again
#
# Writes ~/.local/share/applications/lssviewer.desktop and the icon into the hicolor theme
# (~/.local/share/icons/hicolor/<size>/apps/lssviewer.png and scalable/apps/lssviewer.svg).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
APPS=$DATA/applications
ICONS=$DATA/icons/hicolor

if [ "${1:-}" = "--uninstall" ]; then
  rm -f "$APPS/lssviewer.desktop" "$ICONS"/*/apps/lssviewer.png "$ICONS/scalable/apps/lssviewer.svg"
  echo "removed the lssviewer menu entry"
  exit 0
fi

# Where the entry file and the icons are: beside this script (app folder) or in the checkout's resources/.
if [ -f "$HERE/lssviewer.desktop" ]; then
  ENTRY=$HERE/lssviewer.desktop; ICON_DIR=$HERE/_internal/lssviewer/_resources/icon
else
  ENTRY=$HERE/../resources/lssviewer.desktop; ICON_DIR=$HERE/../resources/icon
fi
if [ -n "${1:-}" ]; then LAUNCHER=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
elif [ -x "$HERE/lssviewer" ]; then LAUNCHER=$HERE/lssviewer
else LAUNCHER=$(command -v lssviewer || true)
fi
[ -n "$LAUNCHER" ] && [ -x "$LAUNCHER" ] || { echo "install-desktop-entry: no lssviewer launcher found" >&2; exit 1; }

mkdir -p "$APPS" "$ICONS/scalable/apps"
sed -e "s|^Exec=lssviewer |Exec=\"$LAUNCHER\" |" -e "s|^TryExec=.*|TryExec=$LAUNCHER|" "$ENTRY" > "$APPS/lssviewer.desktop"
for png in "$ICON_DIR"/lssviewer-*.png; do
  size=$(basename "$png" .png); size=${size#lssviewer-}
  mkdir -p "$ICONS/${size}x${size}/apps"
  cp "$png" "$ICONS/${size}x${size}/apps/lssviewer.png"
done
cp "$ICON_DIR/lssviewer.svg" "$ICONS/scalable/apps/lssviewer.svg"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$APPS" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$ICONS" || true
echo "installed $APPS/lssviewer.desktop (runs $LAUNCHER)"
