#!/bin/sh
# Fetches e2fsprogs' own test images (the source of issue 14's case 10) from
# the Debian source package, without touching the system's apt configuration:
# a private deb-src list and apt state live in DIR/apt (the machine has only
# binary apt sources). Only the tarball's tests/*/image* members are kept.
#
# Usage: bench/e2fsprogs-images.sh DIR
# Result: DIR/tests/<test>/image.gz, image.bz2, image, image.tar.bz2,
#         image*.orig.bz2 as in the tarball, and DIR/VERSION (the package
#         version). Re-running reuses what is there. Exits non-zero, loudly,
#         when the download or the extraction fails.
set -eu

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=$1
URI=${DEBSRC_URI:-http://deb.debian.org/debian}
SUITE=${DEBSRC_SUITE:-bookworm}
PKG=e2fsprogs

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
if [ -f "$DIR/VERSION" ] && [ -d "$DIR/tests" ]; then exit 0; fi

A="$DIR/apt"
mkdir -p "$A/parts" "$A/lists/partial" "$A/cache/archives/partial" "$DIR/src"
cat > "$A/parts/debsrc.sources" <<EOF
Types: deb-src
URIs: $URI
Suites: $SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt_get() {
  apt-get -q -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$A/parts" \
    -o Dir::State::Lists="$A/lists" -o Dir::Cache="$A/cache" -o APT::Sandbox::User=root "$@"
}
if ! ls "$DIR"/src/${PKG}_*.orig.tar.* >/dev/null 2>&1; then
  apt_get update >&2
  (cd "$DIR/src" && apt_get source --download-only "$PKG" >&2)
fi
TARBALL=$(ls "$DIR"/src/${PKG}_*.orig.tar.* | grep -v '\.asc$' | head -n 1)
[ -n "$TARBALL" ] || { echo "$0: no $PKG source tarball in $DIR/src" >&2; exit 1; }

rm -rf "$DIR/tests.partial"
mkdir -p "$DIR/tests.partial"
tar -xf "$TARBALL" -C "$DIR/tests.partial" --strip-components=2 --wildcards "$PKG-*/tests/*/image*"
COUNT=$(find "$DIR/tests.partial" -name 'image*' -type f | wc -l)
[ "$COUNT" -gt 200 ] || { echo "$0: only $COUNT test images in $TARBALL" >&2; exit 1; }
rm -rf "$DIR/tests"
mv "$DIR/tests.partial" "$DIR/tests"
basename "$TARBALL" | sed "s/^${PKG}_//; s/\.orig\.tar\..*//" > "$DIR/VERSION"
echo "$0: $COUNT test images of $PKG $(cat "$DIR/VERSION") in $DIR/tests" >&2
