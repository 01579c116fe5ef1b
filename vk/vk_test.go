package vk

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"vktrain/shaders"
)

// openTest opens the default device with validation and synchronization
// validation on; any validation message fails the test.
func openTest(t testing.TB, opts ...func(*Options)) *Device {
	t.Helper()
	o := Options{Validate: true, PipelineCacheDir: t.TempDir()}
	for _, f := range opts {
		f(&o)
	}
	d, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for _, m := range d.Messages() {
			t.Errorf("validation: %s", m)
		}
	})
	return d
}

func kernel(t testing.TB, d *Device, name string) *Kernel {
	t.Helper()
	code, err := shaders.SPIRV(name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := d.NewKernel(KernelSpec{Name: name, SPIRV: code})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func push(words ...any) []byte {
	var b []byte
	for _, w := range words {
		var u uint32
		switch v := w.(type) {
		case int:
			u = uint32(v)
		case uint32:
			u = v
		case float32:
			u = math.Float32bits(v)
		}
		b = append(b, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
	}
	return b
}

func randFloats(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	return v
}

func newBufferWith(t testing.TB, d *Device, name string, v []float32) *Buffer {
	t.Helper()
	b, err := d.NewBuffer(int64(4*len(v)), name)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WriteFloat32(0, v); err != nil {
		t.Fatal(err)
	}
	return b
}

func groups(n, local int) [3]uint32 { return [3]uint32{uint32((n + local - 1) / local), 1, 1} }

func TestListDevicesFindsLavapipe(t *testing.T) {
	devs, chosen, reason, err := ListDevices("")
	if err != nil {
		t.Fatal(err)
	}
	if chosen < 0 || reason == "" {
		t.Fatalf("no choice made: %d %q", chosen, reason)
	}
	found := false
	for _, d := range devs {
		found = found || d.IsLavapipe()
		if d.MaxStorageBufferRange == 0 || len(d.Heaps) == 0 || d.MaxWorkgroupInvocations == 0 {
			t.Errorf("device %q: limits not read: %+v", d.Name, d)
		}
	}
	if !found {
		t.Skip("lavapipe not installed; the other tests run on whatever device exists")
	}
}

func TestChooseDevice(t *testing.T) {
	devs := []DeviceInfo{{Name: "llvmpipe", Type: TypeCPU}, {Name: "Intel UHD", Type: TypeIntegrated}, {Name: "NVIDIA H100", Type: TypeDiscrete}}
	for _, c := range []struct {
		sel  string
		want int
	}{{"", 2}, {"0", 0}, {"uhd", 1}, {"LLVM", 0}} {
		got, _, err := ChooseDevice(devs, c.sel)
		if err != nil || got != c.want {
			t.Errorf("ChooseDevice(%q) = %d, %v; want %d", c.sel, got, err, c.want)
		}
	}
	if _, _, err := ChooseDevice(devs, "7"); err == nil {
		t.Error("index out of range accepted")
	}
	if _, _, err := ChooseDevice(devs, "radeon"); err == nil || !strings.Contains(err.Error(), "NVIDIA H100") {
		t.Errorf("unmatched name: %v (should list the devices)", err)
	}
	if _, _, err := ChooseDevice(nil, ""); !errors.Is(err, ErrNoDevice) {
		t.Errorf("no devices: %v", err)
	}
}

func TestFillSaxpyAdd(t *testing.T) {
	d := openTest(t)
	r := rand.New(rand.NewPCG(1, 2))
	fill, saxpy, add, addTexel := kernel(t, d, "fill"), kernel(t, d, "saxpy"), kernel(t, d, "add"), kernel(t, d, "add_texel")
	for _, n := range []int{1, 7, 64, 1000, 4099} {
		x, y := randFloats(r, n), randFloats(r, n)
		bx, by := newBufferWith(t, d, "x", x), newBufferWith(t, d, "y", y)
		bz, _ := d.NewBuffer(int64(4*n), "z")
		bz2, _ := d.NewBuffer(int64(4*n), "z2")
		bf, _ := d.NewBuffer(int64(4*n), "f")
		s, err := d.NewStream("test", StreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		must(t, s.Dispatch(fill, groups(n, 64), push(n, float32(2.5)), bf.Whole()))
		must(t, s.Dispatch(add, groups(n, 64), push(n), bx.Whole(), by.Whole(), bz.Whole()))
		must(t, s.Dispatch(addTexel, groups((n+3)/4, 64), push(n), bx.Whole(), by.Whole(), bz2.Whole()))
		// saxpy reads z (written above) and updates y (read above): both hazards need barriers.
		must(t, s.Dispatch(saxpy, groups(n, 64), push(n, float32(-0.5)), bz.Whole(), by.Whole()))
		must(t, s.Run())
		gotF, gotZ, gotZ2, gotY := read(t, bf, n), read(t, bz, n), read(t, bz2, n), read(t, by, n)
		for i := 0; i < n; i++ {
			z := x[i] + y[i]
			if gotF[i] != 2.5 || gotZ[i] != z || gotZ2[i] != z || gotY[i] != float32(-0.5)*z+y[i] {
				t.Fatalf("n=%d i=%d: fill %v add %v add_texel %v saxpy %v; want 2.5 %v %v %v", n, i, gotF[i], gotZ[i], gotZ2[i], gotY[i], z, z, float32(-0.5)*z+y[i])
			}
		}
		s.Close()
		for _, b := range []*Buffer{bx, by, bz, bz2, bf} {
			b.Free()
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func read(t testing.TB, b *Buffer, n int) []float32 {
	t.Helper()
	v := make([]float32, n)
	must(t, b.ReadFloat32(0, v))
	return v
}

// TestResubmitSeesPreviousWrites runs one recorded stream several times; each run
// must see the previous run's result (the leading barrier orders submissions).
func TestResubmitSeesPreviousWrites(t *testing.T) {
	d := openTest(t)
	saxpy := kernel(t, d, "saxpy")
	n := 300
	ones := make([]float32, n)
	for i := range ones {
		ones[i] = 1
	}
	x, y := newBufferWith(t, d, "x", ones), newBufferWith(t, d, "y", make([]float32, n))
	s, _ := d.NewStream("resubmit", StreamOptions{})
	must(t, s.Dispatch(saxpy, groups(n, 64), push(n, float32(1)), x.Whole(), y.Whole()))
	for i := 0; i < 5; i++ {
		must(t, s.Run())
	}
	if got := read(t, y, n); got[0] != 5 || got[n-1] != 5 {
		t.Fatalf("after 5 runs y = %v, %v; want 5", got[0], got[n-1])
	}
}

func TestStagingPath(t *testing.T) {
	d := openTest(t, func(o *Options) { o.ForceStaging = true })
	v := randFloats(rand.New(rand.NewPCG(3, 4)), 1001)
	b := newBufferWith(t, d, "staged", v)
	if b.Mapped() != nil {
		t.Fatal("ForceStaging still maps the buffer")
	}
	got := make([]float32, 500)
	must(t, b.ReadFloat32(501, got))
	for i := range got {
		if got[i] != v[501+i] {
			t.Fatalf("staged read [%d] = %v, want %v", 501+i, got[i], v[501+i])
		}
	}
}

// TestMissingBarrierIsReported checks the checker: a stream recorded without its
// barrier must draw a synchronization-validation hazard.
func TestMissingBarrierIsReported(t *testing.T) {
	d, err := Open(Options{Validate: true, PipelineCacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fill, saxpy := kernel(t, d, "fill"), kernel(t, d, "saxpy")
	n := 256
	x, _ := d.NewBuffer(int64(4*n), "x")
	y, _ := d.NewBuffer(int64(4*n), "y")
	s, _ := d.NewStream("racy", StreamOptions{})
	s.skipBarriers = true
	must(t, s.Dispatch(fill, groups(n, 64), push(n, float32(1)), x.Whole()))
	must(t, s.Dispatch(saxpy, groups(n, 64), push(n, float32(1)), x.Whole(), y.Whole()))
	must(t, s.Run())
	msgs := d.Messages()
	found := false
	for _, m := range msgs {
		found = found || strings.Contains(m.ID, "SYNC-HAZARD-READ")
	}
	if !found {
		t.Fatalf("no SYNC-HAZARD-READ-AFTER-WRITE reported; messages: %v", msgs)
	}
}

func TestErrorsNotCrashes(t *testing.T) {
	d := openTest(t)
	t.Run("invalid SPIR-V", func(t *testing.T) {
		for _, code := range [][]byte{nil, []byte("not spir-v at all...."), make([]byte, 40)} {
			if _, err := d.NewKernel(KernelSpec{Name: "junk", SPIRV: code}); err == nil || !strings.Contains(err.Error(), "junk") {
				t.Errorf("junk SPIR-V: err = %v", err)
			}
		}
		good, _ := shaders.SPIRV("fill")
		cut := append([]byte(nil), good[:len(good)/2]...)
		if _, err := d.NewKernel(KernelSpec{Name: "cut", SPIRV: cut}); err == nil {
			t.Error("truncated SPIR-V accepted")
		}
	})
	t.Run("push constant size", func(t *testing.T) {
		fill := kernel(t, d, "fill")
		b, _ := d.NewBuffer(64, "b")
		s, _ := d.NewStream("bad push", StreamOptions{})
		defer s.Close()
		err := s.Dispatch(fill, [3]uint32{1, 1, 1}, push(16), b.Whole())
		if err == nil || !strings.Contains(err.Error(), "declares 8 bytes of push constants, got 4") {
			t.Fatalf("wrong push size: %v", err)
		}
		if err := s.Run(); err == nil {
			t.Error("a stream with a recording error was submitted")
		}
	})
	t.Run("unknown specialization constant", func(t *testing.T) {
		code, _ := shaders.SPIRV("fill")
		if _, err := d.NewKernel(KernelSpec{Name: "fill", SPIRV: code, Spec: map[uint32]uint32{3: 1}}); err == nil {
			t.Error("undeclared specialization constant accepted")
		}
	})
	t.Run("binding larger than storage range", func(t *testing.T) {
		limit := int64(d.Info.MaxStorageBufferRange)
		if limit > 1<<30 {
			t.Skipf("maxStorageBufferRange %d is too large to exceed cheaply", limit)
		}
		fill := kernel(t, d, "fill")
		big, err := d.NewBuffer(limit+1024, "big")
		if err != nil {
			t.Fatal(err)
		}
		defer big.Free()
		s, _ := d.NewStream("too big", StreamOptions{})
		defer s.Close()
		err = s.Dispatch(fill, [3]uint32{1, 1, 1}, push(1, float32(0)), big.Whole())
		if err == nil || !strings.Contains(err.Error(), "maxStorageBufferRange") {
			t.Fatalf("oversized storage binding: %v", err)
		}
	})
	t.Run("absurd allocation", func(t *testing.T) {
		_, err := d.NewBuffer(1<<50, "absurd")
		if err == nil {
			t.Fatal("a 1 PiB buffer was allocated")
		}
		if !errors.Is(err, ErrOutOfDeviceMemory) || !strings.Contains(err.Error(), "absurd") {
			t.Fatalf("absurd allocation: %v (want out of memory, naming the buffer)", err)
		}
	})
	t.Run("out of range host copy", func(t *testing.T) {
		b, _ := d.NewBuffer(16, "small")
		if err := b.WriteFloat32(3, []float32{1, 2}); err == nil {
			t.Error("write past the end accepted")
		}
		b.Free()
		if err := b.WriteFloat32(0, []float32{1}); err == nil {
			t.Error("write to a freed buffer accepted")
		}
	})
}

// TestNoLeaks creates and frees many objects; the validation layer's object
// tracker reports any object still alive when the device is destroyed.
func TestNoLeaks(t *testing.T) {
	d, err := Open(Options{Validate: true, PipelineCacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	code, _ := shaders.SPIRV("add_texel")
	for i := 0; i < 20; i++ {
		k, err := d.NewKernel(KernelSpec{Name: "k", SPIRV: code})
		must(t, err)
		var bufs []*Buffer
		for j := 0; j < 30; j++ {
			b, err := d.NewBuffer(int64(16*(j+1)), "b")
			must(t, err)
			bufs = append(bufs, b)
		}
		s, err := d.NewStream("s", StreamOptions{Timestamps: true})
		must(t, err)
		must(t, s.Dispatch(k, [3]uint32{1, 1, 1}, push(4), bufs[0].Whole(), bufs[1].Whole(), bufs[2].Whole()))
		must(t, s.Run())
		s.Close()
		k.Close()
		for _, b := range bufs {
			b.Free()
		}
	}
	// Objects left open on purpose are released by Close.
	_, err = d.NewBuffer(100, "left open")
	must(t, err)
	_, err = d.NewKernel(KernelSpec{Name: "left open", SPIRV: code})
	must(t, err)
	if len(d.mem.blocks) != 1 {
		t.Errorf("%d memory blocks live, want 1", len(d.mem.blocks))
	}
	must(t, d.Close())
	for _, m := range d.Messages() {
		t.Errorf("validation: %s", m)
	}
}

// TestObjectTrackerReportsLeak checks that a leak would be seen: a VkBuffer the
// Device does not know about survives vkDestroyDevice.
func TestObjectTrackerReportsLeak(t *testing.T) {
	d, err := Open(Options{Validate: true, PipelineCacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.NewBuffer(64, "leaked")
	must(t, err)
	delete(d.mem.buffers, b) // forget it: Close will not destroy it
	must(t, d.Close())
	found := false
	for _, m := range d.Messages() {
		found = found || strings.Contains(m.Text, "VkBuffer") || strings.Contains(m.ID, "ObjectTracker")
	}
	if !found {
		t.Fatal("the validation layer did not report a leaked VkBuffer")
	}
}

func TestTimestampsAddUp(t *testing.T) {
	d := openTest(t)
	if !d.Info.TimestampsOnCompute {
		t.Skip("device has no compute timestamps")
	}
	add := kernel(t, d, "add")
	n := 1 << 20
	r := rand.New(rand.NewPCG(5, 6))
	x, y := newBufferWith(t, d, "x", randFloats(r, n)), newBufferWith(t, d, "y", randFloats(r, n))
	z, _ := d.NewBuffer(int64(4*n), "z")
	s, _ := d.NewStream("timed", StreamOptions{Timestamps: true})
	for i := 0; i < 10; i++ {
		must(t, s.Dispatch(add, groups(n, 64), push(n), x.Whole(), y.Whole(), z.Whole()))
	}
	must(t, s.Run()) // warm-up: pipelines compile at first dispatch on lavapipe
	// The GPU time of a run lies inside the wall time of its submit+wait; the gap is
	// submit and wake-up overhead plus whatever else the machine runs. Take the run
	// with the smallest gap of a few, so a busy machine does not decide the result.
	bestRatio := 0.0
	for run := 0; run < 5; run++ {
		start := time.Now()
		must(t, s.Run())
		wall := time.Since(start)
		times := s.Timings(nil)
		if len(times) != 10 {
			t.Fatalf("%d timings, want 10", len(times))
		}
		var sum time.Duration
		for _, tm := range times {
			if tm.Time <= 0 || tm.Label != "add" {
				t.Errorf("timing %+v: want positive, labelled add", tm)
			}
			sum += tm.Time
		}
		if sum != s.Total() {
			t.Errorf("timings sum to %v, total is %v", sum, s.Total())
		}
		if sum > wall {
			t.Errorf("GPU time %v exceeds the wall time %v around it", sum, wall)
		}
		bestRatio = max(bestRatio, float64(sum)/float64(wall))
	}
	if bestRatio < 0.7 {
		t.Errorf("GPU time is at best %.0f%% of wall time; want about all of it", 100*bestRatio)
	}
}

func TestReflect(t *testing.T) {
	for _, c := range []struct {
		name string
		want []BindingInfo
		push int
	}{
		{"fill", []BindingInfo{{Binding: 0, Kind: StorageBuffer}}, 8},
		{"saxpy", []BindingInfo{{Binding: 0, Kind: StorageBuffer, ReadOnly: true}, {Binding: 1, Kind: StorageBuffer}}, 8},
		{"add_texel", []BindingInfo{{Binding: 0, Kind: UniformTexelBuffer, ReadOnly: true}, {Binding: 1, Kind: UniformTexelBuffer, ReadOnly: true}, {Binding: 2, Kind: StorageBuffer}}, 4},
	} {
		code, _ := shaders.SPIRV(c.name)
		r, err := Reflect(code)
		if err != nil {
			t.Fatal(err)
		}
		if r.PushBytes != c.push || len(r.Bindings) != len(c.want) {
			t.Fatalf("%s: %+v", c.name, r)
		}
		for i, b := range r.Bindings {
			if b.Binding != c.want[i].Binding || b.Kind != c.want[i].Kind || b.ReadOnly != c.want[i].ReadOnly {
				t.Errorf("%s binding %d: %+v, want %+v", c.name, i, b, c.want[i])
			}
		}
		if r.LocalSize != [3]uint32{64, 1, 1} {
			t.Errorf("%s local size %v", c.name, r.LocalSize)
		}
	}
}

func TestResultError(t *testing.T) {
	err := check("vkAllocateMemory", -2) // VK_ERROR_OUT_OF_DEVICE_MEMORY
	if err.Error() != "vkAllocateMemory: VK_ERROR_OUT_OF_DEVICE_MEMORY" || !errors.Is(err, ErrOutOfDeviceMemory) {
		t.Fatalf("%v", err)
	}
	if check("x", 0) != nil {
		t.Fatal("VK_SUCCESS is an error")
	}
}

// TestHostBuffer: host buffers stay mapped where device buffers need staging
// copies, and kernels read and write them directly.
func TestHostBuffer(t *testing.T) {
	d := openTest(t, func(o *Options) { o.ForceStaging = true })
	saxpy := kernel(t, d, "saxpy")
	n := 100
	x, err := d.NewHostBuffer(int64(4*n), "x")
	must(t, err)
	y := newBufferWith(t, d, "y", make([]float32, n))
	if x.Mapped() == nil || y.Mapped() != nil {
		t.Fatalf("host buffer mapped: %v, device buffer mapped under ForceStaging: %v", x.Mapped() != nil, y.Mapped() != nil)
	}
	ones := make([]float32, n)
	for i := range ones {
		ones[i] = 1
	}
	must(t, x.WriteFloat32(0, ones))
	s, _ := d.NewStream("host", StreamOptions{})
	must(t, s.Dispatch(saxpy, groups(n, 64), push(n, float32(3)), x.Whole(), y.Whole()))
	for i := 0; i < 2; i++ {
		must(t, s.Run())
	}
	if got := read(t, y, n); got[0] != 6 || got[n-1] != 6 {
		t.Fatalf("y = %v .. %v, want 6", got[0], got[n-1])
	}
	x.Free()
}

// TestRecord records whole streams with Device.Record: a filled one runs and
// holds its command; where filling fails the error comes back wrapped as it
// was and the stream is closed (the device holds no stream after it).
func TestRecord(t *testing.T) {
	d := openTest(t)
	b, err := d.NewBuffer(64, "record")
	must(t, err)
	defer b.Free()
	s, err := d.Record("fill", StreamOptions{Timestamps: true}, func(s *Stream) error { return s.Fill(b.Whole(), math.Float32bits(2.5)) })
	must(t, err)
	must(t, s.Run())
	if got := read(t, b, 16); got[0] != 2.5 || got[15] != 2.5 {
		t.Errorf("after the recorded fill: %v", got)
	}
	if n := len(s.Timings(nil)); n != 1 {
		t.Errorf("%d timings, want 1 (the fill)", n)
	}
	s.Close()
	bad := errors.New("no such operand")
	if _, err := d.Record("failing", StreamOptions{}, func(s *Stream) error {
		if err := s.Fill(b.Whole(), 0); err != nil {
			return err
		}
		return bad
	}); !errors.Is(err, bad) {
		t.Errorf("Record with a failing fill: %v, want %v", err, bad)
	}
	if n := len(d.streams); n != 0 {
		t.Errorf("%d streams open after Record, want 0", n)
	}
}
