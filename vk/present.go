package vk

/*
#include <stdint.h>

// vkt_load_u64 reads a 64-bit value at an address held as an integer. It is
// in C so that the race detector's pointer checks (checkptr) do not reject
// an address that Go code got back as a uintptr.
static uint64_t vkt_load_u64(uintptr_t p) { return *(const uint64_t *)p; }
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"runtime"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// SwapchainExtension is the device extension a Presenter needs; name it in
// Options.DeviceExtensions.
const SwapchainExtension = "VK_KHR_swapchain"

// ErrZeroExtent is returned by Present while the surface has no area (a
// minimized window): nothing is shown, and the caller may try again later.
var ErrZeroExtent = errors.New("vk: present: the surface has a zero extent (window minimized?)")

// acquireTimeoutNs bounds the wait for a swapchain image.
const acquireTimeoutNs = 5_000_000_000

// Surface is a VkSurfaceKHR made by a windowing library for the Device's
// instance. A Presenter takes it over.
type Surface struct{ h vk.Surface }

// SurfaceFromPointer returns the surface stored at address p, which is what
// glfw's Window.CreateWindowSurface returns (the address of a VkSurfaceKHR,
// not the handle). glfw hands back the address of a Go variable it no longer
// references: call SurfaceFromPointer right after CreateWindowSurface, before
// that memory can be reused.
func SurfaceFromPointer(p uintptr) Surface {
	if p == 0 {
		return Surface{}
	}
	return SurfaceFromHandle(uint64(C.vkt_load_u64(C.uintptr_t(p))))
}

// SurfaceFromHandle wraps a VkSurfaceKHR handle given as its 64-bit value.
func SurfaceFromHandle(h uint64) Surface {
	return Surface{*(*vk.Surface)(unsafe.Pointer(&h))}
}

// Valid reports whether s holds a surface.
func (s Surface) Valid() bool { return s.h != vk.NullSurface }

// Presenter shows host images in a window: each Present uploads a picture to a
// host-visible buffer and copies it into an acquired swapchain image with
// vkCmdCopyBufferToImage. It recreates the swapchain when the surface changes
// size. It uses the Device's queue, which must be able to present to the
// surface, and is safe to use from one goroutine at a time (the one that uses
// the Device).
type Presenter struct {
	dev     *Device
	surface vk.Surface
	want    image.Point // the size asked for when the surface leaves it to us

	swapchain vk.Swapchain
	format    vk.Format
	bgra      bool // the swapchain stores B, G, R, A bytes
	extent    image.Point
	images    []vk.Image
	done      []vk.Semaphore // per swapchain image: the copy finished, present may start
	acquired  vk.Semaphore   // the acquired image may be written
	fence     vk.Fence
	cmd       vk.CommandBuffer
	stale     bool // recreate the swapchain before the next Present

	buf     vk.Buffer
	mem     vk.DeviceMemory
	mapped  []byte
	bufSize uint64

	// Background fills the letterbox bars of a picture whose size differs from
	// the swapchain's. Presented as-is (no alpha blending).
	Background color.RGBA
	frames     int
	closed     bool
}

// NewPresenter makes a Presenter for surface on d, taking the surface over: it
// is destroyed by Close, and on error. width and height are the size to use
// when the surface does not dictate one. d must have been opened with
// SwapchainExtension in Options.DeviceExtensions and the surface extensions in
// Options.InstanceExtensions.
func (d *Device) NewPresenter(surface Surface, width, height int) (*Presenter, error) {
	var r *Presenter
	var err error
	withoutGC(func() { r, err = d.newPresenter(surface, width, height) })
	return r, err
}

func (d *Device) newPresenter(surface Surface, width, height int) (*Presenter, error) {
	if d.closed {
		return nil, errors.New("vk: present: device is closed")
	}
	if !surface.Valid() {
		return nil, errors.New("vk: present: no surface")
	}
	p := &Presenter{dev: d, surface: surface.h, want: image.Pt(width, height), Background: color.RGBA{255, 255, 255, 255}}
	fail := func(err error) (*Presenter, error) {
		p.Close()
		return nil, fmt.Errorf("vk: present: %w", err)
	}
	d.present[p] = struct{}{}
	var supported vk.Bool32
	if err := check("vkGetPhysicalDeviceSurfaceSupportKHR", vk.GetPhysicalDeviceSurfaceSupport(d.physical, d.family, p.surface, &supported)); err != nil {
		return fail(err)
	}
	if supported != vk.True {
		return fail(fmt.Errorf("queue family %d of %q cannot present to this surface", d.family, d.Info.Name))
	}
	sinfo := vk.SemaphoreCreateInfo{SType: vk.StructureTypeSemaphoreCreateInfo}
	var sem vk.Semaphore
	r := vk.CreateSemaphore(d.device, &sinfo, nil, &sem)
	sinfo.Free()
	if err := check("vkCreateSemaphore", r); err != nil {
		return fail(err)
	}
	p.acquired = sem
	d.setName(vk.ObjectTypeSemaphore, handleBits(sem), "present: image acquired")
	finfo := vk.FenceCreateInfo{SType: vk.StructureTypeFenceCreateInfo}
	var fence vk.Fence
	r = vk.CreateFence(d.device, &finfo, nil, &fence)
	finfo.Free()
	if err := check("vkCreateFence", r); err != nil {
		return fail(err)
	}
	p.fence = fence
	ainfo := vk.CommandBufferAllocateInfo{
		SType:              vk.StructureTypeCommandBufferAllocateInfo,
		CommandPool:        d.cmdPool,
		Level:              vk.CommandBufferLevelPrimary,
		CommandBufferCount: 1,
	}
	cmds := make([]vk.CommandBuffer, 1)
	r = vk.AllocateCommandBuffers(d.device, &ainfo, cmds)
	ainfo.Free()
	if err := check("vkAllocateCommandBuffers", r); err != nil {
		return fail(err)
	}
	p.cmd = cmds[0]
	if err := p.recreate(); err != nil {
		return fail(err)
	}
	return p, nil
}

// Extent is the size of the swapchain images in pixels: the size at which to
// draw pictures so that Present shows them unscaled. It is zero while the
// window is minimized.
func (p *Presenter) Extent() image.Point { return p.extent }

// Frames is the number of pictures presented so far.
func (p *Presenter) Frames() int { return p.frames }

// Format names the swapchain's pixel format, e.g. "B8G8R8A8_UNORM".
func (p *Presenter) Format() string {
	switch p.format {
	case vk.FormatB8g8r8a8Unorm:
		return "B8G8R8A8_UNORM"
	case vk.FormatB8g8r8a8Srgb:
		return "B8G8R8A8_SRGB"
	case vk.FormatR8g8b8a8Unorm:
		return "R8G8B8A8_UNORM"
	case vk.FormatR8g8b8a8Srgb:
		return "R8G8B8A8_SRGB"
	}
	return fmt.Sprintf("VkFormat(%d)", p.format)
}

// Resize tells the Presenter that the window is now width by height pixels; the
// swapchain is recreated before the next Present. Out-of-date swapchains are
// detected on their own, so calling Resize is optional where the surface
// reports its size (X11, Windows).
func (p *Presenter) Resize(width, height int) {
	if p.want != image.Pt(width, height) || p.extent != image.Pt(width, height) {
		p.want = image.Pt(width, height)
		p.stale = true
	}
}

// recreate (re)creates the swapchain for the surface's current size, replacing
// the old one, with per-image semaphores and a staging buffer to match.
func (p *Presenter) recreate() error {
	d := p.dev
	if err := d.WaitIdle(); err != nil {
		return err
	}
	var caps vk.SurfaceCapabilities
	r := vk.GetPhysicalDeviceSurfaceCapabilities(d.physical, p.surface, &caps)
	caps.Deref()
	caps.CurrentExtent.Deref()
	caps.MinImageExtent.Deref()
	caps.MaxImageExtent.Deref()
	defer caps.Free()
	if err := check("vkGetPhysicalDeviceSurfaceCapabilitiesKHR", r); err != nil {
		return err
	}
	if caps.SupportedUsageFlags&vk.ImageUsageFlags(vk.ImageUsageTransferDstBit) == 0 {
		return errors.New("the surface does not support TRANSFER_DST swapchain images (needed to copy pictures in)")
	}
	ext := caps.CurrentExtent
	if ext.Width == 0xFFFFFFFF { // the surface takes the swapchain's size
		ext.Width = uint32(min(max(p.want.X, int(caps.MinImageExtent.Width), 1), int(caps.MaxImageExtent.Width)))
		ext.Height = uint32(min(max(p.want.Y, int(caps.MinImageExtent.Height), 1), int(caps.MaxImageExtent.Height)))
	}
	p.destroyImages()
	if ext.Width == 0 || ext.Height == 0 {
		p.destroySwapchain()
		p.extent = image.Point{}
		p.stale = true // try again at the next Present
		return nil
	}
	format, space, err := p.chooseFormat()
	if err != nil {
		return err
	}
	mode, err := p.choosePresentMode()
	if err != nil {
		return err
	}
	count := max(caps.MinImageCount+1, 2)
	if caps.MaxImageCount > 0 {
		count = min(count, caps.MaxImageCount)
	}
	alpha := vk.CompositeAlphaOpaqueBit
	if caps.SupportedCompositeAlpha&vk.CompositeAlphaFlags(alpha) == 0 {
		for _, a := range []vk.CompositeAlphaFlagBits{vk.CompositeAlphaInheritBit, vk.CompositeAlphaPreMultipliedBit, vk.CompositeAlphaPostMultipliedBit} {
			if caps.SupportedCompositeAlpha&vk.CompositeAlphaFlags(a) != 0 {
				alpha = a
				break
			}
		}
	}
	old := p.swapchain
	info := vk.SwapchainCreateInfo{
		SType:            vk.StructureTypeSwapchainCreateInfo,
		Surface:          p.surface,
		MinImageCount:    count,
		ImageFormat:      format,
		ImageColorSpace:  space,
		ImageExtent:      vk.Extent2D{Width: ext.Width, Height: ext.Height},
		ImageArrayLayers: 1,
		ImageUsage:       vk.ImageUsageFlags(vk.ImageUsageTransferDstBit),
		ImageSharingMode: vk.SharingModeExclusive,
		PreTransform:     caps.CurrentTransform,
		CompositeAlpha:   alpha,
		PresentMode:      mode,
		Clipped:          vk.True,
		OldSwapchain:     old,
	}
	var sc vk.Swapchain
	r = vk.CreateSwapchain(d.device, &info, nil, &sc)
	info.Free()
	if old != vk.NullSwapchain {
		vk.DestroySwapchain(d.device, old, nil)
		p.swapchain = vk.NullSwapchain
	}
	if err := check("vkCreateSwapchainKHR", r); err != nil {
		return err
	}
	p.swapchain = sc
	p.format = format
	p.bgra = format == vk.FormatB8g8r8a8Unorm || format == vk.FormatB8g8r8a8Srgb
	p.extent = image.Pt(int(ext.Width), int(ext.Height))
	d.setName(vk.ObjectType(1000001000), // VK_OBJECT_TYPE_SWAPCHAIN_KHR
		handleBits(sc), "present: swapchain")

	var n uint32
	if err := check("vkGetSwapchainImagesKHR", vk.GetSwapchainImages(d.device, sc, &n, nil)); err != nil {
		return err
	}
	imgs := make([]vk.Image, n)
	if err := check("vkGetSwapchainImagesKHR", vk.GetSwapchainImages(d.device, sc, &n, imgs)); err != nil {
		return err
	}
	p.images = imgs[:n]
	for i := range p.images {
		sinfo := vk.SemaphoreCreateInfo{SType: vk.StructureTypeSemaphoreCreateInfo}
		var sem vk.Semaphore
		r := vk.CreateSemaphore(d.device, &sinfo, nil, &sem)
		sinfo.Free()
		if err := check("vkCreateSemaphore", r); err != nil {
			return err
		}
		p.done = append(p.done, sem)
		d.setName(vk.ObjectTypeSemaphore, handleBits(sem), fmt.Sprintf("present: image %d copied", i))
	}
	if err := p.ensureBuffer(uint64(ext.Width) * uint64(ext.Height) * 4); err != nil {
		return err
	}
	p.stale = false
	d.log.Debug("swapchain created", "width", ext.Width, "height", ext.Height, "images", n, "format", p.Format(), "present_mode", int(mode))
	return nil
}

func (p *Presenter) chooseFormat() (vk.Format, vk.ColorSpace, error) {
	d := p.dev
	var n uint32
	if err := check("vkGetPhysicalDeviceSurfaceFormatsKHR", vk.GetPhysicalDeviceSurfaceFormats(d.physical, p.surface, &n, nil)); err != nil {
		return 0, 0, err
	}
	formats := make([]vk.SurfaceFormat, n)
	if err := check("vkGetPhysicalDeviceSurfaceFormatsKHR", vk.GetPhysicalDeviceSurfaceFormats(d.physical, p.surface, &n, formats)); err != nil {
		return 0, 0, err
	}
	// Copies move bytes unchanged, and the pictures hold sRGB-encoded bytes:
	// any 8-bit RGBA or BGRA format in the sRGB colour space shows them right.
	rank := map[vk.Format]int{vk.FormatB8g8r8a8Unorm: 4, vk.FormatR8g8b8a8Unorm: 3, vk.FormatB8g8r8a8Srgb: 2, vk.FormatR8g8b8a8Srgb: 1}
	var best vk.SurfaceFormat
	bestRank := 0
	var seen []int32
	for i := range formats[:n] {
		formats[i].Deref()
		f := formats[i]
		formats[i].Free()
		seen = append(seen, int32(f.Format))
		if f.Format == vk.FormatUndefined && n == 1 { // any format goes
			return vk.FormatB8g8r8a8Unorm, vk.ColorSpaceSrgbNonlinear, nil
		}
		if f.ColorSpace == vk.ColorSpaceSrgbNonlinear && rank[f.Format] > bestRank {
			best, bestRank = f, rank[f.Format]
		}
	}
	if bestRank == 0 {
		return 0, 0, fmt.Errorf("the surface offers no 8-bit RGBA/BGRA sRGB format (formats %v)", seen)
	}
	return best.Format, best.ColorSpace, nil
}

func (p *Presenter) choosePresentMode() (vk.PresentMode, error) {
	d := p.dev
	var n uint32
	if err := check("vkGetPhysicalDeviceSurfacePresentModesKHR", vk.GetPhysicalDeviceSurfacePresentModes(d.physical, p.surface, &n, nil)); err != nil {
		return 0, err
	}
	modes := make([]vk.PresentMode, n)
	if err := check("vkGetPhysicalDeviceSurfacePresentModesKHR", vk.GetPhysicalDeviceSurfacePresentModes(d.physical, p.surface, &n, modes)); err != nil {
		return 0, err
	}
	// FIFO is always there; a figure viewer has no use for tearing or mailbox.
	return vk.PresentModeFifo, nil
}

// ensureBuffer makes the host-visible upload buffer at least size bytes.
func (p *Presenter) ensureBuffer(size uint64) error {
	if p.buf != vk.NullBuffer && p.bufSize >= size {
		return nil
	}
	p.destroyBuffer()
	d := p.dev
	binfo := vk.BufferCreateInfo{
		SType:       vk.StructureTypeBufferCreateInfo,
		Size:        vk.DeviceSize(size),
		Usage:       vk.BufferUsageFlags(vk.BufferUsageTransferSrcBit),
		SharingMode: vk.SharingModeExclusive,
	}
	var b vk.Buffer
	r := vk.CreateBuffer(d.device, &binfo, nil, &b)
	binfo.Free()
	if err := check("vkCreateBuffer", r); err != nil {
		return fmt.Errorf("upload buffer: %w", err)
	}
	p.buf = b
	d.setName(vk.ObjectTypeBuffer, handleBits(b), "present: upload")
	var req vk.MemoryRequirements
	vk.GetBufferMemoryRequirements(d.device, b, &req)
	req.Deref()
	req.Free()
	typ := -1
	for i, t := range d.Info.MemoryTypes {
		if req.MemoryTypeBits&(1<<uint(i)) != 0 && t.HostVisible && t.HostCoherent {
			typ = i
			break
		}
	}
	if typ < 0 {
		return errors.New("upload buffer: the device has no host-visible coherent memory")
	}
	ainfo := vk.MemoryAllocateInfo{
		SType:           vk.StructureTypeMemoryAllocateInfo,
		AllocationSize:  req.Size,
		MemoryTypeIndex: uint32(typ),
	}
	var mem vk.DeviceMemory
	r = vk.AllocateMemory(d.device, &ainfo, nil, &mem)
	ainfo.Free()
	if err := check("vkAllocateMemory", r); err != nil {
		return fmt.Errorf("upload buffer of %d bytes: %w", size, err)
	}
	p.mem = mem
	if err := check("vkBindBufferMemory", vk.BindBufferMemory(d.device, b, mem, 0)); err != nil {
		return fmt.Errorf("upload buffer: %w", err)
	}
	var ptr unsafe.Pointer
	if err := check("vkMapMemory", vk.MapMemory(d.device, mem, 0, vk.DeviceSize(size), 0, &ptr)); err != nil {
		return fmt.Errorf("upload buffer: %w", err)
	}
	p.mapped = unsafe.Slice((*byte)(ptr), size)
	p.bufSize = size
	return nil
}

// Present shows img: scaled (nearest neighbour, keeping its aspect ratio) and
// centred when its size differs from Extent, with Background around it. It
// waits until the copy into the swapchain image has finished. It returns
// ErrZeroExtent, showing nothing, while the window is minimized.
func (p *Presenter) Present(img *image.RGBA) error {
	var err error
	withoutGC(func() { err = p.present(img) })
	return err
}

func (p *Presenter) present(img *image.RGBA) error {
	if p.closed || p.dev.closed {
		return errors.New("vk: present: presenter is closed")
	}
	if img == nil || img.Rect.Empty() {
		return errors.New("vk: present: empty picture")
	}
	for attempt := 0; ; attempt++ {
		if p.stale || p.swapchain == vk.NullSwapchain {
			if err := p.recreate(); err != nil {
				return fmt.Errorf("vk: present: recreating the swapchain: %w", err)
			}
			if p.extent == (image.Point{}) {
				return ErrZeroExtent
			}
		}
		var index uint32
		r := vk.AcquireNextImage(p.dev.device, p.swapchain, acquireTimeoutNs, p.acquired, vk.NullFence, &index)
		switch {
		case r == vk.ErrorOutOfDate && attempt < 3:
			p.stale = true
			continue
		case r == vk.Suboptimal:
			p.stale = true // show this frame, recreate for the next
		case r != vk.Success:
			return fmt.Errorf("vk: present: %w", check("vkAcquireNextImageKHR", r))
		}
		if err := p.draw(img, index); err != nil {
			return fmt.Errorf("vk: present: %w", err)
		}
		p.frames++
		return nil
	}
}

// draw copies img into swapchain image index and presents it.
func (p *Presenter) draw(img *image.RGBA, index uint32) error {
	d := p.dev
	p.fill(img)

	begin := vk.CommandBufferBeginInfo{
		SType: vk.StructureTypeCommandBufferBeginInfo,
		Flags: vk.CommandBufferUsageFlags(vk.CommandBufferUsageOneTimeSubmitBit),
	}
	r := vk.BeginCommandBuffer(p.cmd, &begin)
	begin.Free()
	if err := check("vkBeginCommandBuffer", r); err != nil {
		return err
	}
	rng := vk.ImageSubresourceRange{AspectMask: vk.ImageAspectFlags(vk.ImageAspectColorBit), LevelCount: 1, LayerCount: 1}
	toDst := []vk.ImageMemoryBarrier{{
		SType:               vk.StructureTypeImageMemoryBarrier,
		DstAccessMask:       vk.AccessFlags(vk.AccessTransferWriteBit),
		OldLayout:           vk.ImageLayoutUndefined,
		NewLayout:           vk.ImageLayoutTransferDstOptimal,
		SrcQueueFamilyIndex: vk.QueueFamilyIgnored,
		DstQueueFamilyIndex: vk.QueueFamilyIgnored,
		Image:               p.images[index],
		SubresourceRange:    rng,
	}}
	transfer := vk.PipelineStageFlags(vk.PipelineStageTransferBit)
	vk.CmdPipelineBarrier(p.cmd, transfer, transfer, 0, 0, nil, 0, nil, 1, toDst)
	toDst[0].Free()
	region := []vk.BufferImageCopy{{
		ImageSubresource: vk.ImageSubresourceLayers{AspectMask: vk.ImageAspectFlags(vk.ImageAspectColorBit), LayerCount: 1},
		ImageExtent:      vk.Extent3D{Width: uint32(p.extent.X), Height: uint32(p.extent.Y), Depth: 1},
	}}
	vk.CmdCopyBufferToImage(p.cmd, p.buf, p.images[index], vk.ImageLayoutTransferDstOptimal, 1, region)
	region[0].Free()
	toPresent := []vk.ImageMemoryBarrier{{
		SType:               vk.StructureTypeImageMemoryBarrier,
		SrcAccessMask:       vk.AccessFlags(vk.AccessTransferWriteBit),
		OldLayout:           vk.ImageLayoutTransferDstOptimal,
		NewLayout:           vk.ImageLayoutPresentSrc,
		SrcQueueFamilyIndex: vk.QueueFamilyIgnored,
		DstQueueFamilyIndex: vk.QueueFamilyIgnored,
		Image:               p.images[index],
		SubresourceRange:    rng,
	}}
	vk.CmdPipelineBarrier(p.cmd, transfer, vk.PipelineStageFlags(vk.PipelineStageBottomOfPipeBit), 0, 0, nil, 0, nil, 1, toPresent)
	toPresent[0].Free()
	if err := check("vkEndCommandBuffer", vk.EndCommandBuffer(p.cmd)); err != nil {
		return err
	}

	// vulkan-go keeps the slices' Go pointers in C memory during the calls:
	// pin them (see VULKAN-NOTES.md).
	var pin runtime.Pinner
	defer pin.Unpin()
	waits := []vk.Semaphore{p.acquired}
	stages := []vk.PipelineStageFlags{transfer}
	cmds := []vk.CommandBuffer{p.cmd}
	signals := []vk.Semaphore{p.done[index]}
	pin.Pin(&waits[0])
	pin.Pin(&stages[0])
	pin.Pin(&cmds[0])
	pin.Pin(&signals[0])
	submit := []vk.SubmitInfo{{
		SType:                vk.StructureTypeSubmitInfo,
		WaitSemaphoreCount:   1,
		PWaitSemaphores:      waits,
		PWaitDstStageMask:    stages,
		CommandBufferCount:   1,
		PCommandBuffers:      cmds,
		SignalSemaphoreCount: 1,
		PSignalSemaphores:    signals,
	}}
	r = vk.QueueSubmit(d.queue, 1, submit, p.fence)
	submit[0].Free()
	if err := check("vkQueueSubmit", r); err != nil {
		return err
	}

	swapchains := []vk.Swapchain{p.swapchain}
	indices := []uint32{index}
	pin.Pin(&swapchains[0])
	pin.Pin(&indices[0])
	present := vk.PresentInfo{
		SType:              vk.StructureTypePresentInfo,
		WaitSemaphoreCount: 1,
		PWaitSemaphores:    signals,
		SwapchainCount:     1,
		PSwapchains:        swapchains,
		PImageIndices:      indices,
	}
	pr := vk.QueuePresent(d.queue, &present)
	present.Free()
	// Wait for the copy whatever the present said: the upload buffer, the
	// command buffer and the acquire semaphore are reused by the next frame.
	if r := d.fns.waitReset(d.device, p.fence, ^uint64(0)); r != vk.Success {
		return check("vkWaitForFences", r)
	}
	switch pr {
	case vk.Success:
	case vk.Suboptimal, vk.ErrorOutOfDate:
		p.stale = true
	default:
		return check("vkQueuePresentKHR", pr)
	}
	return nil
}

// fill writes img into the upload buffer in the swapchain's byte order,
// letterboxed and scaled to the extent.
func (p *Presenter) fill(img *image.RGBA) {
	w, h := p.extent.X, p.extent.Y
	dst := p.mapped[:w*h*4]
	bg := [4]byte{p.Background.R, p.Background.G, p.Background.B, 255}
	if p.bgra {
		bg[0], bg[2] = bg[2], bg[0]
	}
	sw, sh := img.Rect.Dx(), img.Rect.Dy()
	// The picture's placement: scaled by min(w/sw, h/sh), centred.
	dw, dh := w, h
	if sw*h > sh*w {
		dh = max(1, sh*w/sw)
	} else {
		dw = max(1, sw*h/sh)
	}
	x0, y0 := (w-dw)/2, (h-dh)/2
	same := dw == sw && dh == sh
	for y := range h {
		row := dst[y*w*4 : (y+1)*w*4]
		if y < y0 || y >= y0+dh {
			fillRow(row, bg)
			continue
		}
		fillRow(row[:x0*4], bg)
		fillRow(row[(x0+dw)*4:], bg)
		sy := y - y0
		if !same {
			sy = sy * sh / dh
		}
		src := img.Pix[sy*img.Stride : sy*img.Stride+sw*4]
		out := row[x0*4 : (x0+dw)*4]
		if same && !p.bgra {
			copy(out, src)
			continue
		}
		for x := range dw {
			sx := x
			if !same {
				sx = x * sw / dw
			}
			s := src[sx*4 : sx*4+4 : sx*4+4]
			o := out[x*4 : x*4+4 : x*4+4]
			if p.bgra {
				o[0], o[1], o[2], o[3] = s[2], s[1], s[0], s[3]
			} else {
				o[0], o[1], o[2], o[3] = s[0], s[1], s[2], s[3]
			}
		}
	}
}

func fillRow(row []byte, px [4]byte) {
	for i := 0; i+4 <= len(row); i += 4 {
		copy(row[i:i+4], px[:])
	}
}

func (p *Presenter) destroyImages() {
	for _, s := range p.done {
		vk.DestroySemaphore(p.dev.device, s, nil)
	}
	p.done = nil
	p.images = nil
}

func (p *Presenter) destroySwapchain() {
	if p.swapchain != vk.NullSwapchain {
		vk.DestroySwapchain(p.dev.device, p.swapchain, nil)
		p.swapchain = vk.NullSwapchain
	}
}

func (p *Presenter) destroyBuffer() {
	d := p.dev
	if p.mapped != nil {
		vk.UnmapMemory(d.device, p.mem)
		p.mapped = nil
	}
	if p.buf != vk.NullBuffer {
		vk.DestroyBuffer(d.device, p.buf, nil)
		p.buf = vk.NullBuffer
	}
	if p.mem != vk.NullDeviceMemory {
		vk.FreeMemory(d.device, p.mem, nil)
		p.mem = vk.NullDeviceMemory
	}
	p.bufSize = 0
}

// Close waits for the device and releases the swapchain, its semaphores, the
// upload buffer, the command buffer and the surface, in that order. Close the
// Presenter before the window whose surface it shows; Device.Close closes
// Presenters still open. Close is idempotent.
func (p *Presenter) Close() error {
	var err error
	withoutGC(func() { err = p.close() })
	return err
}

func (p *Presenter) close() error {
	if p == nil || p.closed {
		return nil
	}
	p.closed = true
	d := p.dev
	delete(d.present, p)
	var err error
	if d.device != nil {
		err = d.WaitIdle()
		p.destroyImages()
		p.destroySwapchain()
		p.destroyBuffer()
		if p.cmd != nil {
			vk.FreeCommandBuffers(d.device, d.cmdPool, 1, []vk.CommandBuffer{p.cmd})
			p.cmd = nil
		}
		if p.fence != vk.NullFence {
			vk.DestroyFence(d.device, p.fence, nil)
			p.fence = vk.NullFence
		}
		if p.acquired != vk.NullSemaphore {
			vk.DestroySemaphore(d.device, p.acquired, nil)
			p.acquired = vk.NullSemaphore
		}
	}
	if p.surface != vk.NullSurface && d.instance != nil {
		vk.DestroySurface(d.instance, p.surface, nil)
		p.surface = vk.NullSurface
	}
	if err != nil {
		return fmt.Errorf("vk: present: close: %w", err)
	}
	return nil
}
