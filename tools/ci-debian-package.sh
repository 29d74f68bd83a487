#!/usr/bin/env bash
# The Debian packages, end to end, in fresh roots of one release (as root):
#
#   tools/ci-debian-package.sh bookworm|trixie
#
# 1. A fresh root (tools/debroot.sh) gets Debian's build dependencies from
#    debian/control (apt-get build-dep) and builds the packages with
#    `dpkg-buildpackage -us -uc -b`; lintian must report no error; equivs
#    builds stand-ins carrying Bareos's package names and paths.
# 2. A second fresh root gets nsca and python3-pytest, then the stand-ins
#    (Bareos's Director plugin, its common framework files and the contrib
#    plugins); its file list is taken; then `apt-get install ./*.deb` of
#    ours must swap Bareos's plugin out in one step and keep the framework
#    files.  In that root:
#    - bareosdir-sim runs a job of a Director configuration naming
#      /usr/lib/bareos/plugins through the installed python-dir.so with the
#      bundled class plugin and the NSCA sender, against nsca on 127.0.0.1;
#    - pytest-3 runs a plugin test that uses the bareos_director fixture,
#      with no venv and no PYTHONPATH;
#    - neither wrote a file into the packages' directories;
#    - `apt-get purge` (and autoremove) leaves no file that was not there
#      before, and reinstalling Bareos's (stand-in) plugin brings it back.
#
# Downloaded .debs are kept in $BAREOSDIR_PKG_CACHE/apt-RELEASE (default
# .cache/ci-debian-package, which git ignores) between runs; the roots are
# deleted on every way out.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD

release="${1:-}"
case "$release" in
  bookworm|trixie) ;;
  *) echo "usage: $0 bookworm|trixie" >&2; exit 2 ;;
esac
[[ $(id -u) == 0 ]] || { echo "$0: needs root (chroot)" >&2; exit 2; }

debroot="$here/tools/debroot.sh"
cache="${BAREOSDIR_PKG_CACHE:-$here/.cache/ci-debian-package}"
aptcache="$cache/apt-$release"
mkdir -p "$aptcache"
work="$(mktemp -d "${TMPDIR:-/tmp}/ci-debian-package.$release.XXXXXX")"
broot="$work/build-root"
iroot="$work/install-root"
cleanup() {
  "$debroot" destroy "$broot" 2>/dev/null || true
  "$debroot" destroy "$iroot" 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
start=$SECONDS
step() { echo "== ci-debian-package $release: $* ($((SECONDS - start)) s)"; }

# apt's downloads survive the roots: copied in before, back out after.
apt_cache_in() { cp -n "$aptcache"/*.deb "$1/var/cache/apt/archives/" 2>/dev/null || true; }
apt_cache_out() { cp -n "$1"/var/cache/apt/archives/*.deb "$aptcache/" 2>/dev/null || true; }

# ---------------------------------------------------------------- build root
step "build root"
"$debroot" create "$release" "$broot"
mkdir -p "$broot/build/bareosdir"
# The working tree as it is (CI builds what it tests), without build output.
tar -C "$here" --exclude=./.git --exclude=./.venv --exclude='./build*' \
    --exclude=./.cache --exclude=./obj-cmake --exclude=./.pybuild \
    --exclude='__pycache__' --exclude='*.so' -cf - . \
  | tar -C "$broot/build/bareosdir" -xf -
apt_cache_in "$broot"

cat > "$broot/build/build.sh" <<'EOF'
#!/bin/bash
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends build-essential lintian equivs >/dev/null
cd /build/bareosdir
apt-get build-dep -y -qq --no-install-recommends ./ >/dev/null
echo "build dependencies: $(dpkg-checkbuilddeps && echo satisfied)"
# noautodbgsym: the -dbgsym packages are not part of what is installed.
DEB_BUILD_OPTIONS=noautodbgsym dpkg-buildpackage -us -uc -b > /build/dpkg-buildpackage.log 2>&1 || {
  tail -n 60 /build/dpkg-buildpackage.log; exit 1; }
grep -E "^(dpkg-buildpackage|bareosdir-sim): " /build/dpkg-buildpackage.log || true
# Debian's flags reached both builds, and no warning was turned into an error.
grep -q -- "-D_FORTIFY_SOURCE=" /build/dpkg-buildpackage.log
if grep -E -- "-Werror( |$)" /build/dpkg-buildpackage.log; then
  echo "a plain -Werror reached the package build" >&2; exit 1
fi
# Nor a compiler warning (a _FORTIFY_SOURCE redefinition, for instance).
if grep -E "^[^ ]+\.[ch]:[0-9]+(:[0-9]+)?: warning: |^<command-line>: warning: " /build/dpkg-buildpackage.log; then
  echo "the package build has compiler warnings" >&2; exit 1
fi
cd /build
echo "lintian $(lintian --version | awk '{print $2}'):"
lintian --display-level '>=warning' --fail-on error ./*.changes || {
  echo "lintian reported errors" >&2; exit 1; }

# Stand-ins for Bareos's packages (equivs): its names and its paths.
mkdir -p /build/standins && cd /build/standins
ext=$(python3 -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
printf 'stand-in for the Director plugin of Bareos; not loadable\n' > python3-dir.so
printf 'stand-in for the bareosdir extension of Bareos; not loadable\n' > "bareosdir$ext"
for f in BareosDirWrapper.py BareosDirPluginBaseclass.py bareos-dir-class-plugin.py \
         BareosDirPluginNscaSender.py bareos-dir-nsca-sender.py; do
  printf 'raise ImportError("Bareos stand-in %s imported: bareosdir must use its own")\n' "$f" > "$f"
done
common() { cat <<EOC
Section: admin
Priority: optional
Standards-Version: 4.6.2
Version: 25.0.0-1
Maintainer: bareosdir CI <ci@invalid.example>
Architecture: all
EOC
}
{ common; cat <<EOC
Package: bareos-director-python3-plugin
Provides: bareos-director-python-plugin
Conflicts: bareos-director-python-plugin
Replaces: bareos-director-python-plugin
Files: python3-dir.so /usr/lib/bareos/plugins/
 bareosdir$ext /usr/lib/python3/dist-packages/
Description: stand-in for Bareos's Director Python 3 plugin (test only)
EOC
} > plugin.ctl
{ common; cat <<EOC
Package: bareos-director-python-plugins-common
Files: BareosDirWrapper.py /usr/lib/bareos/plugins/
 BareosDirPluginBaseclass.py /usr/lib/bareos/plugins/
 bareos-dir-class-plugin.py /usr/lib/bareos/plugins/
Description: stand-in for Bareos's Director Python plugin framework (test only)
EOC
} > common.ctl
{ common; cat <<EOC
Package: bareos-contrib-director-python-plugins
Depends: bareos-director-python3-plugin (= 25.0.0-1)
Files: BareosDirPluginNscaSender.py /usr/lib/bareos/plugins/
 bareos-dir-nsca-sender.py /usr/lib/bareos/plugins/
Description: stand-in for Bareos's contrib Director plugins (test only)
EOC
} > contrib.ctl
for c in plugin common contrib; do equivs-build "$c.ctl" >/dev/null 2>&1; done
ls /build/*.deb /build/standins/*.deb
EOF
step "building the packages (dpkg-buildpackage, lintian, equivs)"
rc=0
"$debroot" run "$broot" bash /build/build.sh || rc=$?
apt_cache_out "$broot"
((rc == 0)) || { echo "ci-debian-package $release: build failed" >&2; exit 1; }
mkdir -p "$work/debs" "$work/standins"
cp "$broot"/build/*.deb "$work/debs/"
cp "$broot"/build/standins/*.deb "$work/standins/"
"$debroot" destroy "$broot"

# -------------------------------------------------------------- install root
step "install root"
"$debroot" create "$release" "$iroot"
mkdir -p "$iroot/ci/debs" "$iroot/ci/standins" "$iroot/ci/plugin-test"
cp "$work"/debs/*.deb "$iroot/ci/debs/"
cp "$work"/standins/*.deb "$iroot/ci/standins/"
apt_cache_in "$iroot"

# The plugin test of a plugin author: the README's example.
sed -n '/^# test_myplugin.py/,/^```$/p' README.md | sed '$d' > "$iroot/ci/plugin-test/test_myplugin.py"
grep -q bareos_director "$iroot/ci/plugin-test/test_myplugin.py"

cat > "$iroot/ci/install.sh" <<'EOF'
#!/bin/bash
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
plugins=/usr/lib/bareos/plugins
site=/usr/lib/python3/dist-packages
fail() { echo "FAIL: $*" >&2; exit 1; }
pkgstate() { dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | tr -d ' ' || true; }
# The file system without what changes anyway (apt and dpkg state, logs).
snapshot() {
  find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \
       -o -path /ci -o -path /root -o -path /var/lib/dpkg -o -path /var/lib/apt \
       -o -path /var/cache -o -path /var/log -o -path /var/tmp \) -prune -o -print | sort
}

apt-get update -qq
apt-get install -y -qq --no-install-recommends nsca python3-pytest >/dev/null

echo "-- stand-ins for Bareos's packages"
apt-get install -y -qq ./ci/standins/*.deb >/dev/null
[[ $(pkgstate bareos-contrib-director-python-plugins) == ii ]] || fail "stand-ins not installed"
snapshot > /ci/before
ls "$site"/bareosdir.cpython-* >/dev/null

echo "-- (3) apt-get install ./*.deb swaps Bareos's plugin for ours"
apt-get install -y ./ci/debs/*.deb > /ci/apt-install.log 2>&1 || { cat /ci/apt-install.log; fail "apt-get install"; }
grep -E "^(Removing|Setting up) " /ci/apt-install.log || true
for p in bareos-director-python3-plugin bareos-contrib-director-python-plugins; do
  [[ $(pkgstate "$p") != ii ]] || fail "$p is still installed"
done
[[ $(pkgstate bareos-director-python-plugins-common) == ii ]] || fail "the common framework package went away"
for f in BareosDirWrapper.py BareosDirPluginBaseclass.py bareos-dir-class-plugin.py; do
  [[ -f $plugins/$f ]] || fail "$plugins/$f (common) is gone"
done
for f in python-dir.so python3-dir.so; do
  [[ -f $plugins/$f && ! -L $plugins/$f ]] || fail "$plugins/$f is not a regular file"
  [[ $(dpkg -S "$plugins/$f" | cut -d: -f1) == bareosdir-director-plugin ]] || fail "$plugins/$f is not ours"
done
if ls "$site"/bareosdir.cpython-* 2>/dev/null; then fail "Bareos's bareosdir extension is still there"; fi
[[ $(cd / && python3 -c 'import bareosdir; print(bareosdir.__file__)') == "$site/bareosdir/__init__.py" ]] \
  || fail "python3 imports another bareosdir"
touch /ci/installed-mark
sleep 1

echo "-- (1) bareosdir-sim through $plugins/python-dir.so, class plugin and NSCA sender"
mkdir -p /ci/nsca /ci/director
: > /ci/nsca/nsca.cmd
port=5667
cat > /ci/nsca/nsca.cfg <<EOC
pid_file=/ci/nsca/nsca.pid
server_address=127.0.0.1
server_port=$port
nsca_user=root
nsca_group=root
command_file=/ci/nsca/nsca.cmd
alternate_dump_file=/ci/nsca/dump
aggregate_writes=0
append_to_file=1
max_packet_age=30
decryption_method=1
password=ci-secret
EOC
/usr/sbin/nsca -f -c /ci/nsca/nsca.cfg --single & nsca_pid=$!
trap 'kill $nsca_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
  sleep 0.1
done
cat > /ci/director/bareos-dir.conf <<EOC
Director {
  Name = bareos-dir
  Password = "secret"
  Messages = Daemon
  Plugin Directory = $plugins
  Plugin Names = "python"
}
Job {
  Name = "BackupClient1"
  Type = Backup
  Level = Full
  Client = bareos-fd
  Storage = File
  Pool = Full
  # bareos-dir-class-plugins: the bundled loader under the seed's name, which
  # Bareos does not ship: Bareos's framework files (the stand-ins, which
  # raise ImportError) stay in the Plugin Directory, where files are found
  # before bundled ones of the same names, and must not be imported.
  Dir Plugin Options = "python:instance=0:module_name=bareos-dir-class-plugins:testoption=testparam"
  Dir Plugin Options = "python:instance=1:module_name=bareos-dir-nsca-sender"
                       ":monitorHost=127.0.0.1:monitorPort=$port:password=ci-secret"
                       ":checkHost=ci-host:checkService=ci-backup"
}
EOC
bareosdir-sim -c /ci/director/bareos-dir.conf -j BackupClient1 -d 100 > /ci/sim.out 2> /ci/sim.err \
  || { cat /ci/sim.out /ci/sim.err; fail "bareosdir-sim exited $?"; }
cat /ci/sim.out
grep -q "1 of 1 jobs OK" /ci/sim.out || fail "the job did not end OK"
grep -q ", 0 fatal, 0 error, 0 warning messages" /ci/sim.out || fail "the job logged a warning or error"
for _ in $(seq 100); do grep -q PROCESS_SERVICE_CHECK_RESULT /ci/nsca/nsca.cmd && break; sleep 0.1; done
grep "PROCESS_SERVICE_CHECK_RESULT;ci-host;ci-backup;0;" /ci/nsca/nsca.cmd || {
  cat /ci/nsca/nsca.cmd; fail "nsca got no OK check result"; }
grep -q "loaded plugin $plugins/python-dir.so as \"python\"" /ci/sim.err \
  || { cat /ci/sim.err; fail "$plugins/python-dir.so was not loaded"; }
grep -q "BareosDirPluginBaseclass: job BackupClient1\..* ended: status T" /ci/sim.err \
  || { cat /ci/sim.err; fail "the class plugin did not see the job end"; }
kill $nsca_pid; wait $nsca_pid 2>/dev/null || true
trap - EXIT

echo "-- the Director (simulator) wrote no file into the packages' directories"
new=$(find "$plugins" "$site/bareosdir" "$site"/bareosdir-*-info /usr/bin/bareosdir-sim \
      -newer /ci/installed-mark 2>/dev/null || true)
[[ -z $new ]] || fail "written after installation: $new"

echo "-- (2) pytest-3 with the bareos_director fixture, no venv, no PYTHONPATH"
(cd /ci/plugin-test && env -u PYTHONPATH pytest-3 -q -p no:cacheprovider test_myplugin.py) \
  || fail "pytest-3"
# (pytest run as root writes its own assertion-rewritten bytecode of the
# plugin modules, *.cpython-3X-pytest-*.pyc, into dist-packages; py3clean
# removes it with the package: the purge check below covers it.)

echo "-- (4) purge leaves nothing behind; Bareos's plugin comes back"
apt-get purge -y -qq bareosdir-director-plugin python3-bareosdir >/dev/null
apt-get autoremove --purge -y -qq >/dev/null
[[ ! -e $plugins/python-dir.so && ! -e $plugins/python3-dir.so ]] || fail "a plugin file is left"
snapshot > /ci/after
left=$(comm -13 /ci/before /ci/after)
[[ -z $left ]] || fail "left behind after purge: $left"
apt-get install -y -qq ./ci/standins/bareos-director-python3-plugin_*.deb >/dev/null
[[ $(dpkg -S "$plugins/python3-dir.so" | cut -d: -f1) == bareos-director-python3-plugin ]] \
  || fail "reinstalling Bareos's plugin did not bring python3-dir.so back"
echo "install root: all checks passed"
EOF
step "installing and testing in a second fresh root"
rc=0
"$debroot" run "$iroot" bash /ci/install.sh || rc=$?
apt_cache_out "$iroot"
((rc == 0)) || { echo "ci-debian-package $release: FAILED" >&2; exit 1; }
step "passed"
