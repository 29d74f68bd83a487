#!/usr/bin/env bash
# Fresh Debian root filesystems for tests and CI (needs root and mmdebstrap).
#
#   tools/debroot.sh create RELEASE DEST   # RELEASE: bookworm or trixie
#       A fresh root of RELEASE at DEST (which must not exist yet). The base
#       root is made once with `mmdebstrap --variant=$BAREOSDIR_ROOT_VARIANT`
#       (default: standard) into the cache and copied fresh (cp -a) for each
#       use; a cached base older than $BAREOSDIR_ROOT_MAX_AGE days (default 7)
#       is rebuilt. The copy has apt sources for RELEASE, -updates and
#       -security, the host's resolv.conf, and a policy-rc.d that keeps Debian
#       packages from starting their daemons.
#   tools/debroot.sh prepare RELEASE       # only make sure the cached base
#       exists and is fresh (CI builds the bases while other stages run)
#   tools/debroot.sh run DEST CMD...       # run CMD in DEST (chroot)
#       with /proc, /sys, /dev, /dev/pts and /dev/shm mounted in it; they are
#       unmounted on every way out (trap), and the exit status is CMD's.
#   tools/debroot.sh destroy DEST          # unmount whatever is left, delete
#
# Environment:
#   BAREOSDIR_ROOT_CACHE    cache directory (default: .cache/debroot in this
#                           checkout, which git ignores)
#   BAREOSDIR_ROOT_VARIANT  mmdebstrap variant (default: standard)
#   BAREOSDIR_ROOT_MIRROR   Debian mirror (default: http://deb.debian.org/debian)
#   BAREOSDIR_ROOT_MAX_AGE  days before a cached base is rebuilt (default: 7)
#
# Several creators may run at once: the cache is built under an exclusive
# flock into a temporary directory and renamed into place only when complete,
# so a creator never copies a half-written base.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
cache="${BAREOSDIR_ROOT_CACHE:-$here/.cache/debroot}"
variant="${BAREOSDIR_ROOT_VARIANT:-standard}"
mirror="${BAREOSDIR_ROOT_MIRROR:-http://deb.debian.org/debian}"
max_age="${BAREOSDIR_ROOT_MAX_AGE:-7}"

die() { echo "debroot: $*" >&2; exit 2; }
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# Mount points below $1 (absolute), deepest first.
mounts_below() {
  local root="$1"
  awk -v r="$root" '{
      p = $5; gsub(/\\040/, " ", p)
      if (p == r || index(p, r "/") == 1) print p
    }' /proc/self/mountinfo | sort -r
}

unmount_below() {
  local root="$1" m
  while IFS= read -r m; do
    [[ -n "$m" ]] || continue
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done < <(mounts_below "$root")
}

base_fresh() {   # $1: base dir; true if it exists and is young enough
  [[ -f "$1/.debroot-complete" ]] || return 1
  [[ -z "$(find "$1/.debroot-complete" -mtime +"$max_age" 2>/dev/null)" ]]
}

build_base() {   # $1 release, $2 final base dir; caller holds the lock
  local release="$1" base="$2" tmp old
  tmp="$(mktemp -d "$cache/.build-$release.XXXXXX")"
  echo "debroot: building the $release base root ($variant) in $cache (a few minutes)" >&2
  local secmirror="${mirror%/debian}/debian-security"
  # A second try: a mirror that answered badly once (a file list changing
  # under us, a dropped connection) usually answers the next time.
  local try
  for try in 1 2; do
    if mmdebstrap --quiet --variant="$variant" --include=ca-certificates \
         "$release" "$tmp" \
         "deb $mirror $release main" \
         "deb $mirror $release-updates main" \
         "deb $secmirror $release-security main" >&2; then
      break
    fi
    unmount_below "$tmp"
    rm -rf --one-file-system "$tmp"
    ((try == 1)) || die "mmdebstrap failed for $release (twice)"
    echo "debroot: mmdebstrap failed for $release; trying once more" >&2
    tmp="$(mktemp -d "$cache/.build-$release.XXXXXX")"
  done
  # After mmdebstrap, which removes the policy-rc.d it used itself.
  printf '#!/bin/sh\n# debroot: Debian packages start no daemons in this root\nexit 101\n' \
    > "$tmp/usr/sbin/policy-rc.d"
  chmod 755 "$tmp/usr/sbin/policy-rc.d"
  date -u +%FT%TZ > "$tmp/.debroot-complete"
  if [[ -e "$base" ]]; then
    old="$cache/.old-$release.$$"
    mv "$base" "$old"
    mv "$tmp" "$base"
    rm -rf --one-file-system "$old"
  else
    mv "$tmp" "$base"
  fi
}

# Takes the base's lock on fd 9 (shared) with a fresh base in place.
lock_fresh_base() {   # $1 release
  local release="$1"
  case "$release" in bookworm|trixie) ;; *) die "unknown release '$release' (bookworm or trixie)";; esac
  if ! command -v mmdebstrap >/dev/null; then
    echo "debroot: installing mmdebstrap (Debian's package)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        mmdebstrap >/dev/null ||
      die "mmdebstrap is missing and could not be installed (apt-get install mmdebstrap)"
  fi
  mkdir -p "$cache"
  base="$cache/$release-$variant"
  exec 9>"$cache/$release-$variant.lock"
  flock -s 9
  if ! base_fresh "$base"; then
    flock -u 9
    flock -x 9
    base_fresh "$base" || build_base "$release" "$base"
    flock -s 9   # downgrade: rebuilders wait until our copy is done
  fi
}

cmd_prepare() {
  (($# == 1)) || usage
  local base
  lock_fresh_base "$1"
  exec 9>&-
}

cmd_create() {
  (($# == 2)) || usage
  local release="$1" dest="$2" base
  [[ ! -e "$dest" ]] || die "$dest exists; destroy it first"
  lock_fresh_base "$release"
  mkdir -p "$(dirname "$dest")"
  cp -a "$base" "$dest"
  exec 9>&-
  rm -f "$dest/.debroot-complete"
  # apt inside reaches the mirror with the host's name resolution.
  rm -f "$dest/etc/resolv.conf"
  cp -L /etc/resolv.conf "$dest/etc/resolv.conf" 2>/dev/null || true
  [[ -x "$dest/usr/sbin/policy-rc.d" ]] || die "policy-rc.d missing in $dest"
}

cmd_run() {
  (($# >= 2)) || usage
  local dest
  dest="$(cd "$1" && pwd -P)" || die "no root at $1"
  shift
  [[ -x "$dest/bin/sh" ]] || die "$dest is not a root filesystem"
  mounted=()   # global: the EXIT trap runs after this function returned
  cleanup() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
      umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" || true
    done
  }
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  mount -t proc proc "$dest/proc"; mounted+=("$dest/proc")
  mount --bind /sys "$dest/sys"; mounted+=("$dest/sys")
  mount --bind /dev "$dest/dev"; mounted+=("$dest/dev")
  mount --bind /dev/pts "$dest/dev/pts"; mounted+=("$dest/dev/pts")
  if mountpoint -q /dev/shm; then
    mount --bind /dev/shm "$dest/dev/shm"; mounted+=("$dest/dev/shm")
  fi
  local rc=0
  env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      ${CI:+CI="$CI"} chroot "$dest" "$@" || rc=$?
  return "$rc"
}

cmd_destroy() {
  (($# == 1)) || usage
  [[ -e "$1" ]] || return 0
  local dest
  dest="$(cd "$1" && pwd -P)"
  [[ "$dest" != / ]] || die "refusing to destroy /"
  unmount_below "$dest"
  if [[ -n "$(mounts_below "$dest")" ]]; then
    die "still mounted below $dest: $(mounts_below "$dest" | tr '\n' ' ')"
  fi
  rm -rf --one-file-system "$dest"
}

(($# >= 1)) || usage
[[ "$(id -u)" == 0 ]] || die "needs root (mmdebstrap, mount, chroot)"
sub="$1"; shift
case "$sub" in
  prepare) cmd_prepare "$@" ;;
  create) cmd_create "$@" ;;
  run) cmd_run "$@" ;;
  destroy) cmd_destroy "$@" ;;
  *) usage ;;
esac
