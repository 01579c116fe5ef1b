package vk

import (
	"fmt"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// stagedCopy moves data between the host and a buffer that the host cannot map,
// through a temporary host-visible buffer and a one-time command buffer.
func (d *Device) stagedCopy(b *Buffer, off uint64, data []byte, toDevice bool) error {
	if len(data) == 0 {
		return nil
	}
	hostType := -1
	for i, t := range d.Info.MemoryTypes {
		if t.HostVisible && t.HostCoherent && (hostType < 0 || (t.HostCached && !toDevice)) {
			hostType = i
		}
	}
	if hostType < 0 {
		return fmt.Errorf("buffer %q: the device has no host-visible coherent memory for staging", b.name)
	}
	size := (uint64(len(data)) + 15) &^ 15
	binfo := vk.BufferCreateInfo{
		SType:       vk.StructureTypeBufferCreateInfo,
		Size:        vk.DeviceSize(size),
		Usage:       vk.BufferUsageFlags(vk.BufferUsageTransferSrcBit | vk.BufferUsageTransferDstBit),
		SharingMode: vk.SharingModeExclusive,
	}
	var sb vk.Buffer
	r := vk.CreateBuffer(d.device, &binfo, nil, &sb)
	binfo.Free()
	if err := check("vkCreateBuffer", r); err != nil {
		return fmt.Errorf("staging for buffer %q: %w", b.name, err)
	}
	defer vk.DestroyBuffer(d.device, sb, nil)
	ainfo := vk.MemoryAllocateInfo{
		SType:           vk.StructureTypeMemoryAllocateInfo,
		AllocationSize:  vk.DeviceSize(size),
		MemoryTypeIndex: uint32(hostType),
	}
	var mem vk.DeviceMemory
	r = vk.AllocateMemory(d.device, &ainfo, nil, &mem)
	ainfo.Free()
	if err := check("vkAllocateMemory", r); err != nil {
		return fmt.Errorf("staging for buffer %q: %w", b.name, err)
	}
	defer vk.FreeMemory(d.device, mem, nil)
	if err := check("vkBindBufferMemory", vk.BindBufferMemory(d.device, sb, mem, 0)); err != nil {
		return err
	}
	var p unsafe.Pointer
	if err := check("vkMapMemory", vk.MapMemory(d.device, mem, 0, vk.DeviceSize(size), 0, &p)); err != nil {
		return err
	}
	defer vk.UnmapMemory(d.device, mem)
	host := unsafe.Slice((*byte)(p), len(data))
	if toDevice {
		copy(host, data)
	}

	s, err := d.NewStream("staging "+b.name, StreamOptions{})
	if err != nil {
		return err
	}
	defer s.Close()
	staging := &Buffer{dev: d, a: d.hostMem, buf: sb, size: size, alloc: size, name: "staging", blk: &block{id: -1}}
	if toDevice {
		err = s.Copy(b.Slice(int64(off), int64(len(data))), staging.Slice(0, int64(len(data))))
	} else {
		err = s.Copy(staging.Slice(0, int64(len(data))), b.Slice(int64(off), int64(len(data))))
	}
	if err == nil {
		err = s.Run()
	}
	if err != nil {
		return err
	}
	if !toDevice {
		copy(data, host)
	}
	return nil
}
