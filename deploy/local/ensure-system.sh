#!/bin/bash
# Install the system packages fedimg and its tests need, when they are missing (Debian 12, as root).
# Elsewhere it only says what is missing and fails, because the tests cannot run without them.
set -euo pipefail

# package -> a file that proves it is installed (cheaper and more honest than parsing dpkg output)
declare -A PROVES=(
  [gcc]=/usr/bin/gcc
  [python3-dev]=/usr/include/python3.11/Python.h
  [python3-venv]=/usr/lib/python3.11/ensurepip/__init__.py
  [libkrb5-dev]=/usr/bin/krb5-config        # koji -> requests-gssapi -> gssapi builds from source
  [libpq-dev]=/usr/bin/pg_config            # psycopg2 builds from source (datanommer/datagrepper)
  [qemu-utils]=/usr/bin/qemu-img
  [xz-utils]=/usr/bin/xz
  [tar]=/bin/tar
  [util-linux]=/usr/sbin/blkid              # tests read partition tables back
  [file]=/usr/bin/file
  [e2fsprogs]=/usr/sbin/mkfs.ext4
  [rabbitmq-server]=/usr/lib/rabbitmq/bin/rabbitmq-server
  [postgresql]=/usr/bin/pg_ctlcluster
  [chromium]=/usr/bin/chromium
  [chromium-driver]=/usr/bin/chromedriver  # the browser tests drive Chromium through selenium
  [curl]=/usr/bin/curl
  [systemd]=/usr/bin/systemd-analyze       # tests verify deploy/systemd units with it
  [skopeo]=/usr/bin/skopeo                  # the containers target pushes with it
  [docker-registry]=/usr/bin/docker-registry  # the real OCI registry the container tests push to
  [apache2-utils]=/usr/bin/htpasswd         # that registry's basic-auth password file
)
missing=()
for pkg in "${!PROVES[@]}"; do
  [ -e "${PROVES[$pkg]}" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "ensure-system: missing system packages: ${missing[*]} (install them, e.g. apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "ensure-system: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
