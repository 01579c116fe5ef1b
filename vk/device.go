package vk

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// ErrNoLoader is returned when the Vulkan loader library cannot be loaded.
var ErrNoLoader = errors.New("no Vulkan loader (libvulkan.so): on Debian/Ubuntu install it with `apt-get install libvulkan1 libvulkan-dev mesa-vulkan-drivers`")

// ErrNoDevice is returned when the loader finds no Vulkan device.
var ErrNoDevice = errors.New("no Vulkan device found: install a driver (on Debian/Ubuntu `apt-get install mesa-vulkan-drivers` gives the CPU device lavapipe) or point VK_ICD_FILENAMES at your driver's ICD json")

const validationLayer = "VK_LAYER_KHRONOS_validation"

// Options configure Open.
type Options struct {
	// Device selects the physical device: an index or a name substring. Empty means
	// $VKTRAIN_DEVICE, and if that is empty too, the best device type available.
	Device string
	// Validate switches on the Khronos validation layer (with synchronization
	// validation) and the debug messenger. VKTRAIN_VALIDATE=1 switches it on as well.
	Validate bool
	// OnMessage, if set, is called for every validation message (warnings and errors).
	OnMessage func(Message)
	// PipelineCacheDir holds the on-disk pipeline cache. Empty means the user cache
	// directory ($VKTRAIN_CACHE or os.UserCacheDir()/vktrain); "-" disables it.
	PipelineCacheDir string
	// ForceStaging makes uploads and downloads go through a staging buffer even
	// where the device memory is host-visible (tests the path discrete GPUs take).
	ForceStaging bool
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// InstanceExtensions names extra instance extensions to enable, e.g. the
	// surface extensions a windowing library requires (VK_KHR_surface,
	// VK_KHR_xcb_surface). A trailing "\x00" is optional.
	InstanceExtensions []string
	// DeviceExtensions names extra device extensions to enable, e.g.
	// VK_KHR_swapchain for a Presenter. A trailing "\x00" is optional.
	DeviceExtensions []string
}

// cStrings returns names, each terminated by "\x00" as vulkan-go needs, with
// their bytes pinned by pin: vulkan-go stores the strings' Go pointers in C
// memory during the call.
func cStrings(pin *runtime.Pinner, names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !strings.HasSuffix(n, "\x00") {
			n += "\x00"
		}
		pin.Pin(unsafe.StringData(n))
		out = append(out, n)
	}
	return out
}

func (o *Options) validate() bool {
	return o.Validate || os.Getenv("VKTRAIN_VALIDATE") == "1"
}

// Device is an opened Vulkan device with one compute queue, a memory arena and a
// pipeline cache. It is safe to use from one goroutine at a time.
type Device struct {
	Info   DeviceInfo
	Reason string // why this device was chosen

	log       *slog.Logger
	loader    loader
	instance  vk.Instance
	physical  vk.PhysicalDevice
	device    vk.Device
	queue     vk.Queue
	family    uint32
	fns       deviceFns
	cmdPool   vk.CommandPool
	msgs      *messageLog
	messenger messenger
	hasMsgr   bool
	chain     unsafe.Pointer
	cache     *pipelineCache
	mem       *allocator // device buffers
	hostMem   *allocator // host buffers (NewHostBuffer)
	kernels   map[*Kernel]struct{}
	streams   map[*Stream]struct{}
	present   map[*Presenter]struct{}
	validated bool
	closed    bool
}

// instanceHandle bundles what listing and opening share: the loader, an instance
// and its physical devices.
type instanceHandle struct {
	loader    loader
	instance  vk.Instance
	physicals []vk.PhysicalDevice
	infos     []DeviceInfo
	chain     unsafe.Pointer
}

func createInstance(validate bool, msgs *messageLog, extraExts ...string) (*instanceHandle, error) {
	l, ok := openLoader()
	if !ok {
		return nil, ErrNoLoader
	}
	h := &instanceHandle{loader: l}
	fail := func(err error) (*instanceHandle, error) {
		h.destroy()
		return nil, err
	}
	if err := vk.SetDefaultGetInstanceProcAddr(); err != nil {
		return fail(ErrNoLoader)
	}
	if err := vk.Init(); err != nil {
		return fail(fmt.Errorf("vulkan loader init: %w", err))
	}
	var layers []string
	var pin runtime.Pinner
	defer pin.Unpin()
	exts := cStrings(&pin, extraExts)
	if validate {
		if !hasInstanceLayer(validationLayer) {
			return fail(errors.New("validation requested but VK_LAYER_KHRONOS_validation is not installed: apt-get install vulkan-validationlayers"))
		}
		layers = append(layers, validationLayer+"\x00")
		exts = append(exts, "VK_EXT_debug_utils\x00")
		h.chain = instanceChain(uintptr(msgs.handle), true)
	}
	app := vk.ApplicationInfo{
		SType:              vk.StructureTypeApplicationInfo,
		PApplicationName:   "vktrain\x00",
		PEngineName:        "vktrain\x00",
		ApplicationVersion: vk.MakeVersion(0, 1, 0),
		ApiVersion:         vk.MakeVersion(1, 2, 0),
	}
	info := vk.InstanceCreateInfo{
		SType:                   vk.StructureTypeInstanceCreateInfo,
		PNext:                   h.chain,
		PApplicationInfo:        &app,
		EnabledLayerCount:       uint32(len(layers)),
		PpEnabledLayerNames:     layers,
		EnabledExtensionCount:   uint32(len(exts)),
		PpEnabledExtensionNames: exts,
	}
	var inst vk.Instance
	r := vk.CreateInstance(&info, nil, &inst)
	info.Free()
	app.Free()
	if err := check("vkCreateInstance", r); err != nil {
		if r == vk.ErrorIncompatibleDriver {
			return fail(fmt.Errorf("%w (%w)", err, ErrNoDevice))
		}
		return fail(err)
	}
	h.instance = inst
	if err := vk.InitInstance(inst); err != nil {
		return fail(fmt.Errorf("vulkan: loading instance functions: %w", err))
	}
	var n uint32
	if err := check("vkEnumeratePhysicalDevices", vk.EnumeratePhysicalDevices(inst, &n, nil)); err != nil {
		return fail(err)
	}
	if n == 0 {
		return fail(ErrNoDevice)
	}
	h.physicals = make([]vk.PhysicalDevice, n)
	if err := check("vkEnumeratePhysicalDevices", vk.EnumeratePhysicalDevices(inst, &n, h.physicals)); err != nil {
		return fail(err)
	}
	h.physicals = h.physicals[:n]
	for i, p := range h.physicals {
		h.infos = append(h.infos, describe(l, inst, p, i))
	}
	return h, nil
}

func (h *instanceHandle) destroy() {
	if h.instance != nil {
		vk.DestroyInstance(h.instance, nil)
		h.instance = nil
	}
	if h.chain != nil {
		freeInstanceChain(h.chain)
		h.chain = nil
	}
	h.loader.close()
}

func hasInstanceLayer(name string) bool {
	var n uint32
	if vk.EnumerateInstanceLayerProperties(&n, nil) != vk.Success || n == 0 {
		return false
	}
	props := make([]vk.LayerProperties, n)
	if vk.EnumerateInstanceLayerProperties(&n, props) != vk.Success {
		return false
	}
	for i := range props[:n] {
		props[i].Deref()
		if vk.ToString(props[i].LayerName[:]) == name {
			return true
		}
	}
	return false
}

func describe(l loader, inst vk.Instance, p vk.PhysicalDevice, index int) DeviceInfo {
	var props vk.PhysicalDeviceProperties
	vk.GetPhysicalDeviceProperties(p, &props)
	props.Deref()
	props.Limits.Deref()
	defer props.Free()
	lim := props.Limits
	d := DeviceInfo{
		Index:         index,
		Name:          vk.ToString(props.DeviceName[:]),
		Type:          DeviceType(props.DeviceType),
		VendorID:      props.VendorID,
		DeviceID:      props.DeviceID,
		APIVersion:    fmt.Sprintf("%d.%d.%d", props.ApiVersion>>22, (props.ApiVersion>>12)&0x3ff, props.ApiVersion&0xfff),
		DriverVersion: props.DriverVersion,
		CacheUUID:     props.PipelineCacheUUID,

		MaxWorkgroupSize:        lim.MaxComputeWorkGroupSize,
		MaxWorkgroupInvocations: lim.MaxComputeWorkGroupInvocations,
		MaxWorkgroupCount:       lim.MaxComputeWorkGroupCount,
		SharedMemoryBytes:       lim.MaxComputeSharedMemorySize,
		MaxStorageBufferRange:   lim.MaxStorageBufferRange,
		MaxTexelBufferElements:  lim.MaxTexelBufferElements,
		MaxPushConstantsBytes:   lim.MaxPushConstantsSize,
		MinStorageBufferAlign:   uint64(lim.MinStorageBufferOffsetAlignment),
		MinTexelBufferAlign:     uint64(lim.MinTexelBufferOffsetAlignment),
		TimestampPeriodNs:       lim.TimestampPeriod,
		TimestampsOnCompute:     lim.TimestampComputeAndGraphics == vk.True,
	}
	var mp vk.PhysicalDeviceMemoryProperties
	vk.GetPhysicalDeviceMemoryProperties(p, &mp)
	mp.Deref()
	defer mp.Free()
	for i := uint32(0); i < mp.MemoryHeapCount; i++ {
		mp.MemoryHeaps[i].Deref()
		h := mp.MemoryHeaps[i]
		d.Heaps = append(d.Heaps, MemoryHeap{Size: uint64(h.Size), DeviceLocal: h.Flags&vk.MemoryHeapFlags(vk.MemoryHeapDeviceLocalBit) != 0})
	}
	for i := uint32(0); i < mp.MemoryTypeCount; i++ {
		mp.MemoryTypes[i].Deref()
		t := mp.MemoryTypes[i]
		f := t.PropertyFlags
		d.MemoryTypes = append(d.MemoryTypes, MemoryType{
			Heap:         int(t.HeapIndex),
			DeviceLocal:  f&vk.MemoryPropertyFlags(vk.MemoryPropertyDeviceLocalBit) != 0,
			HostVisible:  f&vk.MemoryPropertyFlags(vk.MemoryPropertyHostVisibleBit) != 0,
			HostCoherent: f&vk.MemoryPropertyFlags(vk.MemoryPropertyHostCoherentBit) != 0,
			HostCached:   f&vk.MemoryPropertyFlags(vk.MemoryPropertyHostCachedBit) != 0,
		})
	}
	ext := l.deviceInfo(inst, p)
	d.SubgroupSize = ext.subgroupSize
	d.SubgroupShuffle = ext.subgroupStages&uint32(vk.ShaderStageComputeBit) != 0 && ext.subgroupOps&uint32(vk.SubgroupFeatureShuffleBit) != 0
	d.DriverName = ext.driverName
	d.DriverInfo = ext.driverInfo
	d.DeviceUUID = ext.deviceUUID
	return d
}

// ListDevices enumerates the Vulkan devices and says which one Open would choose
// for the given selector (see Options.Device) and why.
func ListDevices(selector string) (devs []DeviceInfo, chosen int, reason string, err error) {
	withoutGC(func() { devs, chosen, reason, err = listDevices(selector) })
	return
}

func listDevices(selector string) (devs []DeviceInfo, chosen int, reason string, err error) {
	h, err := createInstance(false, nil)
	if err != nil {
		return nil, -1, "", err
	}
	defer h.destroy()
	if selector == "" {
		selector = os.Getenv("VKTRAIN_DEVICE")
	}
	chosen, reason, err = ChooseDevice(h.infos, selector)
	return h.infos, chosen, reason, err
}

// Open creates the instance, chooses a physical device and opens it with one
// compute queue. Close releases everything.
func Open(opts Options) (*Device, error) {
	var r *Device
	var err error
	withoutGC(func() { r, err = open(opts) })
	return r, err
}

func open(opts Options) (*Device, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Device{log: log, validated: opts.validate(), kernels: map[*Kernel]struct{}{}, streams: map[*Stream]struct{}{},
		present: map[*Presenter]struct{}{}}
	if d.validated {
		d.msgs = newMessageLog(opts.OnMessage)
	}
	h, err := createInstance(d.validated, d.msgs, opts.InstanceExtensions...)
	if err != nil {
		d.releaseLog()
		return nil, err
	}
	d.loader, d.instance, d.chain = h.loader, h.instance, h.chain
	selector := opts.Device
	if selector == "" {
		selector = os.Getenv("VKTRAIN_DEVICE")
	}
	idx, reason, err := ChooseDevice(h.infos, selector)
	if err != nil {
		d.Close()
		return nil, err
	}
	d.Info, d.Reason, d.physical = h.infos[idx], reason, h.physicals[idx]
	if err := d.init(opts); err != nil {
		d.Close()
		return nil, err
	}
	log.Debug("vulkan device opened", "name", d.Info.Name, "type", d.Info.Type.String(), "reason", reason, "validation", d.validated)
	return d, nil
}

func (d *Device) init(opts Options) error {
	if d.validated {
		m, err := d.loader.createMessenger(d.instance, uintptr(d.msgs.handle))
		if err != nil {
			return err
		}
		d.messenger, d.hasMsgr = m, true
	}
	family, err := d.computeFamily()
	if err != nil {
		return err
	}
	d.family = family
	priorities := []float32{1}
	var pin runtime.Pinner
	pin.Pin(&priorities[0])
	qinfo := []vk.DeviceQueueCreateInfo{{
		SType:            vk.StructureTypeDeviceQueueCreateInfo,
		QueueFamilyIndex: family,
		QueueCount:       1,
		PQueuePriorities: priorities,
	}}
	pin.Pin(&qinfo[0])
	devExts := cStrings(&pin, opts.DeviceExtensions)
	dinfo := vk.DeviceCreateInfo{
		SType:                   vk.StructureTypeDeviceCreateInfo,
		QueueCreateInfoCount:    1,
		PQueueCreateInfos:       qinfo,
		EnabledExtensionCount:   uint32(len(devExts)),
		PpEnabledExtensionNames: devExts,
	}
	var dev vk.Device
	r := vk.CreateDevice(d.physical, &dinfo, nil, &dev)
	dinfo.Free()
	qinfo[0].Free()
	pin.Unpin()
	if err := check("vkCreateDevice", r); err != nil {
		return err
	}
	d.device = dev
	var q vk.Queue
	vk.GetDeviceQueue(dev, family, 0, &q)
	d.queue = q
	d.fns = d.loader.loadDeviceFns(d.instance, dev)

	pinfo := vk.CommandPoolCreateInfo{
		SType:            vk.StructureTypeCommandPoolCreateInfo,
		Flags:            vk.CommandPoolCreateFlags(vk.CommandPoolCreateResetCommandBufferBit),
		QueueFamilyIndex: family,
	}
	var pool vk.CommandPool
	r = vk.CreateCommandPool(dev, &pinfo, nil, &pool)
	pinfo.Free()
	if err := check("vkCreateCommandPool", r); err != nil {
		return err
	}
	d.cmdPool = pool
	d.mem = newAllocator(d, false)
	d.mem.staging = opts.ForceStaging
	d.hostMem = newAllocator(d, true)
	d.cache, err = openPipelineCache(d, opts.PipelineCacheDir)
	return err
}

func (d *Device) computeFamily() (uint32, error) {
	var n uint32
	vk.GetPhysicalDeviceQueueFamilyProperties(d.physical, &n, nil)
	fams := make([]vk.QueueFamilyProperties, n)
	vk.GetPhysicalDeviceQueueFamilyProperties(d.physical, &n, fams)
	best, bestScore := -1, -1
	for i := range fams[:n] {
		fams[i].Deref()
		f := fams[i]
		if f.QueueFlags&vk.QueueFlags(vk.QueueComputeBit) == 0 {
			continue
		}
		score := 1
		if f.TimestampValidBits > 0 {
			score += 2
		}
		if f.QueueFlags&vk.QueueFlags(vk.QueueGraphicsBit) == 0 {
			score++ // a dedicated compute family
		}
		if score > bestScore {
			best, bestScore = i, score
		}
		fams[i].Free()
	}
	if best < 0 {
		return 0, fmt.Errorf("device %q has no compute queue", d.Info.Name)
	}
	return uint32(best), nil
}

// Messages returns and clears the validation messages collected so far (none when
// validation is off).
func (d *Device) Messages() []Message {
	if d.msgs == nil {
		return nil
	}
	return d.msgs.drain()
}

// InstanceHandle returns the VkInstance handle, for windowing libraries that
// create surfaces (glfw's Window.CreateWindowSurface). It is valid until Close.
func (d *Device) InstanceHandle() uintptr {
	return uintptr(unsafe.Pointer(d.instance))
}

// Validating reports whether the validation layer is on.
func (d *Device) Validating() bool { return d.validated }

// setName names a Vulkan object for validation messages and debuggers.
func (d *Device) setName(t vk.ObjectType, handle uint64, name string) {
	if d.validated && name != "" {
		d.fns.setName(d.device, t, handle, name)
	}
}

// WaitIdle waits until the device has finished all submitted work.
func (d *Device) WaitIdle() error {
	return check("vkDeviceWaitIdle", vk.DeviceWaitIdle(d.device))
}

// Close waits for the device, saves the pipeline cache and releases every object
// the Device created, in reverse order. Buffers, kernels and streams still open are
// released too; their later use is an error. Close is idempotent.
func (d *Device) Close() error {
	var err error
	withoutGC(func() { err = d.close() })
	return err
}

func (d *Device) close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	if d.device != nil {
		errs = append(errs, d.WaitIdle())
		for p := range d.present {
			errs = append(errs, p.Close())
		}
		if d.cache != nil {
			errs = append(errs, d.cache.close())
		}
		for s := range d.streams {
			s.Close()
		}
		for k := range d.kernels {
			k.Close()
		}
		for _, a := range []*allocator{d.mem, d.hostMem} {
			if a != nil {
				a.destroy()
			}
		}
		if d.cmdPool != vk.NullCommandPool {
			vk.DestroyCommandPool(d.device, d.cmdPool, nil)
		}
		vk.DestroyDevice(d.device, nil)
		d.device = nil
	}
	d.fns.free()
	if d.hasMsgr {
		d.loader.destroyMessenger(d.instance, d.messenger)
	}
	if d.instance != nil {
		vk.DestroyInstance(d.instance, nil)
		d.instance = nil
	}
	if d.chain != nil {
		freeInstanceChain(d.chain)
	}
	d.loader.close()
	d.releaseLog()
	return errors.Join(errs...)
}

func (d *Device) releaseLog() {
	if d.msgs != nil {
		// Keep collected messages readable after Close; only the handle goes.
		d.msgs.handle.Delete()
		d.msgs.handle = 0
	}
}

func (d *Device) String() string {
	return fmt.Sprintf("%s (%s, Vulkan %s, %s)", d.Info.Name, d.Info.Type, d.Info.APIVersion, strings.TrimSpace(d.Info.DriverName+" "+d.Info.DriverInfo))
}
