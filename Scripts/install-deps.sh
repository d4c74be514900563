#!/usr/bin/env bash
# Installs the Debian packages capfilt builds against. Idempotent: does nothing when all are present.
set -euo pipefail
packages=(libopenblas-dev libdnnl-dev libsqlite3-dev libjpeg62-turbo-dev libpng-dev libwebp-dev libsnappy-dev libzstd-dev zlib1g-dev pkg-config)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "installing: ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
