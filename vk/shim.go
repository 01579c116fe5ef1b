package vk

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// Handle conversions between vulkan-go's types and the shim's C types. Both are the
// same Vulkan handles: dispatchable ones are pointers, non-dispatchable ones are
// pointers on 64-bit platforms and uint64 elsewhere, so the bits are reinterpreted.

func cInstance(h vk.Instance) C.VkInstance { return *(*C.VkInstance)(unsafe.Pointer(&h)) }
func cPhysical(h vk.PhysicalDevice) C.VkPhysicalDevice {
	return *(*C.VkPhysicalDevice)(unsafe.Pointer(&h))
}
func cDevice(h vk.Device) C.VkDevice { return *(*C.VkDevice)(unsafe.Pointer(&h)) }
func cQueue(h vk.Queue) C.VkQueue    { return *(*C.VkQueue)(unsafe.Pointer(&h)) }
func cCommandBuffer(h vk.CommandBuffer) C.VkCommandBuffer {
	return *(*C.VkCommandBuffer)(unsafe.Pointer(&h))
}
func cFence(h vk.Fence) C.VkFence             { return *(*C.VkFence)(unsafe.Pointer(&h)) }
func cQueryPool(h vk.QueryPool) C.VkQueryPool { return *(*C.VkQueryPool)(unsafe.Pointer(&h)) }

// handleBits returns the 64-bit value of a handle, for vkSetDebugUtilsObjectNameEXT.
func handleBits[H any](h H) uint64 {
	switch unsafe.Sizeof(h) {
	case 8:
		return *(*uint64)(unsafe.Pointer(&h))
	case 4:
		return uint64(*(*uint32)(unsafe.Pointer(&h)))
	}
	return 0
}

// loader is the dlopen'ed Vulkan loader used by the shim.
type loader struct{ c *C.vkt_loader }

func openLoader() (loader, bool) {
	l := (*C.vkt_loader)(C.calloc(1, C.size_t(unsafe.Sizeof(C.vkt_loader{}))))
	if C.vkt_loader_open(l) == 0 {
		C.free(unsafe.Pointer(l))
		return loader{}, false
	}
	return loader{c: l}, true
}

func (l loader) close() {
	if l.c != nil {
		C.vkt_loader_close(l.c)
		C.free(unsafe.Pointer(l.c))
	}
}

// extendedInfo is what Vulkan 1.1+ reports beyond vkGetPhysicalDeviceProperties.
type extendedInfo struct {
	subgroupSize   uint32
	subgroupStages uint32
	subgroupOps    uint32
	driverName     string
	driverInfo     string
	deviceUUID     [16]byte
}

func (l loader) deviceInfo(inst vk.Instance, phys vk.PhysicalDevice) extendedInfo {
	var out C.vkt_device_info
	C.vkt_device_info_get(l.c, cInstance(inst), cPhysical(phys), &out)
	info := extendedInfo{
		subgroupSize:   uint32(out.subgroup_size),
		subgroupStages: uint32(out.subgroup_stages),
		subgroupOps:    uint32(out.subgroup_ops),
		driverName:     C.GoString(&out.driver_name[0]),
		driverInfo:     C.GoString(&out.driver_info[0]),
	}
	for i := range info.deviceUUID {
		info.deviceUUID[i] = byte(out.device_uuid[i])
	}
	return info
}

// instanceChain is a C-allocated pNext chain for VkInstanceCreateInfo.
func instanceChain(user uintptr, sync bool) unsafe.Pointer {
	s := C.int(0)
	if sync {
		s = 1
	}
	return C.vkt_instance_chain(C.uintptr_t(user), s)
}

func freeInstanceChain(p unsafe.Pointer) { C.vkt_instance_chain_free(p) }

// messenger is a VkDebugUtilsMessengerEXT.
type messenger struct{ h C.VkDebugUtilsMessengerEXT }

func (l loader) createMessenger(inst vk.Instance, user uintptr) (messenger, error) {
	var m messenger
	r := C.vkt_messenger_create(l.c, cInstance(inst), C.uintptr_t(user), &m.h)
	return m, check("vkCreateDebugUtilsMessengerEXT", vk.Result(r))
}

func (l loader) destroyMessenger(inst vk.Instance, m messenger) {
	C.vkt_messenger_destroy(l.c, cInstance(inst), m.h)
}

// deviceFns are device-level entry points called without Go allocations.
type deviceFns struct{ c *C.vkt_device_fns }

func (l loader) loadDeviceFns(inst vk.Instance, dev vk.Device) deviceFns {
	f := (*C.vkt_device_fns)(C.calloc(1, C.size_t(unsafe.Sizeof(C.vkt_device_fns{}))))
	C.vkt_device_fns_load(l.c, cInstance(inst), cDevice(dev), f)
	return deviceFns{c: f}
}

func (f deviceFns) free() {
	if f.c != nil {
		C.free(unsafe.Pointer(f.c))
	}
}

func (f deviceFns) submit(q vk.Queue, cmd vk.CommandBuffer, fence vk.Fence) vk.Result {
	return vk.Result(C.vkt_submit(f.c, cQueue(q), cCommandBuffer(cmd), cFence(fence)))
}

func (f deviceFns) waitReset(dev vk.Device, fence vk.Fence, timeoutNs uint64) vk.Result {
	return vk.Result(C.vkt_wait_reset(f.c, cDevice(dev), cFence(fence), C.uint64_t(timeoutNs)))
}

// queryResults reads count 64-bit timestamps into out, which must be C memory or
// pinned: it is a Go slice here, and the call does not retain it.
func (f deviceFns) queryResults(dev vk.Device, pool vk.QueryPool, first uint32, out []uint64) vk.Result {
	if len(out) == 0 {
		return vk.Success
	}
	return vk.Result(C.vkt_query_results(f.c, cDevice(dev), cQueryPool(pool), C.uint32_t(first),
		C.uint32_t(len(out)), (*C.uint64_t)(unsafe.Pointer(&out[0]))))
}

func (f deviceFns) setName(dev vk.Device, objType vk.ObjectType, handle uint64, name string) {
	if f.c == nil || f.c.set_object_name == nil {
		return
	}
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	C.vkt_set_name(f.c, cDevice(dev), C.VkObjectType(objType), C.uint64_t(handle), cs)
}
