package layers

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"vktrain/shaders"
	"vktrain/vk"
)

// GEMMVariant selects a matrix-multiply kernel.
type GEMMVariant int

// GEMM variants. Texel reads operands through uniform texel buffers, with 8x8
// results per invocation and no shared memory: the fast path on lavapipe, where
// texelFetch is vectorised and storage and shared-memory loads are not. Tiled
// stages 64x64 tiles in shared memory: the classic path for discrete GPUs.
// GEMMAuto, as a per-pass choice (Conv2D.GEMM, Linear.GEMM,
// GEMMOptions.Variant), defers to the runtime's Variant.
const (
	GEMMAuto GEMMVariant = iota
	GEMMTexel
	GEMMTiled
)

// GEMMVariants are the kernels a pass can choose between (the tuner's trials).
var GEMMVariants = []GEMMVariant{GEMMTexel, GEMMTiled}

func (v GEMMVariant) String() string {
	switch v {
	case GEMMTexel:
		return "texel"
	case GEMMTiled:
		return "tiled"
	case GEMMAuto:
		return "auto"
	}
	return fmt.Sprintf("GEMMVariant(%d)", int(v))
}

// ParseGEMMVariant reads "texel", "tiled" or "auto" ("" is auto).
func ParseGEMMVariant(s string) (GEMMVariant, error) {
	switch s {
	case "texel":
		return GEMMTexel, nil
	case "tiled":
		return GEMMTiled, nil
	case "auto", "":
		return GEMMAuto, nil
	}
	return GEMMAuto, fmt.Errorf("GEMM variant %q: want texel, tiled or auto", s)
}

// GEMMVariantFor is the kernel a pass choosing v runs: v, or for GEMMAuto
// the runtime's Variant.
func (r *Runtime) GEMMVariantFor(v GEMMVariant) GEMMVariant {
	if v == GEMMAuto {
		v = r.Variant
	}
	if v != GEMMTiled {
		return GEMMTexel
	}
	return v
}

// Runtime is a device with its compiled kernels, built on first use and cached
// per specialization.
type Runtime struct {
	Dev *vk.Device
	// Variant is the GEMM kernel of passes that choose none (GEMMAuto), and
	// of the SGD pass's reads: texel on CPU devices, tiled on GPUs.
	Variant GEMMVariant

	kernels map[string]*vk.Kernel
	dummy   *Tensor // bound where a kernel's optional operand is absent
	onesT   *Tensor // a vector of ones (bias gradients as GEMMs)
	retired []*Tensor
	// storageLimit is the most bytes bound as one storage buffer: the device's
	// maxStorageBufferRange (tests lower it to exercise split bindings).
	storageLimit int64
	// sharesA: the texel GEMM may share A's rows across a subgroup with
	// shuffles (gemm_texel_sh): the device has them in subgroups of 8 or more.
	sharesA bool
}

// NewRuntime wraps an open device, choosing kernel variants for it.
func NewRuntime(dev *vk.Device) *Runtime {
	r := &Runtime{Dev: dev, Variant: GEMMTexel, kernels: map[string]*vk.Kernel{}, storageLimit: int64(dev.Info.MaxStorageBufferRange)}
	if dev.Info.Type != vk.TypeCPU {
		r.Variant = GEMMTiled
	}
	r.sharesA = dev.Info.SubgroupShuffle && dev.Info.SubgroupSize >= 8
	return r
}

// Kernel returns the pipeline for a compiled module and specialization, building
// it the first time.
func (r *Runtime) Kernel(module string, spec map[uint32]uint32) (*vk.Kernel, error) {
	key := module
	if len(spec) > 0 {
		var b strings.Builder
		b.WriteString(module)
		for _, id := range slices.Sorted(maps.Keys(spec)) {
			fmt.Fprintf(&b, ",%d=%d", id, spec[id])
		}
		key = b.String()
	}
	if k, ok := r.kernels[key]; ok {
		return k, nil
	}
	code, err := shaders.SPIRV(module)
	if err != nil {
		return nil, err
	}
	k, err := r.Dev.NewKernel(vk.KernelSpec{Name: key, SPIRV: code, Spec: spec})
	if err != nil {
		return nil, err
	}
	r.kernels[key] = k
	return k, nil
}

// Close releases the kernels (the device stays open).
func (r *Runtime) Close() {
	for _, k := range r.kernels {
		k.Close()
	}
	clear(r.kernels)
	for _, t := range append(r.retired, r.dummy, r.onesT) {
		t.Free()
	}
	r.dummy, r.onesT, r.retired = nil, nil, nil
}

// dispatch records module (with spec) over groups workgroups.
func (r *Runtime) dispatch(s *vk.Stream, module string, spec map[uint32]uint32, groups [3]uint32, push []byte, args ...vk.Range) error {
	k, err := r.Kernel(module, spec)
	if err != nil {
		return err
	}
	return s.Dispatch(k, groups, push, args...)
}

// built reports whether a kernel of the module has been built (for tests).
func (r *Runtime) built(module string) bool {
	for key := range r.kernels {
		if key == module || strings.HasPrefix(key, module+",") {
			return true
		}
	}
	return false
}

// groups1D is the workgroup count covering n items with local size local, folded
// into a second dimension when n needs more than the device's limit in x.
func (r *Runtime) groups1D(n, local int) [3]uint32 {
	g := (n + local - 1) / local
	limit := int(r.Dev.Info.MaxWorkgroupCount[0])
	if g <= limit {
		return [3]uint32{uint32(max(g, 1)), 1, 1}
	}
	return [3]uint32{uint32(limit), uint32((g + limit - 1) / limit), 1}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func boolU32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}
