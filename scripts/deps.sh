#!/bin/sh
# Installs what pmbus needs to build and test, from Debian's packages, if
# anything is missing.  Safe to run again: it installs nothing when all is
# there.  Runs apt-get through sudo when not root.
set -eu

PACKAGES="build-essential cmake pkg-config libzmq3-dev libczmq-dev \
libmsgpack-dev libconfig-dev python3 python3-zmq python3-msgpack clang \
libclang-rt-dev valgrind procps strace scdoc man-db"

missing=""
for pkg in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
