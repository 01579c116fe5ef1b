# vktrain: make demo runs the main job; make test runs the checks CI runs.
GO      ?= go
BIN     := bin/vktrain
export PATH := $(PATH):/usr/local/go/bin

.PHONY: all setup build demo train test vet fmt-check shaders check-shaders bench clean

all: build

## setup: install the Debian packages needed to build, test and run (only missing ones)
setup:
	.ci/setup.sh

## build: the vktrain binary into bin/
build:
	$(GO) build -o $(BIN) ./cmd/vktrain

## demo: set up, list the Vulkan devices, then train AlexNet from scratch at 64x64 on the
## built-in synthetic set (offline; it prints its expected time), evaluate it and write runs/demo
demo: setup build
	$(BIN) devices
	rm -rf runs/demo
	$(BIN) train --data synthetic --pretrained none --init kaiming --image-size 64 --batch 8 \
		--lr 0.01 --epochs 1 --train-limit 3000 --test-limit 500 --log-every 75 --out runs/demo

## train: the reference experiment (downloads CIFAR-10 and torchvision's pretrained AlexNet)
train: setup build
	$(BIN) train

## shaders: compile shaders/*.comp (as listed in shaders/kernels.txt) into the committed SPIR-V
shaders:
	shaders/build.sh shaders/spv

## check-shaders: fail if the committed SPIR-V differs from a fresh build
check-shaders:
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && shaders/build.sh $$tmp && \
	if ! diff -r $$tmp shaders/spv >/dev/null; then \
		echo "check-shaders: committed SPIR-V is stale; run 'make shaders' and commit shaders/spv" >&2; \
		diff -rq $$tmp shaders/spv >&2; exit 1; \
	fi && echo "check-shaders: SPIR-V up to date"

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:" >&2; echo "$$out" >&2; exit 1; fi

vet:
	$(GO) vet ./...

## test: set up, vet, check shaders, run every test with the validation layer on,
## then the GPU check's dry run on the default device (make gpu-dryrun)
test: setup fmt-check vet check-shaders
	VKTRAIN_VALIDATE=1 $(GO) test -count=1 -timeout 60m ./...
	$(MAKE) --no-print-directory gpu-dryrun

## bench: runtime benchmarks (go test -bench) on the default device
bench:
	$(GO) test -run XXX -bench . -benchmem ./vk/

clean:
	rm -rf bin

.PHONY: parity bench-step gpu-bundle gpu-dryrun compare-learning track-torch

## compare-learning: vktrain and PyTorch (CPU) trained under the same recipe, several
## seeds each, on ../shared/data/cifar-10-full at 64x64 batch 64 by default (hours on a
## CPU; CMP_* variables size it, see layers/testdata/compare_learning.sh): accuracy per
## epoch, mean and spread over seeds, and runs/compare/compare.png
compare-learning: build
	VKTRAIN_SETUP_EXTRA="python3-torch python3-torchvision" .ci/setup.sh
	layers/testdata/compare_learning.sh

## track-torch: vktrain and PyTorch (CPU) from the same initial parameters, dropout off, the
## files' order: both running losses per logged step, their relative difference and when it
## passes 1% and 10% (minutes on a CPU; TRK_* variables, see layers/testdata/track_torch.sh)
track-torch: build
	VKTRAIN_SETUP_EXTRA="python3-torch python3-torchvision" .ci/setup.sh && layers/testdata/track_torch.sh

## gpu-bundle: everything a GPU machine without Go or a package registry needs for
## .ci/gpu-check.sh (binaries, compiled tests, the Vulkan loader and validation
## layer as .debs, the PyTorch scripts, the CIFAR-10 subset) in .gpu-bundle/,
## under 60 MiB; on the GPU machine: bash .gpu-bundle/tree/.ci/gpu-check.sh OUTDIR
gpu-bundle:
	GO="$(GO)" .ci/gpu-bundle.sh .gpu-bundle

## gpu-dryrun: the GPU check on the default device (lavapipe here) with tiny budgets,
## from a fresh bundle in a temporary folder, so that the script cannot rot
gpu-dryrun:
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	GO="$(GO)" GPU_BUNDLE_XZ=-1 GPU_BUNDLE_ALLOW_NO_DATA=1 .ci/gpu-bundle.sh $$tmp/bundle && \
	bash $$tmp/bundle/tree/.ci/gpu-check.sh --dry-run $$tmp/out

## parity: full-size parity with PyTorch: installs python3-torch and python3-torchvision if
## missing, writes the real modified AlexNet's fixtures at 224 (gen_parity.py --full) and
## torchvision ResNet-18's (--resnet18: SGD and AdamW in training mode, SGD in eval mode) into
## a temporary directory, and compares two steps there (logits, loss, gradients, state_dict)
parity:
	VKTRAIN_SETUP_EXTRA="python3-torch python3-torchvision" .ci/setup.sh
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	PARITY_DIR=$$tmp /usr/bin/python3 layers/testdata/gen_parity.py --full && \
	PARITY_DIR=$$tmp /usr/bin/python3 layers/testdata/gen_parity.py --resnet18 && \
	VKTRAIN_PARITY_DIR=$$tmp VKTRAIN_VALIDATE=1 $(GO) test -count=1 -timeout 60m -v -run '^TestNetworkParity(Full|ResNet18)$$' ./layers/

## bench-step: a training step of the modified AlexNet (forward, loss, backward, SGD) at 224
## with batch 4 and 64 and at 64x64 with batch 64: vktrain on the default device beside PyTorch
## on the CPU with 2 threads, in images/s, and their ratio. Installs python3-torch and, for a
## fair comparison, the OpenMP OpenBLAS (BENCH_BLAS= keeps the BLAS already installed);
## BENCH_STEPS timed steps per run (default 3), BENCH_ROUNDS interleaved rounds (default 2).
BENCH_BLAS ?= libopenblas0-openmp
BENCH_STEPS ?= 3
BENCH_ROUNDS ?= 2
bench-step:
	VKTRAIN_SETUP_EXTRA="python3-torch python3-torchvision $(BENCH_BLAS)" .ci/setup.sh
	BENCH_STEPS=$(BENCH_STEPS) BENCH_ROUNDS=$(BENCH_ROUNDS) GO="$(GO)" layers/testdata/bench_step.sh
