#!/bin/sh
# Installs the Debian 12 packages mbxd needs to build, test and run.
# Used by the README's two commands; safe to run again. clang and
# libclang-rt-14-dev (libFuzzer) build the fuzz targets in tests/fuzz; python3,
# systemd (systemd-analyze), groff, dpkg-dev and debhelper run tests/packaging;
# tests/lint checks the shell scripts with shellcheck and the C with clang-format.
set -eu
pkgs="build-essential cmake pkg-config libevent-dev libyaml-dev libseccomp-dev check
      libssl-dev libjansson-dev passwd util-linux libsystemd-dev dbus
      clang libclang-rt-14-dev
      python3 systemd groff-base man-db binutils dpkg-dev debhelper bash-completion
      shellcheck clang-format"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
