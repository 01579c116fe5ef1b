# vktrain: make demo runs the main job; make test runs the checks CI runs.
GO      ?= go
BIN     := bin/vktrain
export PATH := $(PATH):/usr/local/go/bin

.PHONY: all setup build demo test vet fmt-check shaders check-shaders bench clean

all: build

## setup: install the Debian packages needed to build, test and run (only missing ones)
setup:
	.ci/setup.sh

## build: the vktrain binary into bin/
build:
	$(GO) build -o $(BIN) ./cmd/vktrain

## demo: set up, list the Vulkan devices, and run the kernel smoke test on the default one
demo: setup build
	$(BIN) devices
	$(BIN) smoke

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

## test: set up, vet, check shaders, and run every test with the validation layer on
test: setup fmt-check vet check-shaders
	VKTRAIN_VALIDATE=1 $(GO) test -count=1 -timeout 20m ./...

## bench: runtime benchmarks (go test -bench) on the default device
bench:
	$(GO) test -run XXX -bench . -benchmem ./vk/

clean:
	rm -rf bin
