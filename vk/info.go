package vk

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// DeviceType is a Vulkan physical device type.
type DeviceType int

// Device types, as VkPhysicalDeviceType.
const (
	TypeOther DeviceType = iota
	TypeIntegrated
	TypeDiscrete
	TypeVirtual
	TypeCPU
)

func (t DeviceType) String() string {
	switch t {
	case TypeIntegrated:
		return "integrated GPU"
	case TypeDiscrete:
		return "discrete GPU"
	case TypeVirtual:
		return "virtual GPU"
	case TypeCPU:
		return "CPU"
	}
	return "other"
}

// rank orders device types for automatic choice: discrete > integrated > virtual > CPU > other.
func (t DeviceType) rank() int {
	switch t {
	case TypeDiscrete:
		return 4
	case TypeIntegrated:
		return 3
	case TypeVirtual:
		return 2
	case TypeCPU:
		return 1
	}
	return 0
}

// MemoryHeap is one Vulkan memory heap.
type MemoryHeap struct {
	Size        uint64
	DeviceLocal bool
}

// MemoryType is one Vulkan memory type.
type MemoryType struct {
	Heap                                   int
	DeviceLocal, HostVisible, HostCoherent bool
	HostCached                             bool
}

// DeviceInfo describes a physical device: what `vktrain devices` prints and what
// kernels consult to pick their variants.
type DeviceInfo struct {
	Index         int
	Name          string
	Type          DeviceType
	VendorID      uint32
	DeviceID      uint32
	APIVersion    string // e.g. "1.3.230"
	DriverVersion uint32
	DriverName    string // from VkPhysicalDeviceDriverProperties, when the device has Vulkan 1.2
	DriverInfo    string
	DeviceUUID    [16]byte
	CacheUUID     [16]byte // pipelineCacheUUID

	Heaps       []MemoryHeap
	MemoryTypes []MemoryType

	SubgroupSize uint32
	// SubgroupShuffle: compute shaders may use subgroup shuffles
	// (VK_SUBGROUP_FEATURE_SHUFFLE_BIT in a compute-capable subgroup).
	SubgroupShuffle         bool
	MaxWorkgroupSize        [3]uint32
	MaxWorkgroupInvocations uint32
	MaxWorkgroupCount       [3]uint32
	SharedMemoryBytes       uint32
	MaxStorageBufferRange   uint32
	MaxTexelBufferElements  uint32
	MaxPushConstantsBytes   uint32
	MinStorageBufferAlign   uint64
	MinTexelBufferAlign     uint64
	TimestampPeriodNs       float32
	TimestampsOnCompute     bool
}

// UnifiedMemory reports whether one memory type is device-local, host-visible and
// coherent, so that buffers can be mapped directly with no staging copy.
func (d *DeviceInfo) UnifiedMemory() bool {
	for _, t := range d.MemoryTypes {
		if t.DeviceLocal && t.HostVisible && t.HostCoherent {
			return true
		}
	}
	return false
}

// IsLavapipe reports whether the device is Mesa's CPU driver (llvmpipe/lavapipe).
func (d *DeviceInfo) IsLavapipe() bool {
	return d.Type == TypeCPU && strings.Contains(strings.ToLower(d.Name), "llvmpipe")
}

// ChooseDevice picks a device. An empty selector takes the best type (discrete >
// integrated > virtual > CPU, the first of equals); a number selects by index; any
// other text selects the first device whose name contains it, ignoring case.
// It returns the index into devs and a sentence saying why.
func ChooseDevice(devs []DeviceInfo, selector string) (int, string, error) {
	if len(devs) == 0 {
		return -1, "", ErrNoDevice
	}
	selector = strings.TrimSpace(selector)
	if selector == "" {
		order := make([]int, len(devs))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return devs[order[a]].Type.rank() > devs[order[b]].Type.rank() })
		best := order[0]
		return best, fmt.Sprintf("best device type available (%s); choose another with --device or VKTRAIN_DEVICE", devs[best].Type), nil
	}
	if n, err := strconv.Atoi(selector); err == nil {
		if n < 0 || n >= len(devs) {
			return -1, "", fmt.Errorf("device index %d out of range: %d device(s) found", n, len(devs))
		}
		return n, fmt.Sprintf("selected by index %d", n), nil
	}
	for i, d := range devs {
		if strings.Contains(strings.ToLower(d.Name), strings.ToLower(selector)) {
			return i, fmt.Sprintf("name contains %q", selector), nil
		}
	}
	names := make([]string, len(devs))
	for i, d := range devs {
		names[i] = fmt.Sprintf("%d: %s", i, d.Name)
	}
	return -1, "", fmt.Errorf("no Vulkan device matches %q (devices: %s)", selector, strings.Join(names, "; "))
}
