package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"vktrain/shaders"
	"vktrain/vk"
)

// runSmoke runs fill, add (storage and texel reads) and saxpy on the chosen device
// and checks the results against Go, a quick proof that the device works.
func runSmoke(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("smoke", e)
	var df deviceFlags
	df.register(fs)
	n := fs.Int("n", 1<<20, "elements per vector")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n <= 0 {
		return fmt.Errorf("-n %d: must be positive", *n)
	}
	dev, err := vk.Open(vk.Options{Device: df.device, Validate: df.validate, Logger: e.log})
	if err != nil {
		return err
	}
	defer dev.Close()
	fmt.Fprintf(e.stdout, "device: %s\n", dev)

	kernels := map[string]*vk.Kernel{}
	for _, name := range []string{"fill", "add", "add_texel", "saxpy"} {
		code, err := shaders.SPIRV(name)
		if err != nil {
			return err
		}
		if kernels[name], err = dev.NewKernel(vk.KernelSpec{Name: name, SPIRV: code}); err != nil {
			return err
		}
	}
	x, y := make([]float32, *n), make([]float32, *n)
	for i := range x {
		x[i], y[i] = float32(i%1000)/1000, float32(i%7)
	}
	bufs := map[string]*vk.Buffer{}
	for _, name := range []string{"x", "y", "z", "z2", "f"} {
		if bufs[name], err = dev.NewBuffer(int64(4**n), name); err != nil {
			return err
		}
	}
	if err := bufs["x"].WriteFloat32(0, x); err != nil {
		return err
	}
	if err := bufs["y"].WriteFloat32(0, y); err != nil {
		return err
	}
	s, err := dev.NewStream("smoke", vk.StreamOptions{Timestamps: true})
	if err != nil {
		return err
	}
	g := func(m int) [3]uint32 { return [3]uint32{uint32((m + 63) / 64), 1, 1} }
	steps := []error{
		s.Dispatch(kernels["fill"], g(*n), words(uint32(*n), math.Float32bits(3)), bufs["f"].Whole()),
		s.Dispatch(kernels["add"], g(*n), words(uint32(*n)), bufs["x"].Whole(), bufs["y"].Whole(), bufs["z"].Whole()),
		s.Dispatch(kernels["add_texel"], g((*n+3)/4), words(uint32(*n)), bufs["x"].Whole(), bufs["y"].Whole(), bufs["z2"].Whole()),
		s.Dispatch(kernels["saxpy"], g(*n), words(uint32(*n), math.Float32bits(2)), bufs["z"].Whole(), bufs["y"].Whole()),
	}
	for _, err := range steps {
		if err != nil {
			return err
		}
	}
	for i := 0; i < 2; i++ { // the first run compiles pipelines on some drivers
		if err := s.Run(); err != nil {
			return err
		}
		if err := bufs["y"].WriteFloat32(0, y); err != nil {
			return err
		}
	}
	if err := s.Run(); err != nil {
		return err
	}
	got := map[string][]float32{}
	for _, name := range []string{"f", "z", "z2", "y"} {
		got[name] = make([]float32, *n)
		if err := bufs[name].ReadFloat32(0, got[name]); err != nil {
			return err
		}
	}
	for i := range x {
		z := x[i] + y[i]
		if got["f"][i] != 3 || got["z"][i] != z || got["z2"][i] != z || got["y"][i] != 2*z+y[i] {
			return fmt.Errorf("element %d wrong: fill %v add %v add_texel %v saxpy %v; want 3 %v %v %v",
				i, got["f"][i], got["z"][i], got["z2"][i], got["y"][i], z, z, 2*z+y[i])
		}
	}
	for _, t := range s.Timings(nil) {
		fmt.Fprintf(e.stdout, "  %-10s %8.1f us\n", t.Label, float64(t.Time.Nanoseconds())/1000)
	}
	if msgs := dev.Messages(); len(msgs) > 0 {
		return fmt.Errorf("%d validation messages, first: %s", len(msgs), msgs[0])
	}
	fmt.Fprintf(e.stdout, "smoke: %d elements, all kernels correct\n", *n)
	return nil
}

func words(w ...uint32) []byte {
	b := make([]byte, 4*len(w))
	for i, v := range w {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return b
}
