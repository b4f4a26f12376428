#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine, builds, and runs the demo (file origin, no services).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
apt_need ca-certificates openssl gcc make
build_all
exec "$ROOT/scripts/demo.sh"
