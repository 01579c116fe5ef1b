#!/usr/bin/env bash
# Installs the Debian packages vktrain needs to build, test and run, only those
# missing. Usable by a user (make setup) and by CI. Set VKTRAIN_SETUP_EXTRA to
# name more packages (e.g. python3-torch python3-torchvision for make parity).
set -euo pipefail

packages=(
  gcc                                  # cgo
  libvulkan1 libvulkan-dev             # the Vulkan loader (vulkan-go dlopens libvulkan.so from -dev)
  mesa-vulkan-drivers                  # lavapipe: Vulkan on the CPU when there is no GPU
  vulkan-validationlayers              # VK_LAYER_KHRONOS_validation, on in tests
  vulkan-tools                         # vulkaninfo, for diagnosing a driver
  glslc spirv-tools                    # make shaders / make check-shaders
  libx11-dev libxcursor-dev libxrandr-dev libxinerama-dev libxi-dev libxxf86vm-dev libgl1-mesa-dev  # GLFW (vktrain-watch)
  xvfb x11-apps                        # a virtual X server and xwd, for vktrain-watch's window tests
)
# shellcheck disable=SC2206
packages+=(${VKTRAIN_SETUP_EXTRA:-})

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}"
