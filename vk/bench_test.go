package vk

import (
	"testing"
)

// Benchmarks run without validation: they measure the runtime, not the layer.
func openBench(b *testing.B) *Device {
	b.Helper()
	d, err := Open(Options{PipelineCacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

// BenchmarkSubmitEmpty is submit + fence wait of a stream with no commands.
func BenchmarkSubmitEmpty(b *testing.B) {
	d := openBench(b)
	s, err := d.NewStream("empty", StreamOptions{})
	must(b, err)
	must(b, s.Run())
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDispatch100 replays a stream of 100 small dependent dispatches (each
// needs a barrier); ns/op is divided by 100 into ns/dispatch.
func BenchmarkDispatch100(b *testing.B) {
	d := openBench(b)
	saxpy := kernel(b, d, "saxpy")
	n := 64
	x, _ := d.NewBuffer(int64(4*n), "x")
	y, _ := d.NewBuffer(int64(4*n), "y")
	s, _ := d.NewStream("100", StreamOptions{Timestamps: true})
	for i := 0; i < 100; i++ {
		must(b, s.Dispatch(saxpy, groups(n, 64), push(n, float32(1)), x.Whole(), y.Whole()))
	}
	must(b, s.Run())
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Run(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100/1000, "us/dispatch")
	b.ReportMetric(float64(s.Total().Nanoseconds())/100/1000, "gpu-us/dispatch")
}

func benchCopy(b *testing.B, upload bool, staged bool) {
	d, err := Open(Options{PipelineCacheDir: b.TempDir(), ForceStaging: staged})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	const size = 16 << 20
	buf, err := d.NewBuffer(size, "bw")
	must(b, err)
	host := make([]byte, size)
	b.SetBytes(size)
	for b.Loop() {
		if upload {
			err = buf.Write(0, host)
		} else {
			err = buf.Read(0, host)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUpload16MiB(b *testing.B)         { benchCopy(b, true, false) }
func BenchmarkDownload16MiB(b *testing.B)       { benchCopy(b, false, false) }
func BenchmarkUploadStaged16MiB(b *testing.B)   { benchCopy(b, true, true) }
func BenchmarkDownloadStaged16MiB(b *testing.B) { benchCopy(b, false, true) }
