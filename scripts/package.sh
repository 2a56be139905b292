#!/usr/bin/env bash
# Packages a built tensorinit as the runtime artifact that goes into inference images:
#
#   dist/tensorinit-<version>-linux-<arch>/
#     bin/tensorinit                  the first stage: static (glibc included), stripped; blocks
#                                     every signal first, then execs tensorinit-full beside it
#     bin/tensorinit-full             the program; stripped; needs only glibc (everything else
#                                     is static)
#     lib/tensorinit/libcurl.so.4     + its whole non-glibc dependency closure, each with
#                                     RPATH $ORIGIN so they resolve each other from here;
#                                     dlopened only when a remote source needs libcurl
#     share/doc/tensorinit/           third-party copyright files, THIRD-PARTY (lib -> package)
#   dist/tensorinit-<version>-linux-<arch>.tar.gz
#   dist/tensorinit-<version>-linux-<arch>.debug   (debug info, with a debuglink in tensorinit-full)
#   dist/tensorinit-<version>-linux-<arch>.first-stage.debug   (the same for bin/tensorinit)
#
# Install it by copying the tree under a prefix: the two binaries stay side by side (tensorinit
# execs <its own directory>/tensorinit-full), bin/ and lib/ siblings (tensorinit-full looks for
# <dir of its executable>/../lib/tensorinit/libcurl.so.4). The Dockerfile puts it under /usr/local.
#
# Fails when the first stage links anything dynamically, when tensorinit-full links anything but
# glibc, when the closure does not resolve from its own
# directory, or when any file needs a glibc symbol newer than MAX_GLIBC (default 2.35: Ubuntu
# 22.04, the oldest glibc of the images inference servers ship in).
#
# Environment: TENSORINIT (the first stage; default build/tensorinit; tensorinit-full is taken
# from beside it), DIST (default dist/),
# MAX_GLIBC, CURL_LIB (the libcurl.so.4 to ship; default the system's), SOURCE_DATE_EPOCH,
# GZIP_LEVEL (default 9; the tests use 1).
# Needs: binutils (objcopy, objdump, strip), patchelf, ldd; dpkg for the copyright files.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
binary=${TENSORINIT:-$root/build/tensorinit}
dist=${DIST:-$root/dist}
max_glibc=${MAX_GLIBC:-2.35}

die() { echo "package.sh: $*" >&2; exit 1; }
for tool in objcopy objdump readelf strip patchelf ldd tar gzip; do
  command -v "$tool" >/dev/null || die "needs $tool (Debian: apt-get install binutils patchelf)"
done
[ -x "$binary" ] || die "no tensorinit binary at $binary (build it first: NINJA_TARGETS=tensorinit bash scripts/build.sh)"
full=$(dirname "$binary")/tensorinit-full
[ -x "$full" ] || die "no tensorinit-full beside $binary (NINJA_TARGETS=tensorinit builds both)"

version=$("$binary" --version | awk '{print $2}')
[ -n "$version" ] || die "$binary --version printed no version"
name=tensorinit-$version-linux-$(uname -m)
out=$dist/$name
rm -rf "$out" "$dist/$name.tar.gz" "$dist/$name.debug" "$dist/$name.first-stage.debug"
mkdir -p "$out/bin" "$out/lib/tensorinit" "$out/share/doc/tensorinit/third-party"

# The sonames glibc itself provides: present in every image, never shipped.
is_glibc() {
  case $1 in
    linux-vdso.so.* | ld-linux*.so.* | libc.so.6 | libm.so.6 | libmvec.so.1 | libpthread.so.0 | \
    libdl.so.2 | librt.so.1 | libresolv.so.2 | libutil.so.1 | libanl.so.1 | libBrokenLocale.so.1 | \
    libnss_*.so.2 | libthread_db.so.1 | libc_malloc_debug.so.0) return 0 ;;
  esac
  return 1
}
needed() { objdump -p "$1" | awk '$1 == "NEEDED" {print $2}'; }

# --- the binaries: the first stage static, the program glibc only; debug info split off --------
objdump -p "$binary" | grep -q 'NEEDED' && die "$binary (the first stage) links shared libraries: it must be static"
readelf -l "$binary" | grep -q 'program interpreter' && die "$binary (the first stage) has a dynamic loader: it must be static"
for lib in $(needed "$full"); do
  is_glibc "$lib" || die "$full links $lib: only glibc may be linked dynamically (link it statically)"
done
ship_binary() {  # ship_binary SOURCE NAME DEBUG_FILE
  cp "$1" "$out/bin/$2"
  objcopy --only-keep-debug "$out/bin/$2" "$dist/$3"
  strip --strip-all "$out/bin/$2"
  (cd "$dist" && objcopy --add-gnu-debuglink="$3" "$out/bin/$2")
}
ship_binary "$full" tensorinit-full "$name.debug"
ship_binary "$binary" tensorinit "$name.first-stage.debug"

# --- libcurl and its closure ---------------------------------------------------------------------
curl=${CURL_LIB:-$({ ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null || true; } | awk '$1 == "libcurl.so.4" && /x86-64/ && !found {print $NF; found = 1}')}
curl=${curl:-/usr/lib/x86_64-linux-gnu/libcurl.so.4}
[ -e "$curl" ] || die "no libcurl.so.4 to ship (Debian: apt-get install libcurl4)"
declare -A shipped=([libcurl.so.4]=$(readlink -f "$curl"))
ldd_out=$(ldd "$curl") || die "ldd $curl failed"
if grep -q "not found" <<<"$ldd_out"; then die "$curl has unresolved dependencies: $(grep 'not found' <<<"$ldd_out" | xargs)"; fi
while read -r soname arrow path _; do
  [ "$arrow" = "=>" ] || continue
  is_glibc "$soname" || shipped[$soname]=$(readlink -f "$path")
done <<<"$ldd_out"
for soname in "${!shipped[@]}"; do
  cp "${shipped[$soname]}" "$out/lib/tensorinit/$soname"
  chmod 0644 "$out/lib/tensorinit/$soname"
  # DT_RPATH, not RUNPATH: RPATH is searched before LD_LIBRARY_PATH (inference images set it to
  # CUDA directories) and also applies to the dependencies' own lookups.
  patchelf --force-rpath --set-rpath '$ORIGIN' "$out/lib/tensorinit/$soname"
done

# Every shipped library must find its non-glibc dependencies beside itself: each one it needs is
# shipped, and its RPATH is $ORIGIN. (test_container_rootfs.sh loads the closure for real in a
# root filesystem that holds nothing but glibc.)
for lib in "$out"/lib/tensorinit/*; do
  rpath=$(objdump -p "$lib" | awk '$1 == "RPATH" {print $2}')
  [ "$rpath" = '$ORIGIN' ] || die "$(basename "$lib"): RPATH is '$rpath', not \$ORIGIN"
  for dep in $(needed "$lib"); do
    is_glibc "$dep" || [ -e "$out/lib/tensorinit/$dep" ] || die "$(basename "$lib") needs $dep, which is not shipped"
  done
done

# --- glibc symbol versions -----------------------------------------------------------------------
max_version() { objdump -T "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -1; }
newer() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -1)" = "$1" ]; }
echo "glibc symbol versions required (at most $max_glibc allowed):"
overall=0 too_new=()
echo "  static      bin/tensorinit"
for f in "$out/bin/tensorinit-full" "$out"/lib/tensorinit/*; do
  v=$(max_version "$f"); v=${v:-none}
  printf '  GLIBC_%-6s %s\n' "$v" "${f#"$out"/}"
  [ "$v" = none ] && continue
  newer "$v" "$overall" && overall=$v
  newer "$v" "$max_glibc" && too_new+=("${f#"$out"/} ($(objdump -T "$f" | grep -o "GLIBC_$v) [^ ]*" | sed 's/.*) //' | xargs))")
done
if objdump -T "$out/bin/tensorinit-full" | grep -cE 'GLIBCXX_|CXXABI_' >/dev/null; then die "bin/tensorinit-full needs the shared libstdc++"; fi
[ ${#too_new[@]} -eq 0 ] || die "needs glibc newer than $max_glibc: ${too_new[*]}"
echo "  highest: GLIBC_$overall"

# --- licences of what is shipped (shared) or linked in (static) ------------------------------------
if command -v dpkg >/dev/null; then
  doc=$out/share/doc/tensorinit
  # The Debian package of each shipped file, in one dpkg query (each costs a second). Usr-merged
  # files are registered under /lib or /usr/lib: ask for both.
  declare -A package_of=()
  while IFS= read -r line; do
    pkg=${line%%:*} path=${line#*: }
    package_of[${path#/usr}]=$pkg
  done < <(for f in "${shipped[@]}"; do echo "$f"; echo "${f#/usr}"; done | xargs dpkg -S 2>/dev/null || true)
  static=(libstdc++-12-dev libyaml-cpp-dev libzstd-dev libsodium-dev zlib1g-dev libfmt-dev nlohmann-json3-dev libboost-dev libc6-dev)
  declare -A version_of=()
  while read -r pkg version; do version_of[${pkg%%:*}]=$version; done \
    < <(dpkg-query -W -f='${Package} ${Version}\n' "${package_of[@]}" "${static[@]}" 2>/dev/null || true)
  {
    echo "Shared libraries in lib/tensorinit (from Debian $(cat /etc/debian_version 2>/dev/null || echo '?')):"
    for soname in $(printf '%s\n' "${!shipped[@]}" | sort); do
      pkg=${package_of[${shipped[$soname]#/usr}]:-}
      [ -n "$pkg" ] || { echo "  $soname: package unknown"; continue; }
      echo "  $soname: $pkg ${version_of[$pkg]:-}"
      [ -f "/usr/share/doc/$pkg/copyright" ] && cp "/usr/share/doc/$pkg/copyright" "$doc/third-party/$pkg.copyright"
    done
    echo "Linked statically into bin/tensorinit-full (and bin/tensorinit, the first stage, which also holds"
    echo "glibc, libc6-dev, LGPL-2.1+: relink it from the tensorinit sources, scripts/build.sh):"
    for pkg in "${static[@]}"; do
      [ -n "${version_of[$pkg]:-}" ] || continue
      echo "  $pkg ${version_of[$pkg]}"
      [ -f "/usr/share/doc/$pkg/copyright" ] && cp "/usr/share/doc/$pkg/copyright" "$doc/third-party/$pkg.copyright"
    done
    if objdump -t "$binary" 2>/dev/null | grep -c cudaGetDeviceCount >/dev/null; then
      echo "  the NVIDIA CUDA runtime (cudart_static), redistributable under the CUDA Toolkit EULA"
    fi
  } >"$doc/THIRD-PARTY"
fi

# --- the tarball (reproducible: sorted, owner 0, fixed mtime) ------------------------------------
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@${SOURCE_DATE_EPOCH:-0}" \
  -C "$dist" -cf - "$name" | gzip -n "-${GZIP_LEVEL:-9}" >"$dist/$name.tar.gz"
echo "packaged $out ($(du -sh "$out" | cut -f1), ${#shipped[@]} libraries in lib/tensorinit)"
echo "         $dist/$name.tar.gz ($(du -h "$dist/$name.tar.gz" | cut -f1))"
