package bench

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"vktrain/shaders"
	"vktrain/vk"
)

// fmaVec4s is the number of independent vec4 multiply-adds per round in
// peak_fma.comp: 8 FLOPs each.
const fmaVec4s = 8

// fmaRoundsPerIteration is peak_fma.comp's ROUNDS: its rounds come in groups of
// this many per loop iteration, so the round count is a multiple of it.
const fmaRoundsPerIteration = 8

// peakCopyBytes is the size of each buffer of the copy-bandwidth kernel.
const peakCopyBytes = 64 << 20

// measurePeaks runs the FMA-throughput and copy-bandwidth kernels.
func (b *bencher) measurePeaks() (Peaks, error) {
	var p Peaks
	fma, err := b.peakFMA()
	if err != nil {
		return p, fmt.Errorf("bench: FMA peak: %w", err)
	}
	p.FMAGFLOPS, p.FMAKernel = fma, fmt.Sprintf("peak_fma: %d independent vec4 a*m+c per round, %d rounds per loop iteration, per invocation", fmaVec4s, fmaRoundsPerIteration)
	best, name := 0.0, ""
	for _, module := range []string{"peak_copy", "peak_copy_texel"} {
		gbs, err := b.peakCopy(module)
		if err != nil {
			b.logf("peak: %s: %v", module, err)
			continue
		}
		if gbs > best {
			best, name = gbs, module
		}
	}
	if best == 0 {
		return p, fmt.Errorf("bench: no copy kernel ran")
	}
	p.CopyGBS, p.CopyKernel = best, fmt.Sprintf("%s: %d MiB copied, vec4 per invocation (best of peak_copy, peak_copy_texel)", name, peakCopyBytes>>20)
	return p, nil
}

func (b *bencher) kernel(module string) (*vk.Kernel, error) {
	code, err := shaders.SPIRV(module)
	if err != nil {
		return nil, err
	}
	return b.dev.NewKernel(vk.KernelSpec{Name: module, SPIRV: code})
}

// grid folds n workgroups into x and y within the device's limits.
func (b *bencher) grid(n int) [3]uint32 {
	limit := int(b.dev.Info.MaxWorkgroupCount[0])
	if n <= limit {
		return [3]uint32{uint32(max(n, 1)), 1, 1}
	}
	gy := (n + limit - 1) / limit
	return [3]uint32{uint32((n + gy - 1) / gy), uint32(gy), 1}
}

// peakFMA returns the best GFLOP/s of peak_fma, its rounds calibrated so one
// run takes at least 10 ms.
func (b *bencher) peakFMA() (float64, error) {
	k, err := b.kernel("peak_fma")
	if err != nil {
		return 0, err
	}
	defer k.Close()
	const groups, local = 4096, 64
	out, err := b.dev.NewBuffer(4*groups*local, "peak_fma.out")
	if err != nil {
		return 0, err
	}
	defer out.Free()
	record := func(iters int) (*vk.Stream, error) {
		pc := binary.LittleEndian.AppendUint32(nil, uint32(iters))
		pc = binary.LittleEndian.AppendUint32(pc, math.Float32bits(0.999))
		pc = binary.LittleEndian.AppendUint32(pc, math.Float32bits(0.001))
		return b.dev.Record("peak_fma", vk.StreamOptions{Timestamps: true}, func(s *vk.Stream) error {
			return s.Dispatch(k, [3]uint32{groups, 1, 1}, pc, out.Whole())
		})
	}
	iters := 2 * fmaRoundsPerIteration
	for {
		s, err := record(iters)
		if err != nil {
			return 0, err
		}
		if err := s.Run(); err != nil { // compiles the pipeline
			s.Close()
			return 0, err
		}
		if err := s.Run(); err != nil {
			s.Close()
			return 0, err
		}
		t := s.Total()
		if t >= 10*time.Millisecond || iters >= 1<<16 {
			times, err := b.repeat(func() (time.Duration, error) {
				err := s.Run()
				return s.Total(), err
			})
			s.Close()
			if err != nil {
				return 0, err
			}
			flops := float64(groups*local) * float64(iters) * fmaVec4s * 8
			return flops / stats(times).min.Seconds() / 1e9, nil
		}
		s.Close()
		iters *= 2
	}
}

// peakCopy returns the best GB/s (bytes read plus written) of a copy kernel.
func (b *bencher) peakCopy(module string) (float64, error) {
	k, err := b.kernel(module)
	if err != nil {
		return 0, err
	}
	defer k.Close()
	size := int64(peakCopyBytes)
	if lim := int64(b.dev.Info.MaxStorageBufferRange); size > lim {
		size = lim &^ 15
	}
	if module == "peak_copy_texel" {
		size = min(size, 16*int64(b.dev.Info.MaxTexelBufferElements))
	}
	src, err := b.dev.NewBuffer(size, "peak_copy.src")
	if err != nil {
		return 0, err
	}
	defer src.Free()
	dst, err := b.dev.NewBuffer(size, "peak_copy.dst")
	if err != nil {
		return 0, err
	}
	defer dst.Free()
	n4 := int(size / 16)
	pc := binary.LittleEndian.AppendUint32(nil, uint32(n4))
	s, err := b.dev.Record(module, vk.StreamOptions{Timestamps: true}, func(s *vk.Stream) error {
		return s.Dispatch(k, b.grid((n4+63)/64), pc, src.Whole(), dst.Whole())
	})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	if err := s.Run(); err != nil {
		return 0, err
	}
	times, err := b.repeat(func() (time.Duration, error) {
		err := s.Run()
		return s.Total(), err
	})
	if err != nil {
		return 0, err
	}
	return 2 * float64(size) / stats(times).min.Seconds() / 1e9, nil
}
