#!/usr/bin/env bash
# package.sh builds dist/tern_VERSION_ARCH.deb with dpkg-deb: the binary
# (BIN, built by make), the systemd unit and its sysusers file, the man
# page, the bash, zsh and fish completions and an example configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/tern}
VERSION=${VERSION:-dev}
# A Debian version starts with a digit and holds [A-Za-z0-9.+~-] only.
deb_version=$(printf '%s' "$VERSION" | sed 's/^v//; s/[^A-Za-z0-9.+~]/+/g')
case "$deb_version" in [0-9]*) ;; *) deb_version="0.0.0~$deb_version" ;; esac
arch=$(dpkg --print-architecture)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
pkg="$root/tern"

install -D -m 0755 "$BIN" "$pkg/usr/bin/tern"
install -D -m 0644 contrib/tern.service "$pkg/usr/lib/systemd/system/tern.service"
install -D -m 0644 contrib/tern.sysusers "$pkg/usr/lib/sysusers.d/tern.conf"
install -d -m 0755 "$pkg/usr/share/man/man1"
gzip -9n < docs/tern.1 > "$pkg/usr/share/man/man1/tern.1.gz"
chmod 0644 "$pkg/usr/share/man/man1/tern.1.gz"
install -D -m 0644 contrib/completion/tern.bash "$pkg/usr/share/bash-completion/completions/tern"
install -D -m 0644 contrib/completion/_tern "$pkg/usr/share/zsh/vendor-completions/_tern"
install -D -m 0644 contrib/completion/tern.fish "$pkg/usr/share/fish/vendor_completions.d/tern.fish"
doc="$pkg/usr/share/doc/tern"
install -D -m 0644 contrib/tern.yaml "$doc/examples/tern.yaml"
install -D -m 0644 contrib/gslb.example.com.zone "$doc/examples/gslb.example.com.zone"
install -D -m 0644 LICENSE "$doc/copyright"
install -d -m 0750 "$pkg/etc/tern"

install -d "$pkg/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: tern
Version: $deb_version
Architecture: $arch
Maintainer: Tern developers <tern@example.invalid>
Installed-Size: $size
Section: net
Priority: optional
Homepage: https://github.com/ternlb/tern
Description: authoritative DNS global server load balancer
 Tern answers load-balanced names with the addresses of healthy
 backends (round robin, weight, geography, load, failover, stickiness),
 from zone files and a YAML configuration, replicated with Raft; with an
 XDP packet dispatcher for direct server return inside a site.
CONTROL

cat > "$pkg/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
	if command -v systemd-sysusers >/dev/null 2>&1; then
		systemd-sysusers /usr/lib/sysusers.d/tern.conf
	elif ! getent passwd tern >/dev/null; then
		adduser --system --group --home /var/lib/tern --no-create-home tern
	fi
	chown root:tern /etc/tern
	chmod 0750 /etc/tern
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
fi
SCRIPT
cat > "$pkg/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl disable --now tern.service >/dev/null 2>&1 || true
fi
SCRIPT
cat > "$pkg/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
	# The node's data (Raft log and snapshots); the user tern is kept, as
	# Debian keeps system users.
	rm -rf /var/lib/tern /var/lib/private/tern
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
SCRIPT
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm" "$pkg/DEBIAN/postrm"

mkdir -p dist
out="dist/tern_${deb_version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$out" >/dev/null
echo "$out"
