#!/usr/bin/env bash
# Satchel's whole CI in one script (`npm run ci`): system packages the tests need, dependencies,
# build, lint, then every test (unit, property, integration on real file systems).
#
# - As root, installs missing Debian packages (checked with `dpkg -s`; `apt-get update` runs
#   once, and only when something is missing). Not root: checks them and fails naming what
#   to install, because the integration tests need them and must not skip silently.
# - Exits non-zero as soon as a stage fails; each stage prints a header and its duration.
# - SATCHEL_PROPERTY_RUNS (default 1000) sets how many cases each property test tries.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CI_START=$SECONDS
section() {
  printf '\n==================== %s ====================\n' "$*"
  SECTION_START=$SECONDS
}
done_section() {
  printf -- '---- ok (%ss)\n' "$((SECONDS - SECTION_START))"
}

# ---- system packages ----
section "system packages"
# Plain packages, then the FAT32 test's real-kernel mount (libguestfs appliance + a kernel),
# which pulls ~90 packages: installed without recommends.
PACKAGES=(rsync unison lsyncd exfat-fuse exfatprogs dosfstools inotify-tools openssh-server openssh-client rclone iproute2 util-linux pure-ftpd lftp curl openssl git)
PACKAGES_NO_RECOMMENDS=(guestmount linux-image-amd64)

missing_of() {
  local p
  for p in "$@"; do
    dpkg -s "$p" > /dev/null 2>&1 || printf '%s\n' "$p"
  done
}
mapfile -t MISSING < <(missing_of "${PACKAGES[@]}")
mapfile -t MISSING_NR < <(missing_of "${PACKAGES_NO_RECOMMENDS[@]}")

ALL_MISSING=("${MISSING[@]}" "${MISSING_NR[@]}")

if ((${#ALL_MISSING[@]} == 0)); then
  echo "all present: ${PACKAGES[*]} ${PACKAGES_NO_RECOMMENDS[*]}"
elif [ "$(id -u)" -ne 0 ]; then
  echo "ci: missing Debian packages: ${ALL_MISSING[*]}" >&2
  echo "hint: run as root, or: sudo apt-get install -y ${ALL_MISSING[*]}" >&2
  exit 1
else
  export DEBIAN_FRONTEND=noninteractive
  echo "installing: ${ALL_MISSING[*]}"
  apt-get update -qq
  if ((${#MISSING[@]} > 0)); then
    apt-get install -y -qq "${MISSING[@]}"
  fi
  if ((${#MISSING_NR[@]} > 0)); then
    apt-get install -y -qq --no-install-recommends "${MISSING_NR[@]}"
  fi
fi
# vsftpd conflicts with pure-ftpd as a package: its binary is unpacked beside, not installed.
VSFTPD_DIR=/opt/vsftpd
if [ ! -x "$VSFTPD_DIR/usr/sbin/vsftpd" ] && ! command -v vsftpd > /dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ci: vsftpd is missing; as root: cd /tmp && apt-get download vsftpd && dpkg-deb -x vsftpd_*.deb $VSFTPD_DIR" >&2
    exit 1
  fi
  VSFTPD_TMP=$(mktemp -d)
  (cd "$VSFTPD_TMP" && { apt-get download vsftpd > /dev/null 2>&1 || { apt-get update -qq && apt-get download vsftpd > /dev/null; }; } &&
    dpkg-deb -x vsftpd_*.deb "$VSFTPD_DIR")
  rm -rf "$VSFTPD_TMP"
  echo "unpacked vsftpd into $VSFTPD_DIR"
fi
done_section

# ---- node dependencies ----
section "node dependencies"
node --version
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi
done_section

# ---- build ----
section "build (tsc)"
rm -rf dist
npm run build
done_section

# ---- lint ----
section "lint (eslint + prettier --check)"
npm run lint
done_section

# ---- tests ----
section "tests: unit, property and integration (node scripts/run-tests.mjs all)"
export SATCHEL_PROPERTY_RUNS="${SATCHEL_PROPERTY_RUNS:-1000}"
echo "SATCHEL_PROPERTY_RUNS=$SATCHEL_PROPERTY_RUNS"
node scripts/run-tests.mjs all
done_section

printf '\n==================== CI passed in %ss ====================\n' "$((SECONDS - CI_START))"
