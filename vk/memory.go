package vk

import (
	"errors"
	"fmt"
	"sort"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// Sizes of the shared memory blocks that small buffers are suballocated from, for
// device buffers and for host buffers; larger buffers get a block of their own.
const (
	blockSize     = 64 << 20
	hostBlockSize = 4 << 20
)

// bufferUsage is the usage of every buffer: any buffer can be a storage buffer, a
// read-only texel buffer and a copy source or destination.
const bufferUsage = vk.BufferUsageFlags(vk.BufferUsageStorageBufferBit | vk.BufferUsageUniformTexelBufferBit |
	vk.BufferUsageTransferSrcBit | vk.BufferUsageTransferDstBit)

// block is one vkAllocateMemory allocation with a first-fit free list.
type block struct {
	id     int
	mem    vk.DeviceMemory
	size   uint64
	mapped unsafe.Pointer // nil when the memory is not host-visible
	free   []span         // sorted by offset, coalesced
	used   int            // live suballocations
}

type span struct{ off, size uint64 }

func (b *block) alloc(size, align uint64) (uint64, bool) {
	for i, s := range b.free {
		off := (s.off + align - 1) / align * align
		if off+size > s.off+s.size {
			continue
		}
		// Split s into [s.off, off) and [off+size, end).
		rest := []span{}
		if off > s.off {
			rest = append(rest, span{s.off, off - s.off})
		}
		if end := s.off + s.size; off+size < end {
			rest = append(rest, span{off + size, end - off - size})
		}
		b.free = append(b.free[:i], append(rest, b.free[i+1:]...)...)
		b.used++
		return off, true
	}
	return 0, false
}

func (b *block) release(off, size uint64) {
	b.free = append(b.free, span{off, size})
	sort.Slice(b.free, func(i, j int) bool { return b.free[i].off < b.free[j].off })
	merged := b.free[:1]
	for _, s := range b.free[1:] {
		last := &merged[len(merged)-1]
		if last.off+last.size == s.off {
			last.size += s.size
		} else {
			merged = append(merged, s)
		}
	}
	b.free = merged
	b.used--
}

// allocator suballocates buffers from large blocks of one memory type.
type allocator struct {
	dev       *Device
	blockSize uint64
	typeIndex uint32
	hostMap   bool // the memory type is host-visible and coherent: map directly
	align     uint64
	blocks    []*block
	nextID    int
	buffers   map[*Buffer]struct{}
	staging   bool // force staging copies (tests)
}

// newAllocator chooses the memory type for device buffers (host false): device-
// local, preferably also host-visible and coherent (lavapipe, integrated GPUs,
// resizable BAR) so that no staging copy is needed; or for host buffers (host
// true): host-visible and coherent, preferably device-local.
func newAllocator(d *Device, host bool) *allocator {
	a := &allocator{dev: d, buffers: map[*Buffer]struct{}{}, blockSize: blockSize}
	if host {
		a.blockSize = hostBlockSize
	}
	a.align = max(256, d.Info.MinStorageBufferAlign, d.Info.MinTexelBufferAlign)
	best, bestScore := 0, -1
	for i, t := range d.Info.MemoryTypes {
		visible, local := 0, 0
		if t.HostVisible && t.HostCoherent {
			visible = 1
		}
		if t.DeviceLocal {
			local = 1
		}
		score := 4*local + 2*visible
		if host {
			score = 4*visible + 2*local
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	a.typeIndex = uint32(best)
	t := d.Info.MemoryTypes[best]
	a.hostMap = t.HostVisible && t.HostCoherent
	return a
}

func (a *allocator) newBlock(size uint64) (*block, error) {
	heap := a.dev.Info.Heaps[a.dev.Info.MemoryTypes[a.typeIndex].Heap].Size
	if size > heap {
		return nil, fmt.Errorf("allocating %d bytes: more than the device's %d-byte memory heap: %w", size, heap, ErrOutOfDeviceMemory)
	}
	info := vk.MemoryAllocateInfo{
		SType:           vk.StructureTypeMemoryAllocateInfo,
		AllocationSize:  vk.DeviceSize(size),
		MemoryTypeIndex: a.typeIndex,
	}
	var mem vk.DeviceMemory
	r := vk.AllocateMemory(a.dev.device, &info, nil, &mem)
	info.Free()
	if err := check("vkAllocateMemory", r); err != nil {
		return nil, fmt.Errorf("allocating %d bytes: %w", size, err)
	}
	b := &block{id: a.nextID, mem: mem, size: size, free: []span{{0, size}}}
	a.nextID++
	if a.hostMap {
		var p unsafe.Pointer
		if err := check("vkMapMemory", vk.MapMemory(a.dev.device, mem, 0, vk.DeviceSize(size), 0, &p)); err != nil {
			vk.FreeMemory(a.dev.device, mem, nil)
			return nil, err
		}
		b.mapped = p
	}
	a.blocks = append(a.blocks, b)
	return b, nil
}

func (a *allocator) freeBlock(b *block) {
	if b.mapped != nil {
		vk.UnmapMemory(a.dev.device, b.mem)
	}
	vk.FreeMemory(a.dev.device, b.mem, nil)
	for i, x := range a.blocks {
		if x == b {
			a.blocks = append(a.blocks[:i], a.blocks[i+1:]...)
			break
		}
	}
}

// place finds room for size bytes, allocating a new block when none has it.
func (a *allocator) place(size uint64) (*block, uint64, error) {
	for _, b := range a.blocks {
		if off, ok := b.alloc(size, a.align); ok {
			return b, off, nil
		}
	}
	b, err := a.newBlock(max(size, a.blockSize))
	if err != nil {
		return nil, 0, err
	}
	off, _ := b.alloc(size, a.align)
	return b, off, nil
}

func (a *allocator) destroy() {
	for b := range a.buffers {
		b.destroyHandles()
	}
	a.buffers = nil
	for len(a.blocks) > 0 {
		a.freeBlock(a.blocks[0])
	}
}

// Buffer is device memory suballocated from the Device's arena, with its own
// VkBuffer. Its size is rounded up to 16 bytes so it can be read as RGBA32F texels.
type Buffer struct {
	dev    *Device
	a      *allocator // the allocator it came from
	blk    *block
	offset uint64 // in the block
	size   uint64 // requested size
	alloc  uint64 // rounded size
	buf    vk.Buffer
	views  map[viewKey]vk.BufferView
	name   string
}

type viewKey struct {
	off, size uint64
	format    TexelFormat
}

// TexelFormat is how a range bound as a texel buffer is read.
type TexelFormat int

// Texel formats: RGBA32F reads four floats per texelFetch (the fast path, needing
// 16-byte aligned data), R32F one float per texelFetch.
const (
	RGBA32F TexelFormat = iota
	R32F
)

func (f TexelFormat) vkFormat() vk.Format {
	if f == R32F {
		return vk.FormatR32Sfloat
	}
	return vk.FormatR32g32b32a32Sfloat
}

func (f TexelFormat) bytes() uint64 {
	if f == R32F {
		return 4
	}
	return 16
}

// NewBuffer allocates a buffer of size bytes in device memory. The name labels it
// in validation messages and errors.
func (d *Device) NewBuffer(size int64, name string) (*Buffer, error) {
	return d.newBuffer(d.mem, size, name)
}

// NewHostBuffer allocates a buffer of size bytes in host-visible memory, mapped
// (Mapped is never nil), which kernels read and write directly: for the small
// data the host changes every step (labels, step counters, optimizer settings,
// loss statistics, input records), where a staging copy would cost more than
// the device's slower access to it. On unified-memory devices it is the same
// memory as NewBuffer's.
func (d *Device) NewHostBuffer(size int64, name string) (*Buffer, error) {
	return d.newBuffer(d.hostMem, size, name)
}

func (d *Device) newBuffer(a *allocator, size int64, name string) (*Buffer, error) {
	if d.closed {
		return nil, errors.New("vk: device is closed")
	}
	if size <= 0 {
		return nil, fmt.Errorf("buffer %q: size %d must be positive", name, size)
	}
	rounded := (uint64(size) + 15) &^ 15
	blk, off, err := a.place(rounded)
	if err != nil {
		return nil, fmt.Errorf("buffer %q: %w", name, err)
	}
	b := &Buffer{dev: d, a: a, blk: blk, offset: off, size: uint64(size), alloc: rounded, name: name}
	info := vk.BufferCreateInfo{
		SType:       vk.StructureTypeBufferCreateInfo,
		Size:        vk.DeviceSize(rounded),
		Usage:       bufferUsage,
		SharingMode: vk.SharingModeExclusive,
	}
	var h vk.Buffer
	r := vk.CreateBuffer(d.device, &info, nil, &h)
	info.Free()
	if err := check("vkCreateBuffer", r); err != nil {
		a.releaseSpace(blk, off, rounded)
		return nil, fmt.Errorf("buffer %q: %w", name, err)
	}
	b.buf = h
	if err := check("vkBindBufferMemory", vk.BindBufferMemory(d.device, h, blk.mem, vk.DeviceSize(off))); err != nil {
		vk.DestroyBuffer(d.device, h, nil)
		a.releaseSpace(blk, off, rounded)
		return nil, fmt.Errorf("buffer %q: %w", name, err)
	}
	d.setName(vk.ObjectTypeBuffer, handleBits(h), name)
	a.buffers[b] = struct{}{}
	return b, nil
}

func (a *allocator) releaseSpace(b *block, off, size uint64) {
	b.release(off, size)
	if b.used == 0 {
		a.freeBlock(b)
	}
}

// Size is the buffer's size in bytes as requested.
func (b *Buffer) Size() int64 { return int64(b.size) }

// Name is the buffer's label.
func (b *Buffer) Name() string { return b.name }

// Free releases the buffer. Streams that recorded it must not be submitted again.
func (b *Buffer) Free() {
	if b == nil || b.buf == vk.NullBuffer {
		return
	}
	b.destroyHandles()
	delete(b.a.buffers, b)
	b.a.releaseSpace(b.blk, b.offset, b.alloc)
	b.blk = nil
}

func (b *Buffer) destroyHandles() {
	for _, v := range b.views {
		vk.DestroyBufferView(b.dev.device, v, nil)
	}
	b.views = nil
	vk.DestroyBuffer(b.dev.device, b.buf, nil)
	b.buf = vk.NullBuffer
}

func (b *Buffer) live() error {
	if b == nil || b.buf == vk.NullBuffer {
		return errors.New("vk: use of a freed buffer")
	}
	return nil
}

// texelView returns (creating once) a view of [off, off+size) in the given format.
func (b *Buffer) texelView(off, size uint64, format TexelFormat) (vk.BufferView, error) {
	k := viewKey{off, size, format}
	if v, ok := b.views[k]; ok {
		return v, nil
	}
	if n := size / format.bytes(); n > uint64(b.dev.Info.MaxTexelBufferElements) {
		return vk.NullBufferView, fmt.Errorf("buffer %q: texel binding of %d texels exceeds the device's maxTexelBufferElements %d",
			b.name, n, b.dev.Info.MaxTexelBufferElements)
	}
	info := vk.BufferViewCreateInfo{
		SType:  vk.StructureTypeBufferViewCreateInfo,
		Buffer: b.buf,
		Format: format.vkFormat(),
		Offset: vk.DeviceSize(off),
		Range:  vk.DeviceSize(size),
	}
	var v vk.BufferView
	r := vk.CreateBufferView(b.dev.device, &info, nil, &v)
	info.Free()
	if err := check("vkCreateBufferView", r); err != nil {
		return vk.NullBufferView, fmt.Errorf("buffer %q: %w", b.name, err)
	}
	if b.views == nil {
		b.views = map[viewKey]vk.BufferView{}
	}
	b.views[k] = v
	return v, nil
}

// Mapped returns the buffer's memory as a byte slice when the device maps it
// directly (unified memory), or nil when copies go through a staging buffer. The
// slice must not be used while the GPU writes the buffer, nor after Free.
func (b *Buffer) Mapped() []byte {
	if b.blk == nil || b.blk.mapped == nil || b.a.staging {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Add(b.blk.mapped, b.offset)), b.size)
}

func (b *Buffer) checkRange(off int64, n int) error {
	if off < 0 || n < 0 || uint64(off)+uint64(n) > b.size {
		return fmt.Errorf("buffer %q: range [%d, %d) outside its %d bytes", b.name, off, off+int64(n), b.size)
	}
	return nil
}

// Write copies data into the buffer at byte offset off. It must not race with GPU
// work that uses the buffer.
func (b *Buffer) Write(off int64, data []byte) error {
	if err := b.live(); err != nil {
		return err
	}
	if err := b.checkRange(off, len(data)); err != nil {
		return err
	}
	if m := b.Mapped(); m != nil {
		copy(m[off:], data)
		return nil
	}
	return b.dev.stagedCopy(b, uint64(off), data, true)
}

// Read copies len(dst) bytes from byte offset off of the buffer into dst.
func (b *Buffer) Read(off int64, dst []byte) error {
	if err := b.live(); err != nil {
		return err
	}
	if err := b.checkRange(off, len(dst)); err != nil {
		return err
	}
	if m := b.Mapped(); m != nil {
		copy(dst, m[off:])
		return nil
	}
	return b.dev.stagedCopy(b, uint64(off), dst, false)
}

// WriteFloat32 writes v at element offset off (in float32 elements).
func (b *Buffer) WriteFloat32(off int, v []float32) error {
	return b.Write(int64(off)*4, float32Bytes(v))
}

// ReadFloat32 reads len(dst) float32 values from element offset off.
func (b *Buffer) ReadFloat32(off int, dst []float32) error {
	return b.Read(int64(off)*4, float32Bytes(dst))
}

// WriteUint32 writes v at element offset off (in 4-byte elements).
func (b *Buffer) WriteUint32(off int, v []uint32) error {
	if len(v) == 0 {
		return b.Write(int64(off)*4, nil)
	}
	return b.Write(int64(off)*4, unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)))
}

// ReadUint32 reads len(dst) 4-byte values from element offset off.
func (b *Buffer) ReadUint32(off int, dst []uint32) error {
	if len(dst) == 0 {
		return nil
	}
	return b.Read(int64(off)*4, unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*len(dst)))
}

func float32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

// Range is a byte range of a buffer, bound to one kernel binding.
type Range struct {
	Buf    *Buffer
	Offset int64
	Size   int64
	// Texel is the view format when the range is bound as a texel buffer.
	Texel TexelFormat
}

// AsR32F returns the range to be read one float per texel.
func (r Range) AsR32F() Range { r.Texel = R32F; return r }

// Whole is the range covering the whole buffer, including its padding to 16 bytes.
func (b *Buffer) Whole() Range { return Range{Buf: b, Size: int64(b.alloc)} }

// Slice is the range [off, off+size) of the buffer, in bytes.
func (b *Buffer) Slice(off, size int64) Range { return Range{Buf: b, Offset: off, Size: size} }

// overlaps reports whether two ranges share memory.
func (r Range) overlaps(o Range) bool {
	if r.Buf.blk != o.Buf.blk {
		return false
	}
	a0 := r.Buf.offset + uint64(r.Offset)
	b0 := o.Buf.offset + uint64(o.Offset)
	return a0 < b0+uint64(o.Size) && b0 < a0+uint64(r.Size)
}
