#!/bin/sh
# Volatile evidence from a Linux instance, collected before anything is stopped or isolated
# further. Sent through SSM (ssm.run_command, AWS-RunShellScript) by the firebreak runbooks;
# its SHA-256 is journaled, so the report shows exactly which script ran.
#
# Everything goes to stdout in labelled sections (SSM sends the full output to the evidence
# bucket when the step sets output_s3_bucket), and into a tarball under /var/tmp whose SHA-256
# is printed last. Read-only: it changes nothing on the instance except writing that tarball.
# When the run is sealed (`uploads: [volatile.tar.gz]`), firebreak defines firebreak_upload:
# the work happens in a tmpfs (/dev/shm) where there is one, the archive goes straight to the
# run's S3 Object Lock seal through a presigned URL, and nothing is left on the instance.
# POSIX sh and coreutils/procps/iproute2 only; missing tools are reported, not fatal.
set -u
umask 077
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
base=/var/tmp
if command -v firebreak_upload >/dev/null 2>&1 && [ -d /dev/shm ]; then base=/dev/shm; fi
out="$base/firebreak-volatile-$stamp"
mkdir -p "$out"

section() {
  name="$1"; shift
  echo "===== $name ====="
  if command -v "$1" >/dev/null 2>&1; then
    "$@" 2>&1 | tee "$out/$name.txt"
  else
    echo "($1 not available)" | tee "$out/$name.txt"
  fi
  echo
}

section collected-at date -u +%Y-%m-%dT%H:%M:%SZ
section hostname hostname
section uptime uptime
section kernel uname -a
section processes ps auxwwf
section network-connections ss -tunap
section listening-sockets ss -tlnp
section network-interfaces ip addr
section routes ip route
section arp-neighbours ip neigh
section logged-in-users w
section last-logins last -n 50
section loaded-kernel-modules lsmod
section mounts cat /proc/mounts
section crontabs sh -c 'ls -la /etc/cron* /var/spool/cron* 2>&1; cat /etc/crontab 2>&1'
section recent-auth-log sh -c 'tail -n 500 /var/log/auth.log 2>/dev/null || tail -n 500 /var/log/secure 2>/dev/null || journalctl -n 500 _COMM=sshd 2>/dev/null'
section open-files-deleted sh -c 'ls -l /proc/[0-9]*/exe 2>/dev/null | grep "(deleted)"'

# Hashes of the binaries behind running processes (a replaced or deleted binary stands out).
echo "===== running-binary-hashes ====="
for exe in /proc/[0-9]*/exe; do
  target="$(readlink "$exe" 2>/dev/null)" || continue
  pid="${exe#/proc/}"; pid="${pid%/exe}"
  hash="$(sha256sum "$exe" 2>/dev/null | cut -d' ' -f1)"
  echo "$pid $hash $target"
done | sort -u -k3 | tee "$out/running-binary-hashes.txt"
echo

tar -czf "$out.tar.gz" -C "$base" "$(basename "$out")" 2>/dev/null
echo "===== archive ====="
echo "$out.tar.gz sha256 $(sha256sum "$out.tar.gz" | cut -d' ' -f1)"
if command -v firebreak_upload >/dev/null 2>&1; then
  rm -rf "$out"
  firebreak_upload volatile.tar.gz "$out.tar.gz"
  exit $?
fi
