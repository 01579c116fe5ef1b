#include "shim.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

// Implemented in Go (debug.go).
extern void vktDebugMessage(uintptr_t user, int severity, int types, char *id, char *msg);

int vkt_loader_open(vkt_loader *l) {
	const char *names[] = {"libvulkan.so.1", "libvulkan.so"};
	for (int i = 0; i < 2; i++) {
		l->lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
		if (l->lib != NULL) break;
	}
	if (l->lib == NULL) return 0;
	l->gipa = (PFN_vkGetInstanceProcAddr)dlsym(l->lib, "vkGetInstanceProcAddr");
	if (l->gipa == NULL) {
		dlclose(l->lib);
		l->lib = NULL;
		return 0;
	}
	return 1;
}

void vkt_loader_close(vkt_loader *l) {
	if (l->lib != NULL) dlclose(l->lib);
	l->lib = NULL;
	l->gipa = NULL;
}

void vkt_device_info_get(vkt_loader *l, VkInstance instance, VkPhysicalDevice phys, vkt_device_info *out) {
	memset(out, 0, sizeof(*out));
	PFN_vkGetPhysicalDeviceProperties2 props2 =
		(PFN_vkGetPhysicalDeviceProperties2)l->gipa(instance, "vkGetPhysicalDeviceProperties2");
	if (props2 == NULL) return;
	VkPhysicalDeviceDriverProperties driver = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
	VkPhysicalDeviceSubgroupProperties sub = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES, .pNext = &driver};
	VkPhysicalDeviceIDProperties id = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES, .pNext = &sub};
	VkPhysicalDeviceProperties2 p = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &id};
	VkPhysicalDeviceProperties base;
	PFN_vkGetPhysicalDeviceProperties props =
		(PFN_vkGetPhysicalDeviceProperties)l->gipa(instance, "vkGetPhysicalDeviceProperties");
	props(phys, &base);
	if (base.apiVersion < VK_API_VERSION_1_2) {
		// VkPhysicalDeviceDriverProperties is core only from 1.2.
		sub.pNext = NULL;
	}
	props2(phys, &p);
	out->has_props2 = 1;
	out->subgroup_size = sub.subgroupSize;
	out->subgroup_stages = sub.supportedStages;
	out->subgroup_ops = sub.supportedOperations;
	memcpy(out->device_uuid, id.deviceUUID, VK_UUID_SIZE);
	if (sub.pNext != NULL) {
		out->driver_id = driver.driverID;
		memcpy(out->driver_name, driver.driverName, VK_MAX_DRIVER_NAME_SIZE);
		memcpy(out->driver_info, driver.driverInfo, VK_MAX_DRIVER_INFO_SIZE);
	}
}

static VKAPI_ATTR VkBool32 VKAPI_CALL vkt_debug_callback(
	VkDebugUtilsMessageSeverityFlagBitsEXT severity,
	VkDebugUtilsMessageTypeFlagsEXT types,
	const VkDebugUtilsMessengerCallbackDataEXT *data,
	void *user) {
	vktDebugMessage((uintptr_t)user, (int)severity, (int)types,
		(char *)(data->pMessageIdName ? data->pMessageIdName : ""),
		(char *)(data->pMessage ? data->pMessage : ""));
	return VK_FALSE;
}

static void vkt_fill_messenger_info(VkDebugUtilsMessengerCreateInfoEXT *info, uintptr_t user) {
	memset(info, 0, sizeof(*info));
	info->sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT;
	info->messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
		VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
	info->messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
		VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
		VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
	info->pfnUserCallback = vkt_debug_callback;
	info->pUserData = (void *)user;
}

typedef struct vkt_chain {
	VkDebugUtilsMessengerCreateInfoEXT messenger;
	VkValidationFeaturesEXT features;
	VkValidationFeatureEnableEXT enables[1];
} vkt_chain;

void *vkt_instance_chain(uintptr_t user, int sync) {
	vkt_chain *c = calloc(1, sizeof(vkt_chain));
	if (c == NULL) return NULL;
	vkt_fill_messenger_info(&c->messenger, user);
	if (sync) {
		c->enables[0] = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT;
		c->features.sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT;
		c->features.enabledValidationFeatureCount = 1;
		c->features.pEnabledValidationFeatures = c->enables;
		c->messenger.pNext = &c->features;
	}
	return c;
}

void vkt_instance_chain_free(void *chain) { free(chain); }

VkResult vkt_messenger_create(vkt_loader *l, VkInstance instance, uintptr_t user, VkDebugUtilsMessengerEXT *out) {
	PFN_vkCreateDebugUtilsMessengerEXT create =
		(PFN_vkCreateDebugUtilsMessengerEXT)l->gipa(instance, "vkCreateDebugUtilsMessengerEXT");
	if (create == NULL) return VK_ERROR_EXTENSION_NOT_PRESENT;
	VkDebugUtilsMessengerCreateInfoEXT info;
	vkt_fill_messenger_info(&info, user);
	return create(instance, &info, NULL, out);
}

void vkt_messenger_destroy(vkt_loader *l, VkInstance instance, VkDebugUtilsMessengerEXT m) {
	PFN_vkDestroyDebugUtilsMessengerEXT destroy =
		(PFN_vkDestroyDebugUtilsMessengerEXT)l->gipa(instance, "vkDestroyDebugUtilsMessengerEXT");
	if (destroy != NULL) destroy(instance, m, NULL);
}

void vkt_device_fns_load(vkt_loader *l, VkInstance instance, VkDevice device, vkt_device_fns *f) {
	PFN_vkGetDeviceProcAddr gdpa = (PFN_vkGetDeviceProcAddr)l->gipa(instance, "vkGetDeviceProcAddr");
	f->queue_submit = (PFN_vkQueueSubmit)gdpa(device, "vkQueueSubmit");
	f->wait_for_fences = (PFN_vkWaitForFences)gdpa(device, "vkWaitForFences");
	f->reset_fences = (PFN_vkResetFences)gdpa(device, "vkResetFences");
	f->get_query_pool_results = (PFN_vkGetQueryPoolResults)gdpa(device, "vkGetQueryPoolResults");
	// An instance-level extension function: fetched through the instance.
	f->set_object_name = (PFN_vkSetDebugUtilsObjectNameEXT)l->gipa(instance, "vkSetDebugUtilsObjectNameEXT");
}

VkResult vkt_submit(vkt_device_fns *f, VkQueue queue, VkCommandBuffer cmd, VkFence fence) {
	VkSubmitInfo info = {
		.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
		.commandBufferCount = 1,
		.pCommandBuffers = &cmd,
	};
	return f->queue_submit(queue, 1, &info, fence);
}

VkResult vkt_wait_reset(vkt_device_fns *f, VkDevice device, VkFence fence, uint64_t timeout_ns) {
	VkResult r = f->wait_for_fences(device, 1, &fence, VK_TRUE, timeout_ns);
	if (r != VK_SUCCESS) return r;
	return f->reset_fences(device, 1, &fence);
}

VkResult vkt_query_results(vkt_device_fns *f, VkDevice device, VkQueryPool pool, uint32_t first, uint32_t count, uint64_t *out) {
	return f->get_query_pool_results(device, pool, first, count, (size_t)count * sizeof(uint64_t), out,
		sizeof(uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
}

void vkt_set_name(vkt_device_fns *f, VkDevice device, VkObjectType type, uint64_t handle, const char *name) {
	if (f->set_object_name == NULL) return;
	VkDebugUtilsObjectNameInfoEXT info = {
		.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_OBJECT_NAME_INFO_EXT,
		.objectType = type,
		.objectHandle = handle,
		.pObjectName = name,
	};
	f->set_object_name(device, &info);
}
