#!/usr/bin/env bash
# Compiles every kernel listed in kernels.txt with glslc into OUTDIR/<name>.spv and
# checks each with spirv-val. Usage: shaders/build.sh OUTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out"
for tool in glslc spirv-val; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool not found: run scripts/setup.sh (apt-get install glslc spirv-tools)" >&2; exit 1; }
done
while read -r name src defines; do
  case "$name" in ''|'#'*) continue ;; esac
  # shellcheck disable=SC2086
  glslc --target-env=vulkan1.1 -O -fshader-stage=compute -I "$here" $defines -o "$out/$name.spv" "$here/$src"
  spirv-val --target-env vulkan1.1 "$out/$name.spv"
done < "$here/kernels.txt"
