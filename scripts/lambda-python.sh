#!/usr/bin/env bash
# Provides the interpreter the bootstrap Lambda's tests run its inline code under: CPython 3.14,
# the version of the function's `python3.14` runtime, with the boto3 the tests pin.
# Usage: scripts/lambda-python.sh CACHE_DIR; prints the path of a `python` wrapper to stdout.
#
# Debian 12 has no Python 3.14 and nothing outside the package registries can be fetched, so the
# interpreter comes from Debian unstable's binary packages: they are downloaded with apt-get (a
# private apt configuration, the system's is untouched), unpacked with dpkg-deb into a folder of
# their own, and run through that folder's own dynamic loader and libraries, so nothing is
# installed into the system and no root is needed to run it. Idempotent: a second call only
# prints the path.
set -euo pipefail

cache="$1"
dir="$cache/lambda-python3.14"
wrapper="$dir/python"
# Bump when the package list or the boto3 pin changes.
stamp_text="v1 boto3==1.40.70"
if [ -x "$wrapper" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp_text" ]; then
  echo "$wrapper"
  exit 0
fi

echo "==> unpacking CPython 3.14 from Debian unstable into $dir" >&2
rm -rf "$dir"
mkdir -p "$dir/apt/lists/partial" "$dir/apt/archives/partial" "$dir/debs" "$dir/root"
echo 'deb http://deb.debian.org/debian sid main' > "$dir/apt/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$dir/apt/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$dir/apt/lists"
  -o "Dir::Cache=$dir/apt"
  -o "Dir::State::status=/dev/null"
  -o "APT::Sandbox::User=root"
  -qq
)
apt-get "${apt_opts[@]}" update >&2
# The interpreter, its standard library, and the shared libraries its binary and the extension
# modules the function imports (ssl, hashlib, json, zlib, lzma, bz2, uuid, socket) link.
packages=(python3.14-minimal libpython3.14-minimal libpython3.14-stdlib libc6 libssl3t64
  zlib1g libexpat1 libffi8 libzstd1 liblzma5 libbz2-1.0 libuuid1 media-types netbase tzdata)
(cd "$dir/debs" && apt-get "${apt_opts[@]}" download "${packages[@]}") >&2
for deb in "$dir"/debs/*.deb; do
  dpkg-deb -x "$deb" "$dir/root"
done

# boto3 as the Lambda runtime ships it: pure-Python wheels on the import path (the runtime keeps
# them in /var/runtime; here a folder of our own).
pip="${PIP:-pip3}"
"$pip" install --quiet --disable-pip-version-check --no-compile --only-binary=:all: \
  --python-version 3.14 --implementation cp --target "$dir/runtime" boto3==1.40.70 >&2

root="$dir/root"
cat > "$wrapper" <<EOF
#!/bin/sh
# CPython 3.14 from Debian unstable, run with its own loader and libraries (scripts/lambda-python.sh).
PYTHONHOME="$root/usr" PYTHONPATH="$dir/runtime\${PYTHONPATH:+:\$PYTHONPATH}" exec "$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \\
  --library-path "$root/usr/lib/x86_64-linux-gnu" "$root/usr/bin/python3.14" "\$@"
EOF
chmod +x "$wrapper"
"$wrapper" -c 'import ssl, json, urllib.request, boto3' >&2
rm -rf "$dir/debs" "$dir/apt"
echo "$stamp_text" > "$dir/.stamp"
echo "$wrapper"
