package vk

import (
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	vk "github.com/vulkan-go/vulkan"
)

// queriesPerPool is the number of timestamps in each of a stream's query pools.
const queriesPerPool = 256

// setsPerPool is the number of descriptor sets in each of a stream's descriptor pools.
const setsPerPool = 64

// Stream is a command buffer recorded once and submitted many times: dispatches,
// copies and fills, with the barriers between them inserted where a later command
// touches memory an earlier one wrote (or writes memory an earlier one read).
// With timestamps on, every command is timed on the GPU.
//
// Record with Dispatch, Copy and Fill; End; then Submit and Wait (or Run) as often
// as needed. Submitting does not allocate on the Go side.
type Stream struct {
	dev   *Device
	name  string
	cmd   vk.CommandBuffer
	fence vk.Fence

	descPools  []vk.DescriptorPool
	queryPools []vk.QueryPool
	labels     []string // one per timed command
	stamps     []uint64 // len(labels)+1 after End
	timed      bool

	written, read []Range // accesses since the last barrier
	skipBarriers  bool    // tests only: record a missing barrier on purpose

	ended, pending bool
	err            error // first recording error; reported by End
}

// StreamOptions configure NewStream.
type StreamOptions struct {
	Timestamps bool // time every command with GPU timestamps
}

// Record records a whole stream: a new stream named name, filled by fill, then
// ended, ready to run. Where fill or End fails the stream is closed and the
// error returned. The caller closes the stream.
func (d *Device) Record(name string, opts StreamOptions, fill func(s *Stream) error) (*Stream, error) {
	s, err := d.NewStream(name, opts)
	if err != nil {
		return nil, err
	}
	if err := fill(s); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.End(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// NewStream starts recording a stream.
func (d *Device) NewStream(name string, opts StreamOptions) (*Stream, error) {
	var r *Stream
	var err error
	withoutGC(func() { r, err = d.newStream(name, opts) })
	return r, err
}

func (d *Device) newStream(name string, opts StreamOptions) (*Stream, error) {
	if d.closed {
		return nil, errors.New("vk: device is closed")
	}
	s := &Stream{dev: d, name: name, timed: opts.Timestamps && d.Info.TimestampsOnCompute}
	d.streams[s] = struct{}{}
	ainfo := vk.CommandBufferAllocateInfo{
		SType:              vk.StructureTypeCommandBufferAllocateInfo,
		CommandPool:        d.cmdPool,
		Level:              vk.CommandBufferLevelPrimary,
		CommandBufferCount: 1,
	}
	cmds := make([]vk.CommandBuffer, 1)
	r := vk.AllocateCommandBuffers(d.device, &ainfo, cmds)
	ainfo.Free()
	if err := check("vkAllocateCommandBuffers", r); err != nil {
		return nil, fmt.Errorf("stream %q: %w", name, err)
	}
	s.cmd = cmds[0]
	finfo := vk.FenceCreateInfo{SType: vk.StructureTypeFenceCreateInfo}
	var fence vk.Fence
	r = vk.CreateFence(d.device, &finfo, nil, &fence)
	finfo.Free()
	if err := check("vkCreateFence", r); err != nil {
		s.Close()
		return nil, fmt.Errorf("stream %q: %w", name, err)
	}
	s.fence = fence
	binfo := vk.CommandBufferBeginInfo{SType: vk.StructureTypeCommandBufferBeginInfo}
	r = vk.BeginCommandBuffer(s.cmd, &binfo)
	binfo.Free()
	if err := check("vkBeginCommandBuffer", r); err != nil {
		s.Close()
		return nil, fmt.Errorf("stream %q: %w", name, err)
	}
	// Order this submission after everything submitted before it (the previous run
	// of this stream included): their writes become visible to this one's commands.
	s.barrier()
	if s.timed {
		s.timestamp("")
	}
	return s, nil
}

// Name is the stream's label.
func (s *Stream) Name() string { return s.name }

func (s *Stream) fail(err error) error {
	if s.err == nil {
		s.err = fmt.Errorf("stream %q: %w", s.name, err)
	}
	return s.err
}

func (s *Stream) recording() error {
	if s.err != nil {
		return s.err
	}
	if s.ended {
		return s.fail(errors.New("already ended: record a new stream"))
	}
	return nil
}

const (
	allWork   = vk.PipelineStageFlags(vk.PipelineStageComputeShaderBit | vk.PipelineStageTransferBit)
	allWrites = vk.AccessFlags(vk.AccessShaderWriteBit | vk.AccessTransferWriteBit)
	allAccess = vk.AccessFlags(vk.AccessShaderReadBit | vk.AccessShaderWriteBit | vk.AccessTransferReadBit | vk.AccessTransferWriteBit)
)

// barrier records a global memory barrier between compute and transfer work.
func (s *Stream) barrier() {
	mb := []vk.MemoryBarrier{{SType: vk.StructureTypeMemoryBarrier, SrcAccessMask: allWrites, DstAccessMask: allAccess}}
	vk.CmdPipelineBarrier(s.cmd, allWork, allWork, 0, 1, mb, 0, nil, 0, nil)
	mb[0].Free()
	s.written, s.read = s.written[:0], s.read[:0]
}

// Barrier records a full barrier; needed only around work the stream cannot see,
// since hazards between its own commands are found automatically.
func (s *Stream) Barrier() error {
	var err error
	withoutGC(func() { err = s.barrierCmd() })
	return err
}

func (s *Stream) barrierCmd() error {
	if err := s.recording(); err != nil {
		return err
	}
	s.barrier()
	return nil
}

// order inserts a barrier if the command reading reads and writing writes would
// race with a command recorded since the last barrier, then notes its accesses.
func (s *Stream) order(reads, writes []Range) {
	hazard := false
	for _, r := range reads {
		hazard = hazard || overlapsAny(r, s.written)
	}
	for _, w := range writes {
		hazard = hazard || overlapsAny(w, s.written) || overlapsAny(w, s.read)
	}
	if hazard && !s.skipBarriers {
		s.barrier()
	}
	s.read = append(s.read, reads...)
	s.written = append(s.written, writes...)
}

func overlapsAny(r Range, set []Range) bool {
	for _, x := range set {
		if r.overlaps(x) {
			return true
		}
	}
	return false
}

func (s *Stream) timestamp(label string) {
	if len(s.labels) > 0 || label != "" {
		s.labels = append(s.labels, label)
	}
	q := len(s.labels) // query index: 0 is the start
	if q%queriesPerPool == 0 {
		info := vk.QueryPoolCreateInfo{
			SType:      vk.StructureTypeQueryPoolCreateInfo,
			QueryType:  vk.QueryTypeTimestamp,
			QueryCount: queriesPerPool,
		}
		var pool vk.QueryPool
		r := vk.CreateQueryPool(s.dev.device, &info, nil, &pool)
		info.Free()
		if err := check("vkCreateQueryPool", r); err != nil {
			s.fail(err)
			return
		}
		s.queryPools = append(s.queryPools, pool)
		vk.CmdResetQueryPool(s.cmd, pool, 0, queriesPerPool)
	}
	pool := s.queryPools[q/queriesPerPool]
	vk.CmdWriteTimestamp(s.cmd, vk.PipelineStageBottomOfPipeBit, pool, uint32(q%queriesPerPool))
}

// Dispatch records kernel k over groups workgroups with the given push constants
// (exactly as many bytes as the kernel declares) and one buffer range per binding,
// in binding order.
func (s *Stream) Dispatch(k *Kernel, groups [3]uint32, push []byte, args ...Range) error {
	var err error
	withoutGC(func() { err = s.dispatch(k, groups, push, args...) })
	return err
}

func (s *Stream) dispatch(k *Kernel, groups [3]uint32, push []byte, args ...Range) error {
	if err := s.recording(); err != nil {
		return err
	}
	if k == nil || k.pipeline == vk.NullPipeline {
		return s.fail(errors.New("dispatch of a closed kernel"))
	}
	if len(push) != k.refl.PushBytes {
		return s.fail(fmt.Errorf("kernel %q declares %d bytes of push constants, got %d", k.name, k.refl.PushBytes, len(push)))
	}
	if len(args) != len(k.refl.Bindings) {
		return s.fail(fmt.Errorf("kernel %q has %d bindings, got %d buffers", k.name, len(k.refl.Bindings), len(args)))
	}
	lim := s.dev.Info.MaxWorkgroupCount
	for i, g := range groups {
		if g == 0 || g > lim[i] {
			return s.fail(fmt.Errorf("kernel %q: %d workgroups in dimension %d (the device allows 1..%d)", k.name, g, i, lim[i]))
		}
	}
	var reads, writes []Range
	writesInfo := make([]vk.WriteDescriptorSet, len(args))
	var pin runtime.Pinner
	defer pin.Unpin()
	for i, a := range args {
		b := k.refl.Bindings[i]
		if err := s.checkArg(k, b, a); err != nil {
			return s.fail(err)
		}
		w := vk.WriteDescriptorSet{
			SType:           vk.StructureTypeWriteDescriptorSet,
			DstBinding:      b.Binding,
			DescriptorCount: 1,
			DescriptorType:  descriptorType(b.Kind),
		}
		if b.Kind == UniformTexelBuffer {
			v, err := a.Buf.texelView(uint64(a.Offset), uint64(a.Size), a.Texel)
			if err != nil {
				return s.fail(err)
			}
			views := []vk.BufferView{v}
			pin.Pin(&views[0])
			w.PTexelBufferView = views
		} else {
			infos := []vk.DescriptorBufferInfo{{Buffer: a.Buf.buf, Offset: vk.DeviceSize(a.Offset), Range: vk.DeviceSize(a.Size)}}
			pin.Pin(&infos[0])
			w.PBufferInfo = infos
		}
		writesInfo[i] = w
		if b.ReadOnly {
			reads = append(reads, a)
		} else {
			writes = append(writes, a)
		}
	}
	set, err := s.allocSet(k)
	if err != nil {
		return s.fail(err)
	}
	for i := range writesInfo {
		writesInfo[i].DstSet = set
	}
	if len(writesInfo) > 0 {
		pin.Pin(&writesInfo[0])
		vk.UpdateDescriptorSets(s.dev.device, uint32(len(writesInfo)), writesInfo, 0, nil)
		for i := range writesInfo {
			writesInfo[i].Free()
		}
	}
	s.order(reads, writes)
	vk.CmdBindPipeline(s.cmd, vk.PipelineBindPointCompute, k.pipeline)
	sets := []vk.DescriptorSet{set}
	pin.Pin(&sets[0])
	vk.CmdBindDescriptorSets(s.cmd, vk.PipelineBindPointCompute, k.layout, 0, 1, sets, 0, nil)
	if len(push) > 0 {
		pin.Pin(&push[0])
		vk.CmdPushConstants(s.cmd, k.layout, vk.ShaderStageFlags(vk.ShaderStageComputeBit), 0, uint32(len(push)), unsafe.Pointer(&push[0]))
	}
	vk.CmdDispatch(s.cmd, groups[0], groups[1], groups[2])
	if s.timed {
		s.timestamp(k.name)
	}
	return s.err
}

func (s *Stream) checkArg(k *Kernel, b BindingInfo, a Range) error {
	if err := a.Buf.live(); err != nil {
		return fmt.Errorf("kernel %q binding %d: %w", k.name, b.Binding, err)
	}
	if a.Offset < 0 || a.Size <= 0 || uint64(a.Offset+a.Size) > a.Buf.alloc {
		return fmt.Errorf("kernel %q binding %d: range [%d, %d) outside buffer %q of %d bytes", k.name, b.Binding, a.Offset, a.Offset+a.Size, a.Buf.name, a.Buf.size)
	}
	info := &s.dev.Info
	switch b.Kind {
	case StorageBuffer:
		if uint64(a.Size) > uint64(info.MaxStorageBufferRange) {
			return fmt.Errorf("kernel %q binding %d: %d bytes of buffer %q exceed the device's maxStorageBufferRange of %d; bind it as a texel buffer or in parts",
				k.name, b.Binding, a.Size, a.Buf.name, info.MaxStorageBufferRange)
		}
		if uint64(a.Offset)%info.MinStorageBufferAlign != 0 {
			return fmt.Errorf("kernel %q binding %d: offset %d is not a multiple of minStorageBufferOffsetAlignment %d", k.name, b.Binding, a.Offset, info.MinStorageBufferAlign)
		}
	case UniformTexelBuffer:
		if uint64(a.Offset)%info.MinTexelBufferAlign != 0 || uint64(a.Size)%a.Texel.bytes() != 0 {
			return fmt.Errorf("kernel %q binding %d: texel range [%d, +%d) must start at a multiple of %d and be whole texels", k.name, b.Binding, a.Offset, a.Size, info.MinTexelBufferAlign)
		}
	}
	return nil
}

func (s *Stream) allocSet(k *Kernel) (vk.DescriptorSet, error) {
	if len(s.descPools) > 0 {
		if set, r := s.tryAlloc(s.descPools[len(s.descPools)-1], k); r == vk.Success {
			return set, nil
		} else if r != vk.ErrorOutOfPoolMemory && r != vk.ErrorFragmentedPool {
			return vk.NullDescriptorSet, check("vkAllocateDescriptorSets", r)
		}
	}
	sizes := []vk.DescriptorPoolSize{
		{Type: vk.DescriptorTypeStorageBuffer, DescriptorCount: 8 * setsPerPool},
		{Type: vk.DescriptorTypeUniformTexelBuffer, DescriptorCount: 8 * setsPerPool},
		{Type: vk.DescriptorTypeUniformBuffer, DescriptorCount: 2 * setsPerPool},
	}
	var pin runtime.Pinner
	pin.Pin(&sizes[0])
	info := vk.DescriptorPoolCreateInfo{
		SType:         vk.StructureTypeDescriptorPoolCreateInfo,
		MaxSets:       setsPerPool,
		PoolSizeCount: uint32(len(sizes)),
		PPoolSizes:    sizes,
	}
	var pool vk.DescriptorPool
	r := vk.CreateDescriptorPool(s.dev.device, &info, nil, &pool)
	info.Free()
	for i := range sizes {
		sizes[i].Free()
	}
	pin.Unpin()
	if err := check("vkCreateDescriptorPool", r); err != nil {
		return vk.NullDescriptorSet, err
	}
	s.descPools = append(s.descPools, pool)
	set, r := s.tryAlloc(pool, k)
	return set, check("vkAllocateDescriptorSets", r)
}

func (s *Stream) tryAlloc(pool vk.DescriptorPool, k *Kernel) (vk.DescriptorSet, vk.Result) {
	layouts := []vk.DescriptorSetLayout{k.dsl}
	var pin runtime.Pinner
	pin.Pin(&layouts[0])
	defer pin.Unpin()
	info := vk.DescriptorSetAllocateInfo{
		SType:              vk.StructureTypeDescriptorSetAllocateInfo,
		DescriptorPool:     pool,
		DescriptorSetCount: 1,
		PSetLayouts:        layouts,
	}
	sets := make([]vk.DescriptorSet, 1)
	r := vk.AllocateDescriptorSets(s.dev.device, &info, &sets[0])
	info.Free()
	return sets[0], r
}

// Copy records a copy of src into dst (equal sizes).
func (s *Stream) Copy(dst, src Range) error {
	var err error
	withoutGC(func() { err = s.copyCmd(dst, src) })
	return err
}

func (s *Stream) copyCmd(dst, src Range) error {
	if err := s.recording(); err != nil {
		return err
	}
	if src.Size != dst.Size {
		return s.fail(fmt.Errorf("copy from %q to %q: sizes %d and %d differ", src.Buf.name, dst.Buf.name, src.Size, dst.Size))
	}
	for _, r := range []Range{src, dst} {
		if err := r.Buf.live(); err != nil {
			return s.fail(err)
		}
		if r.Offset < 0 || r.Size <= 0 || uint64(r.Offset+r.Size) > r.Buf.alloc {
			return s.fail(fmt.Errorf("copy: range [%d, %d) outside buffer %q", r.Offset, r.Offset+r.Size, r.Buf.name))
		}
	}
	s.order([]Range{src}, []Range{dst})
	regions := []vk.BufferCopy{{SrcOffset: vk.DeviceSize(src.Offset), DstOffset: vk.DeviceSize(dst.Offset), Size: vk.DeviceSize(src.Size)}}
	vk.CmdCopyBuffer(s.cmd, src.Buf.buf, dst.Buf.buf, 1, regions)
	if s.timed {
		s.timestamp("copy")
	}
	return s.err
}

// Fill records filling dst (a multiple of 4 bytes) with the 32-bit word value.
func (s *Stream) Fill(dst Range, value uint32) error {
	var err error
	withoutGC(func() { err = s.fillCmd(dst, value) })
	return err
}

func (s *Stream) fillCmd(dst Range, value uint32) error {
	if err := s.recording(); err != nil {
		return err
	}
	if err := dst.Buf.live(); err != nil {
		return s.fail(err)
	}
	if dst.Offset%4 != 0 || dst.Size%4 != 0 || dst.Offset < 0 || uint64(dst.Offset+dst.Size) > dst.Buf.alloc {
		return s.fail(fmt.Errorf("fill: range [%d, +%d) of buffer %q must be 4-byte aligned and inside it", dst.Offset, dst.Size, dst.Buf.name))
	}
	s.order(nil, []Range{dst})
	vk.CmdFillBuffer(s.cmd, dst.Buf.buf, vk.DeviceSize(dst.Offset), vk.DeviceSize(dst.Size), value)
	if s.timed {
		s.timestamp("fill")
	}
	return s.err
}

// End finishes recording. Results of the GPU's writes are made visible to the host.
func (s *Stream) End() error {
	var err error
	withoutGC(func() { err = s.end() })
	return err
}

func (s *Stream) end() error {
	if s.ended {
		return s.err
	}
	if s.err != nil {
		return s.err
	}
	mb := []vk.MemoryBarrier{{SType: vk.StructureTypeMemoryBarrier, SrcAccessMask: allWrites, DstAccessMask: vk.AccessFlags(vk.AccessHostReadBit)}}
	vk.CmdPipelineBarrier(s.cmd, allWork, vk.PipelineStageFlags(vk.PipelineStageHostBit), 0, 1, mb, 0, nil, 0, nil)
	mb[0].Free()
	s.ended = true
	if err := check("vkEndCommandBuffer", vk.EndCommandBuffer(s.cmd)); err != nil {
		return s.fail(err)
	}
	if s.timed {
		s.stamps = make([]uint64, len(s.labels)+1)
	}
	return nil
}

// Submit queues the recorded stream; it does not wait. The stream must not be
// submitted again before Wait.
func (s *Stream) Submit() error {
	if !s.ended {
		if err := s.End(); err != nil {
			return err
		}
	}
	if s.err != nil {
		return s.err
	}
	if s.pending {
		return fmt.Errorf("stream %q: submitted twice without Wait", s.name)
	}
	if r := s.dev.fns.submit(s.dev.queue, s.cmd, s.fence); r != vk.Success {
		return fmt.Errorf("stream %q: %w", s.name, &ResultError{Call: "vkQueueSubmit", Result: r})
	}
	s.pending = true
	return nil
}

// Wait blocks until the last submission finished, and reads its timestamps.
func (s *Stream) Wait() error {
	if !s.pending {
		return nil
	}
	s.pending = false
	if r := s.dev.fns.waitReset(s.dev.device, s.fence, ^uint64(0)); r != vk.Success {
		return fmt.Errorf("stream %q: %w", s.name, &ResultError{Call: "vkWaitForFences", Result: r})
	}
	for p := 0; p*queriesPerPool < len(s.stamps); p++ {
		lo := p * queriesPerPool
		hi := min(lo+queriesPerPool, len(s.stamps))
		if r := s.dev.fns.queryResults(s.dev.device, s.queryPools[p], 0, s.stamps[lo:hi]); r != vk.Success {
			return fmt.Errorf("stream %q: %w", s.name, &ResultError{Call: "vkGetQueryPoolResults", Result: r})
		}
	}
	return nil
}

// Run submits the stream and waits for it.
func (s *Stream) Run() error {
	if err := s.Submit(); err != nil {
		return err
	}
	return s.Wait()
}

// Timing is the GPU time of one recorded command.
type Timing struct {
	Label string // the kernel name, "copy" or "fill"
	Time  time.Duration
}

// Timings returns, after Wait, the GPU time of each command of the last run in
// recording order (with timestamps on; nil otherwise). dst is reused if large enough.
func (s *Stream) Timings(dst []Timing) []Timing {
	if len(s.stamps) == 0 {
		return dst[:0]
	}
	dst = dst[:0]
	period := float64(s.dev.Info.TimestampPeriodNs)
	for i, l := range s.labels {
		ns := float64(s.stamps[i+1]-s.stamps[i]) * period
		dst = append(dst, Timing{Label: l, Time: time.Duration(ns)})
	}
	return dst
}

// Total is the GPU time of the whole last run (with timestamps on).
func (s *Stream) Total() time.Duration {
	if len(s.stamps) < 2 {
		return 0
	}
	return time.Duration(float64(s.stamps[len(s.stamps)-1]-s.stamps[0]) * float64(s.dev.Info.TimestampPeriodNs))
}

// Close waits for a pending submission and destroys the stream's objects.
func (s *Stream) Close() {
	withoutGC(func() { s.close() })
}

func (s *Stream) close() {
	if s == nil || s.dev == nil || s.dev.device == nil {
		return
	}
	_ = s.Wait()
	dev := s.dev.device
	delete(s.dev.streams, s)
	for _, p := range s.descPools {
		vk.DestroyDescriptorPool(dev, p, nil)
	}
	for _, p := range s.queryPools {
		vk.DestroyQueryPool(dev, p, nil)
	}
	if s.fence != vk.NullFence {
		vk.DestroyFence(dev, s.fence, nil)
	}
	if s.cmd != nil {
		vk.FreeCommandBuffers(dev, s.dev.cmdPool, 1, []vk.CommandBuffer{s.cmd})
	}
	*s = Stream{name: s.name}
}
