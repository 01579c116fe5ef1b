#!/usr/bin/env bash
# make gpu-bundle: builds into one git-ignored folder everything a GPU machine
# with no Go toolchain and no package registry needs to run .ci/gpu-check.sh:
#   payload.tar.xz  bin/: vktrain and the compiled tests of vk and layers
#                   (go test -c); data/: the CIFAR-10 subset (10,000 training and
#                   1,000 test images), copied because ../shared does not travel.
#                   Compressed (xz: 57 MiB -> about 35) so that the bundle and the
#                   working tree fit the 64 MiB that travels to a GPU machine
#   debs/           the Vulkan loader (libvulkan1) and the validation layer, as
#                   Debian packages that gpu-check.sh unpacks privately there
#   tree/           what the binaries and scripts read: layers/testdata (parity
#                   fixtures, PyTorch scripts), layers/bench/torch_bench.py,
#                   .ci/gpu-check.sh
#   MANIFEST        git revision, build time, host, sizes
# Usage: .ci/gpu-bundle.sh [DIR] (default .gpu-bundle). Set CIFAR_DIR to take the
# data from elsewhere (GPU_BUNDLE_ALLOW_NO_DATA=1: without it, the synthetic set
# is trained on instead), GPU_BUNDLE_XZ to change the compression level (default -6;
# make gpu-dryrun uses -1). Fails if the bundle passes GPU_BUNDLE_MAX_MIB (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.gpu-bundle}
max_mib=${GPU_BUNDLE_MAX_MIB:-60}
cifar=${CIFAR_DIR:-../shared/data/cifar-10-batches-bin}
go=${GO:-go}

rm -rf "$out"
mkdir -p "$out"/{debs,tree/layers,tree/.ci} "$out/payload"/{bin,data/cifar-10-batches-bin}

echo "gpu-bundle: building binaries"
ldflags="-s -w"
"$go" build -ldflags "$ldflags" -o "$out/payload/bin/vktrain" ./cmd/vktrain
"$go" test -c -ldflags "$ldflags" -o "$out/payload/bin/vk.test" ./vk
"$go" test -c -ldflags "$ldflags" -o "$out/payload/bin/layers.test" ./layers

echo "gpu-bundle: downloading the Vulkan loader and validation layer packages"
# The GPU machine is x86-64 whatever this host is; fetch amd64 packages with
# their own package lists so that this host's apt state is left alone.
lists=$(mktemp -d)
trap 'rm -rf "$lists"' EXIT
mkdir -p "$lists/partial"
apt_opts=(-o APT::Architecture=amd64 -o APT::Architectures=amd64 -o "Dir::State::Lists=$lists" -qq)
apt-get "${apt_opts[@]}" update
(cd "$out/debs" && apt-get "${apt_opts[@]}" download libvulkan1 vulkan-validationlayers)

echo "gpu-bundle: scripts and fixtures"
cp -r layers/testdata "$out/tree/layers/"
mkdir -p "$out/tree/layers/bench"
cp layers/bench/torch_bench.py "$out/tree/layers/bench/"
cp .ci/gpu-check.sh "$out/tree/.ci/"

echo "gpu-bundle: data from $cifar"
if [ ! -f "$cifar/data_batch_1.bin" ] && [ "${GPU_BUNDLE_ALLOW_NO_DATA:-0}" = 1 ]; then
  echo "gpu-bundle: no CIFAR-10 subset at $cifar: the bundle trains on the synthetic set" >&2
  rmdir "$out/payload/data/cifar-10-batches-bin"
else
  for f in data_batch_1.bin test_batch.bin batches.meta.txt; do
    if [ ! -f "$cifar/$f" ]; then
      echo "gpu-bundle: $cifar/$f not found (set CIFAR_DIR to a folder of the CIFAR-10 binary files)" >&2
      exit 1
    fi
    cp "$cifar/$f" "$out/payload/data/cifar-10-batches-bin/"
  done
fi
echo "gpu-bundle: compressing binaries and data"
(cd "$out/payload" && find . -type f -printf '%s %p\n' | sort -k2) > "$out/payload.list"
tar -C "$out/payload" -cf - . | xz "${GPU_BUNDLE_XZ:--6}" -T0 > "$out/payload.tar.xz"
rm -rf "$out/payload"

{
  echo "revision $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
  echo "go $("$go" env GOVERSION)"
  (cd "$out" && find . -type f ! -name MANIFEST ! -name payload.list -printf '%s %p\n' | sort -k2)
  echo "payload.tar.xz holds:"
  sed 's/^/  /' "$out/payload.list"
} > "$out/MANIFEST"
rm "$out/payload.list"

bytes=$(du -sb "$out" | cut -f1)
mib=$(( (bytes + (1 << 20) - 1) >> 20 ))
echo "gpu-bundle: $out is $mib MiB ($bytes bytes); carry it to the GPU machine and run: bash $out/tree/.ci/gpu-check.sh OUTDIR"
if [ "$mib" -gt "$max_mib" ]; then
  echo "gpu-bundle: $out is over $max_mib MiB" >&2
  exit 1
fi
