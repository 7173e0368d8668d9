#!/usr/bin/env bash
# Turn a root file system built with `build-rootfs.sh --profile appliance` into a bootable GPT
# disk image (UEFI, systemd-boot), without loop devices: the ESP is filled with mtools and
# the root partition with `mkfs.ext4 -d`.
#
#   images/make-disk.sh ROOTFS OUT.img [SIZE_GIB]     (needs: dosfstools mtools fdisk e2fsprogs)
#
# NOTE: not exercised by the test suite (no UEFI firmware to boot it here); first boot on a
# real box or `qemu-system-x86_64 -bios OVMF.fd -drive file=OUT.img,format=raw` is the check.
set -euo pipefail
root="$1" out="$2" size_gib="${3:-8}"
arch=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['arch'])" \
       "$root/etc/luutru-image.json")
case "$arch" in amd64) efi=BOOTX64.EFI sdboot=systemd-bootx64.efi ;;
                arm64) efi=BOOTAA64.EFI sdboot=systemd-bootaa64.efi ;; esac
kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -1)
[ -f "$kernel" ] && [ -f "$initrd" ] || { echo "make-disk: no kernel in $root (profile appliance?)" >&2; exit 2; }
root_uuid=6f4a1b5e-8d1c-4a0e-9c2b-6c7a2f0e1a01   # fixed PARTUUID: the kernel command line names it
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
esp_mib=256
# ESP
truncate -s ${esp_mib}M "$work/esp.img"
mkfs.vfat -F 32 -n LUUTRU-ESP "$work/esp.img" >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
mcopy -i "$work/esp.img" "$root/usr/lib/systemd/boot/efi/$sdboot" "::/EFI/BOOT/$efi"
mcopy -i "$work/esp.img" "$kernel" ::/vmlinuz
mcopy -i "$work/esp.img" "$initrd" ::/initrd.img
printf 'default luutru.conf\ntimeout 0\n' > "$work/loader.conf"
printf 'title luutru\nlinux /vmlinuz\ninitrd /initrd.img\noptions root=PARTUUID=%s rw quiet\n' \
    "$root_uuid" > "$work/luutru.conf"
mcopy -i "$work/esp.img" "$work/loader.conf" ::/loader/loader.conf
mcopy -i "$work/esp.img" "$work/luutru.conf" ::/loader/entries/luutru.conf
# root
printf 'PARTUUID=%s / ext4 errors=remount-ro 0 1\n' "$root_uuid" > "$root/etc/fstab"
root_mib=$(( size_gib * 1024 - esp_mib - 2 ))
mkfs.ext4 -q -L luutru-root -d "$root" "$work/root.img" ${root_mib}M
# disk
truncate -s ${size_gib}G "$out"
sfdisk -q "$out" <<PART
label: gpt
start=1MiB, size=${esp_mib}MiB, type=uefi, name=esp
start=$((1 + esp_mib))MiB, size=${root_mib}MiB, type=linux, uuid=$root_uuid, name=root
PART
dd if="$work/esp.img" of="$out" bs=1M seek=1 conv=notrunc status=none
dd if="$work/root.img" of="$out" bs=1M seek=$((1 + esp_mib)) conv=notrunc status=none
echo "$out"
