#!/usr/bin/env bash
# deploy/install.sh: builds the Debian package (deploy/package.sh) and installs it with apt,
# which pulls in what it depends on. Then edit /etc/strait/strait.toml (ports, listeners)
# and start it:
#   strait check-config /etc/strait/strait.toml
#   systemctl enable --now strait-hugepages.service strait.service
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $(id -u) == 0 ]] || { echo "install: run as root" >&2; exit 1; }
deb=$("$ROOT/deploy/package.sh" "$@")
apt-get install -y "$deb"
echo "installed $(dpkg-query -W -f='${Package} ${Version}' strait); man strait; systemctl status strait"
