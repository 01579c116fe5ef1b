package vk

import (
	"errors"
	"fmt"

	vk "github.com/vulkan-go/vulkan"
)

// ResultError is a failing VkResult together with the Vulkan call that returned it.
type ResultError struct {
	Call   string    // the Vulkan entry point, e.g. "vkAllocateMemory"
	Result vk.Result // the result code
}

// Error formats the error as "vkAllocateMemory: VK_ERROR_OUT_OF_DEVICE_MEMORY".
func (e *ResultError) Error() string {
	return fmt.Sprintf("%s: %s", e.Call, resultName(e.Result))
}

// ErrOutOfDeviceMemory matches (with errors.Is) any ResultError that reports
// VK_ERROR_OUT_OF_DEVICE_MEMORY or VK_ERROR_OUT_OF_HOST_MEMORY.
var ErrOutOfDeviceMemory = errors.New("vulkan: out of memory")

// Is reports whether target is ErrOutOfDeviceMemory and the result is an out-of-memory code.
func (e *ResultError) Is(target error) bool {
	return target == ErrOutOfDeviceMemory &&
		(e.Result == vk.ErrorOutOfDeviceMemory || e.Result == vk.ErrorOutOfHostMemory)
}

// check turns a VkResult into nil or a *ResultError naming the call.
func check(call string, r vk.Result) error {
	if r == vk.Success {
		return nil
	}
	return &ResultError{Call: call, Result: r}
}

var resultNames = map[vk.Result]string{
	vk.Success:                    "VK_SUCCESS",
	vk.NotReady:                   "VK_NOT_READY",
	vk.Timeout:                    "VK_TIMEOUT",
	vk.EventSet:                   "VK_EVENT_SET",
	vk.EventReset:                 "VK_EVENT_RESET",
	vk.Incomplete:                 "VK_INCOMPLETE",
	vk.ErrorOutOfHostMemory:       "VK_ERROR_OUT_OF_HOST_MEMORY",
	vk.ErrorOutOfDeviceMemory:     "VK_ERROR_OUT_OF_DEVICE_MEMORY",
	vk.ErrorInitializationFailed:  "VK_ERROR_INITIALIZATION_FAILED",
	vk.ErrorDeviceLost:            "VK_ERROR_DEVICE_LOST",
	vk.ErrorMemoryMapFailed:       "VK_ERROR_MEMORY_MAP_FAILED",
	vk.ErrorLayerNotPresent:       "VK_ERROR_LAYER_NOT_PRESENT",
	vk.ErrorExtensionNotPresent:   "VK_ERROR_EXTENSION_NOT_PRESENT",
	vk.ErrorFeatureNotPresent:     "VK_ERROR_FEATURE_NOT_PRESENT",
	vk.ErrorIncompatibleDriver:    "VK_ERROR_INCOMPATIBLE_DRIVER",
	vk.ErrorTooManyObjects:        "VK_ERROR_TOO_MANY_OBJECTS",
	vk.ErrorFormatNotSupported:    "VK_ERROR_FORMAT_NOT_SUPPORTED",
	vk.ErrorFragmentedPool:        "VK_ERROR_FRAGMENTED_POOL",
	vk.ErrorOutOfPoolMemory:       "VK_ERROR_OUT_OF_POOL_MEMORY",
	vk.ErrorInvalidExternalHandle: "VK_ERROR_INVALID_EXTERNAL_HANDLE",
	vk.ErrorSurfaceLost:           "VK_ERROR_SURFACE_LOST_KHR",
	vk.ErrorNativeWindowInUse:     "VK_ERROR_NATIVE_WINDOW_IN_USE_KHR",
	vk.Suboptimal:                 "VK_SUBOPTIMAL_KHR",
	vk.ErrorOutOfDate:             "VK_ERROR_OUT_OF_DATE_KHR",
	vk.ErrorValidationFailed:      "VK_ERROR_VALIDATION_FAILED_EXT",
}

// resultName is the specification's name of r, or its number.
func resultName(r vk.Result) string {
	if s, ok := resultNames[r]; ok {
		return s
	}
	switch int32(r) {
	case -13:
		return "VK_ERROR_UNKNOWN"
	case -1000257000:
		return "VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS"
	}
	return fmt.Sprintf("VkResult(%d)", int32(r))
}
