#!/usr/bin/env bash
# Sets up a fresh Debian machine with Node 20 for Stowage: system packages
# (installed with apt-get only when missing), npm dependencies from the
# lockfile, and the TypeScript build. Safe to run again at any time.
set -euo pipefail
cd "$(dirname "$0")"

# Build tools for native addons (better-sqlite3 compiles from source here);
# fuse3 (fusermount3) for mounts, libfuse3-dev and pkg-config
# to compile the libfuse 3 binding (native/fuse3); git and sqlite3, which the
# mount tests run inside a mount; postgresql, whose server binaries the
# PostgreSQL metadata tests run as a throwaway cluster (test/helpers/postgres.ts);
# autoconf, automake and perl (prove) to build and run pjdfstest and fsx from
# ../shared/tools (scripts/build-test-tools.mjs), the POSIX suite and the
# data-integrity exerciser the mount tests run. The sandbox host: bubblewrap
# (namespaces and seccomp), uidmap (a subordinate id range for sandbox root),
# mmdebstrap (the Debian base image), e2fsprogs and btrfs-progs (state disks),
# erofs-utils (packed images).
PACKAGES=(python3 make g++ ca-certificates fuse3 libfuse3-dev pkg-config git sqlite3 postgresql autoconf automake perl
  bubblewrap uidmap mmdebstrap e2fsprogs btrfs-progs erofs-utils)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# Sandbox root maps to the subordinate id range root:100000:65536 (never to host root).
if [ "$(id -u)" -eq 0 ]; then
  for f in /etc/subuid /etc/subgid; do
    grep -q '^root:100000:65536$' "$f" 2>/dev/null || echo 'root:100000:65536' >> "$f"
  done
fi

# The S3 tests run against moto_server (an S3-protocol server; not a Debian package). It is
# preinstalled on the project's machines; elsewhere: pip install 'moto[server]'.
command -v moto_server >/dev/null 2>&1 || echo "setup: note: moto_server not found; the S3 tests will fail until it is installed (pip install 'moto[server]')"

node -e 'const [maj] = process.versions.node.split(".").map(Number); if (maj < 20) { console.error(`setup: Node ${process.versions.node} found; Stowage needs Node 20 or newer`); process.exit(1); }'

# npm ci is the reproducible install; skip it when node_modules was installed
# from this exact lockfile and this native source (native/fuse3,
# native/pty-relay and native/ns-attach are compiled by the postinstall script).
lock_sum=$(cat package-lock.json scripts/build-native.mjs native/*/*.c native/*/binding.gyp | sha256sum | cut -d' ' -f1)
if [ "$(cat node_modules/.stowage-lock-sha256 2>/dev/null)" != "$lock_sum" ]; then
  echo "setup: installing npm dependencies (npm ci; native addons compile from source, about a minute)"
  npm ci --no-audit --no-fund
  echo "$lock_sum" > node_modules/.stowage-lock-sha256
fi
# A clone whose node_modules came from elsewhere (a worktree's symlink) has
# not compiled its own native code yet.
[ -f native/fuse3/build/Release/fuse3.node ] && [ -f native/pty-relay/build/Release/stowage-pty ] &&
  [ -f native/ns-attach/build/Release/stowage-attach ] || node scripts/build-native.mjs

echo "setup: building"
npm run build --silent

# pjdfstest and fsx for test/posix-suite.test.ts and test/fsx.test.ts, into .tools/<hash of
# ../shared/tools> (reused while that source is unchanged; the tests build it themselves otherwise).
if [ -d ../shared/tools ]; then
  node scripts/build-test-tools.mjs >/dev/null
else
  echo "setup: note: ../shared/tools not found; the POSIX suite and fsx tests will fail until it is there"
fi
echo "setup: done. Start the server with: npm start   (or: node dist/src/cli/main.js serve)"
