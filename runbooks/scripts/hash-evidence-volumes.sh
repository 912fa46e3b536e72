#!/bin/sh
# On the forensic workstation: list the block devices and hash every whole disk except the
# one holding the root filesystem — the evidence volumes attached by ec2.attach_evidence_volumes.
# Reads only; mounts nothing. Sent by runbooks/forensic-clean-room.yaml through SSM.
set -u
echo "===== block devices ====="
lsblk -d -o NAME,SIZE,SERIAL,TYPE,MODEL
root_disk="$(lsblk -no PKNAME "$(findmnt -no SOURCE /)" 2>/dev/null | head -n 1)"
echo "===== sha256 of evidence disks (root disk ${root_disk:-unknown} skipped) ====="
for disk in $(lsblk -dnpo NAME,TYPE | awk '$2 == "disk" {print $1}'); do
  [ "$disk" = "/dev/$root_disk" ] && continue
  serial="$(lsblk -dno SERIAL "$disk")"
  echo "$(sha256sum "$disk" | cut -d' ' -f1) $disk serial=$serial"
done
