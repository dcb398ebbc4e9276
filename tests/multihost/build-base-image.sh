#!/usr/bin/env bash
# Build (once) the local base image for the multi-host test: a Debian bookworm
# rootfs made with debootstrap and imported with `docker import`. No registry pull.
# Cached by tag: if the image exists, this does nothing (set REBUILD=1 to force).
set -o errexit -o nounset -o pipefail

BASE_TAG="${BASE_TAG:-dcos-rs/base:bookworm-2}"
SUITE="${SUITE:-bookworm}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
# Tools dcos_install.sh needs on a node, plus python3 (the harness's stand-in dcosd
# and port-in-use listener) and systemd (systemd-analyze verify).
PACKAGES="${PACKAGES:-bash,coreutils,curl,ca-certificates,tar,gzip,iproute2,procps,findutils,grep,sed,gawk,util-linux,python3,systemd}"

if [[ "${REBUILD:-0}" != 1 ]] && docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  echo "base image $BASE_TAG already present (cached)"; exit 0
fi
[[ $(id -u) == 0 ]] || { echo "error: building the base image needs root (debootstrap)" >&2; exit 1; }
if ! command -v debootstrap >/dev/null; then
  echo "installing debootstrap (apt-get)…"
  { apt-get install -y debootstrap || { apt-get update && apt-get install -y debootstrap; }; } >/dev/null \
    || { echo "error: debootstrap missing and apt-get install debootstrap failed" >&2; exit 1; }
fi

work="$(mktemp -d /tmp/dcos-rs-rootfs.XXXXXX)"
trap 'rm -rf "$work"' EXIT
echo "debootstrap $SUITE into $work (takes a few minutes)…"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$MIRROR"
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
tar -C "$work/rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$BASE_TAG"
echo "built $BASE_TAG"
