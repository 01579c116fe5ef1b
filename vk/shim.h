// Package vk's C shim: what vulkan-go's Vulkan 1.1.88 bindings lack (properties2,
// debug utils, object names) and an allocation-free submit/wait path.
#ifndef VKTRAIN_SHIM_H
#define VKTRAIN_SHIM_H

#include <stdint.h>
#include <vulkan/vulkan.h>

// vkt_loader holds the dlopen'ed loader and its vkGetInstanceProcAddr.
typedef struct vkt_loader {
	void *lib;
	PFN_vkGetInstanceProcAddr gipa;
} vkt_loader;

// vkt_device_fns holds device-level entry points used on hot paths.
typedef struct vkt_device_fns {
	PFN_vkQueueSubmit queue_submit;
	PFN_vkWaitForFences wait_for_fences;
	PFN_vkResetFences reset_fences;
	PFN_vkGetQueryPoolResults get_query_pool_results;
	PFN_vkSetDebugUtilsObjectNameEXT set_object_name; // may be NULL
} vkt_device_fns;

// vkt_device_info is filled from vkGetPhysicalDeviceProperties2.
typedef struct vkt_device_info {
	uint32_t has_props2;
	uint32_t subgroup_size;
	uint32_t subgroup_stages;
	uint32_t subgroup_ops;
	uint32_t driver_id;
	char driver_name[VK_MAX_DRIVER_NAME_SIZE];
	char driver_info[VK_MAX_DRIVER_INFO_SIZE];
	uint8_t device_uuid[VK_UUID_SIZE];
} vkt_device_info;

int vkt_loader_open(vkt_loader *l);
void vkt_loader_close(vkt_loader *l);

void vkt_device_info_get(vkt_loader *l, VkInstance instance, VkPhysicalDevice phys, vkt_device_info *out);

// vkt_instance_chain builds the pNext chain for VkInstanceCreateInfo: a debug-utils
// messenger create info (so that messages during instance creation and destruction
// are caught) and, when sync is set, validation features enabling synchronization
// validation. Free it with vkt_instance_chain_free.
void *vkt_instance_chain(uintptr_t user, int sync);
void vkt_instance_chain_free(void *chain);

VkResult vkt_messenger_create(vkt_loader *l, VkInstance instance, uintptr_t user, VkDebugUtilsMessengerEXT *out);
void vkt_messenger_destroy(vkt_loader *l, VkInstance instance, VkDebugUtilsMessengerEXT m);

void vkt_device_fns_load(vkt_loader *l, VkInstance instance, VkDevice device, vkt_device_fns *f);

VkResult vkt_submit(vkt_device_fns *f, VkQueue queue, VkCommandBuffer cmd, VkFence fence);
VkResult vkt_wait_reset(vkt_device_fns *f, VkDevice device, VkFence fence, uint64_t timeout_ns);
VkResult vkt_query_results(vkt_device_fns *f, VkDevice device, VkQueryPool pool, uint32_t first, uint32_t count, uint64_t *out);
void vkt_set_name(vkt_device_fns *f, VkDevice device, VkObjectType type, uint64_t handle, const char *name);

#endif
