#!/usr/bin/env bash
# Build a Debian 12 root file system for the luutru appliance with debootstrap, install luutru
# from its wheel into /opt/luutru, and enable its systemd units. Run as root.
#
#   images/build-rootfs.sh --out DIR [--arch amd64|arm64] [--profile core|appliance]
#                          [--wheel luutru-*.whl] [--cache DIR] [--mirror URL] [--extras tpm]
#
# core       what luutru, its hooks and the TPM library need (the test builds this one)
# appliance  core + kernel, systemd-boot, scanning, OCR, time sync: what make-disk.sh boots
#
# Downloads happen here, at build time only (Debian packages, Python wheels); the appliance
# never downloads anything at run time. --cache (default var/image-cache) keeps the
# debootstrap tarball and the wheelhouse, so a re-run needs no network.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
out="" arch="$(dpkg --print-architecture)" profile="core" wheel="" extras="tpm"
suite="bookworm" mirror="http://deb.debian.org/debian" cache="$repo/var/image-cache"
pip="${PIP:-$repo/.venv/bin/pip}"

while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --arch) arch="$2"; shift 2 ;;
        --profile) profile="$2"; shift 2 ;;
        --wheel) wheel="$2"; shift 2 ;;
        --extras) extras="$2"; shift 2 ;;
        --suite) suite="$2"; shift 2 ;;
        --mirror) mirror="$2"; shift 2 ;;
        --cache) cache="$2"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "build-rootfs: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$out" ] || { echo "build-rootfs: --out DIR is required" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "build-rootfs: run as root (debootstrap, chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null || {
    echo "build-rootfs: debootstrap is missing (apt-get install debootstrap)" >&2; exit 2; }
case "$arch" in amd64|arm64) ;; *) echo "build-rootfs: --arch amd64 or arm64" >&2; exit 2 ;; esac
case "$profile" in core|appliance) ;; *) echo "build-rootfs: --profile core|appliance" >&2; exit 2 ;; esac
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
    echo "build-rootfs: $out is not empty" >&2; exit 2
fi
foreign=0
[ "$arch" = "$(dpkg --print-architecture)" ] || foreign=1
if [ $foreign = 1 ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    echo "build-rootfs: building $arch here needs qemu-user-static with binfmt" >&2; exit 2
fi

lists=("$here/packages-core.txt")
[ "$profile" = appliance ] && lists+=("$here/packages-appliance.txt")
pkgs=$(cat "${lists[@]}" | sed 's/#.*//; s/@ARCH@/'"$arch"'/' | tr -s ' \t' '\n' | sed '/^$/d' \
       | sort -u | paste -sd, -)
mkdir -p "$cache"
key=$(printf '%s %s %s %s' "$suite" "$arch" "$mirror" "$pkgs" | sha256sum | cut -c1-12)
tarball="$cache/debootstrap-$suite-$arch-$key.tgz"

mounted=()
cleanup() {
    for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
mount_chroot() {
    mount -t proc proc "$out/proc" && mounted+=("$out/proc")
    mount --bind /dev "$out/dev" && mounted+=("$out/dev")
}

# 1. The Debian base, from the cached tarball when there is one.
if [ ! -f "$tarball" ]; then
    work=$(mktemp -d)
    echo "build-rootfs: downloading $suite/$arch packages into $tarball" >&2
    debootstrap --variant=minbase --arch="$arch" --include="$pkgs" \
        --make-tarball="$tarball.part" "$suite" "$work" "$mirror" >&2
    rm -rf "$work"
    mv "$tarball.part" "$tarball"
fi
mkdir -p "$out"
if [ $foreign = 1 ]; then
    debootstrap --variant=minbase --arch="$arch" --include="$pkgs" --foreign \
        --unpack-tarball="$tarball" "$suite" "$out" "$mirror" >&2
    cp "$(command -v qemu-aarch64-static)" "$out/usr/bin/"
    chroot "$out" /debootstrap/debootstrap --second-stage >&2
else
    debootstrap --variant=minbase --arch="$arch" --include="$pkgs" \
        --unpack-tarball="$tarball" "$suite" "$out" "$mirror" >&2
fi

# 2. luutru from its wheel, with its dependencies as wheels pinned by requirements.lock.
if [ -z "$wheel" ]; then
    wdir=$(mktemp -d)
    (cd "$repo" && "$pip" wheel --quiet --no-deps --wheel-dir "$wdir" .) >&2
    wheel=$(ls "$wdir"/luutru-*.whl)
fi
constraints="$cache/constraints.txt"
grep -E '^[A-Za-z0-9_.-]+==' "$repo/requirements.lock" | sed 's/ .*//' > "$constraints"
spec="/tmp/install/$(basename "$wheel")${extras:+[$extras]}"
mkdir -p "$out/tmp/install"
cp "$wheel" "$constraints" "$out/tmp/install/"
mount_chroot
chroot "$out" python3 -m venv /opt/luutru >&2
if [ $foreign = 0 ]; then
    house="$cache/wheelhouse-$arch"
    mkdir -p "$house"
    rm -f "$house"/luutru-*.whl  # left by an interrupted run: see below
    # Wheels for the host's Python 3.11 = Debian 12's; built once, then taken from the cache.
    "$pip" wheel --quiet --wheel-dir "$house" --find-links "$house" \
        --constraint "$constraints" "$wheel${extras:+[$extras]}" >&2
    # The wheelhouse keeps dependencies only: a luutru wheel of the same version built from
    # another tree would conflict with the one being installed.
    rm -f "$house"/luutru-*.whl
    cp -r "$house" "$out/tmp/install/wheelhouse"
    chroot "$out" /opt/luutru/bin/pip install --quiet --no-index \
        --find-links /tmp/install/wheelhouse --constraint /tmp/install/constraints.txt "$spec" >&2
else
    # No cross wheels for tpm2-pytss: build inside the emulated system (slow, but only once).
    chroot "$out" apt-get install -y -q --no-install-recommends build-essential libtss2-dev \
        pkg-config python3-dev >&2
    chroot "$out" /opt/luutru/bin/pip install --quiet --constraint \
        /tmp/install/constraints.txt "$spec" >&2
fi
rm -rf "$out/tmp/install"
ln -sf /opt/luutru/bin/luutru "$out/usr/local/bin/luutru"

# 3. The units, the service user, its folders, and the technician's entry point.
unitdir="$out/usr/lib/systemd/system"
mkdir -p "$unitdir" "$out/usr/lib/sysusers.d" "$out/usr/lib/tmpfiles.d" "$out/etc/default" \
    "$out/usr/local/sbin" "$out/usr/lib/sysctl.d" "$out/usr/lib/modules-load.d"
cp "$here"/systemd/*.service "$unitdir/"
cp -r "$here/systemd/luutru-.service.d" "$unitdir/"
install -m 0644 "$here/rootfs/sysusers-luutru.conf" "$out/usr/lib/sysusers.d/luutru.conf"
install -m 0644 "$here/rootfs/tmpfiles-luutru.conf" "$out/usr/lib/tmpfiles.d/luutru.conf"
install -m 0644 "$here/rootfs/default-luutru" "$out/etc/default/luutru"
install -m 0644 "$here/rootfs/sysctl-luutru.conf" "$out/usr/lib/sysctl.d/60-luutru.conf"
install -m 0644 "$here/rootfs/modules-luutru.conf" "$out/usr/lib/modules-load.d/luutru.conf"
install -m 0755 "$here/rootfs/luutru-provision" "$out/usr/local/sbin/luutru-provision"
systemd-sysusers --root="$out" >&2
systemd-tmpfiles --root="$out" --create --prefix=/var/lib/luutru --prefix=/etc/luutru >&2
systemctl --root="$out" enable luutru-first-boot.service luutru-shutdown.service \
    luutru-health.service luutru-web.service luutru-sync.service >&2
version=$(chroot "$out" /opt/luutru/bin/luutru --version | awk '{print $NF}')
printf '{"luutru": "%s", "suite": "%s", "arch": "%s", "profile": "%s", "built": "%s"}\n' \
    "$version" "$suite" "$arch" "$profile" "$(date -u +%FT%TZ)" > "$out/etc/luutru-image.json"
rm -rf "$out/var/cache/apt/archives/"*.deb "$out/var/lib/apt/lists/"*
echo "$out"
