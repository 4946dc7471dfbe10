#!/usr/bin/env bash
# deploy/package.sh: builds the Debian package of Strait (dpkg-deb; Debian 12).
#
#   deploy/package.sh [--profile release|ci] [--bin PATH] [--out DIR]
#
# Contents (Debian paths):
#   /usr/bin/strait                                    the binary
#   /lib/systemd/system/strait.service                 the service (Type=notify, watchdog,
#   /lib/systemd/system/strait-hugepages.service       reload through `strait ctl reload`)
#   /usr/lib/strait/setup-hugepages.sh                 hugepage reservation (STRAIT_HUGEPAGES)
#   /etc/strait/strait.toml                            example configuration (conffile)
#   /etc/default/strait                                the hugepage count (conffile)
#   /usr/share/man/man1/strait*.1.gz                   man pages (generated from the CLI)
#   /usr/share/bash-completion/completions/strait      shell completions
#   /usr/share/zsh/vendor-completions/_strait
#   /usr/share/fish/vendor_completions.d/strait.fish
#   /usr/share/strait/prometheus/strait-alerts.yml     Prometheus alerting rules
#   /usr/share/strait/grafana/strait-dashboard.json    Grafana dashboard
#   /usr/share/doc/strait/                             README, docs/, copyright
# Depends: the packages that provide the shared libraries the binary links (DPDK's
# librte-*, libc, ...), found with ldd + dpkg -S, as dpkg-shlibdeps would.
#
# Prints the path of the .deb. Install with `apt-get install ./strait_*.deb`
# (deploy/install.sh does both).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROFILE=release BIN="" OUT="$ROOT/target/deb"
while (( $# )); do
  case $1 in
    --profile) PROFILE=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: $0 [--profile release|ci] [--bin PATH] [--out DIR]" >&2; exit 2 ;;
  esac
done
die() { echo "package: $*" >&2; exit 1; }
for tool in dpkg-deb dpkg ldd gzip strip; do command -v "$tool" >/dev/null || die "$tool not found"; done
if [[ -z $BIN ]]; then
  (cd "$ROOT" && cargo build --profile "$PROFILE" -q -p strait) >&2
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE/strait"
fi
[[ -x $BIN ]] || die "$BIN is not an executable"

VERSION=$(awk -F'"' '/^version *=/ { print $2; exit }' "$ROOT/Cargo.toml")
ARCH=$(dpkg --print-architecture)
STAGE=$(mktemp -d /tmp/strait-deb.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
PKG="$STAGE/strait_${VERSION}_${ARCH}"

install -D -m 0755 "$BIN" "$PKG/usr/bin/strait"
# Shipped without debug info, as dh_strip does (symbols stay: backtraces name functions).
strip --strip-debug "$PKG/usr/bin/strait"
install -D -m 0755 "$ROOT/deploy/setup-hugepages.sh" "$PKG/usr/lib/strait/setup-hugepages.sh"
for unit in strait.service strait-hugepages.service; do
  install -D -m 0644 "$ROOT/deploy/systemd/$unit" "$PKG/lib/systemd/system/$unit"
done
install -D -m 0644 "$ROOT/configs/strait.toml" "$PKG/etc/strait/strait.toml"
install -d "$PKG/etc/default"
printf '# 2 MiB hugepages strait-hugepages.service reserves before Strait starts.\nSTRAIT_HUGEPAGES=1024\n' \
  >"$PKG/etc/default/strait"
chmod 0644 "$PKG/etc/default/strait"

ASSETS="$STAGE/assets"
"$BIN" generate-assets "$ASSETS" >/dev/null
install -d "$PKG/usr/share/man/man1"
for page in "$ASSETS"/*.1; do
  gzip -9n <"$page" >"$PKG/usr/share/man/man1/$(basename "$page").gz"
done
install -D -m 0644 "$ASSETS/strait.bash" "$PKG/usr/share/bash-completion/completions/strait"
install -D -m 0644 "$ASSETS/_strait" "$PKG/usr/share/zsh/vendor-completions/_strait"
install -D -m 0644 "$ASSETS/strait.fish" "$PKG/usr/share/fish/vendor_completions.d/strait.fish"

install -D -m 0644 "$ROOT/deploy/prometheus/strait-alerts.yml" "$PKG/usr/share/strait/prometheus/strait-alerts.yml"
install -D -m 0644 "$ROOT/deploy/grafana/strait-dashboard.json" "$PKG/usr/share/strait/grafana/strait-dashboard.json"
DOC="$PKG/usr/share/doc/strait"
install -D -m 0644 "$ROOT/README.md" "$DOC/README.md"
install -d "$DOC/docs" "$DOC/examples"
install -m 0644 "$ROOT"/docs/*.md "$DOC/docs/"
install -m 0644 "$ROOT"/configs/*.toml "$DOC/examples/"
cat >"$DOC/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: strait
Files: *
License: see the source repository
COPYRIGHT

# Depends: the package of every shared library the binary loads.
depends=$(ldd "$BIN" | awk '/=> \// { print $3 }' | while read -r lib; do
  dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true
done | cut -d: -f1 | sort -u | paste -sd, - | sed 's/,/, /g')
[[ $depends == *librte* ]] || die "no DPDK library among the binary's dependencies ($depends)"
SIZE=$(du -sk "$PKG" | cut -f1)
install -d "$PKG/DEBIAN"
cat >"$PKG/DEBIAN/control" <<CONTROL
Package: strait
Version: $VERSION
Architecture: $ARCH
Maintainer: Strait developers <strait@localhost>
Installed-Size: $SIZE
Depends: $depends
Recommends: dpdk
Section: net
Priority: optional
Homepage: file:///usr/share/doc/strait/README.md
Description: TCP proxy appliance on a DPDK userspace TCP stack
 Strait terminates client TCP connections in its own userspace stack on DPDK ports
 (NICs, virtio, AF_XDP), opens backend connections and splices the two. Configured
 with TOML (/etc/strait/strait.toml), run by systemd (strait.service), scraped by
 Prometheus.
CONTROL
printf '/etc/strait/strait.toml\n/etc/default/strait\n' >"$PKG/DEBIAN/conffiles"
cat >"$PKG/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
# The service is not started: it needs its ports configured in /etc/strait/strait.toml
# (then: systemctl enable --now strait-hugepages.service strait.service).
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
POSTINST
cat >"$PKG/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
POSTRM
chmod 0755 "$PKG/DEBIAN/postinst" "$PKG/DEBIAN/postrm"

mkdir -p "$OUT"
dpkg-deb --root-owner-group -Zxz --build "$PKG" "$OUT/strait_${VERSION}_${ARCH}.deb" >&2
echo "$OUT/strait_${VERSION}_${ARCH}.deb"
