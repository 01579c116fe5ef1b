package layers

import (
	"math"
	"math/rand/v2"
	"testing"

	"vktrain/vk"
)

// openRuntime opens the default device with validation (and synchronization
// validation) on; any validation message fails the test.
func openRuntime(t testing.TB) *Runtime {
	t.Helper()
	return openRuntimeWith(t, vk.Options{})
}

// openRuntimeWith is openRuntime with more device options (validation is on).
func openRuntimeWith(t testing.TB, o vk.Options) *Runtime {
	t.Helper()
	o.Validate, o.PipelineCacheDir = true, t.TempDir()
	dev, err := vk.Open(o)
	if err != nil {
		t.Fatalf("vk.Open: %v", err)
	}
	r := NewRuntime(dev)
	t.Cleanup(func() {
		r.Close()
		if err := dev.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for _, m := range dev.Messages() {
			t.Errorf("validation: %s", m)
		}
	})
	return r
}

// variants runs f once per GEMM variant, so both are tested on any device.
func variants(t *testing.T, r *Runtime, f func(t *testing.T)) {
	saved := r.Variant
	defer func() { r.Variant = saved }()
	for _, v := range []GEMMVariant{GEMMTexel, GEMMTiled} {
		r.Variant = v
		t.Run(v.String(), f)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tensorWith allocates a tensor holding v (float64 values rounded to float32).
func tensorWith(t testing.TB, r *Runtime, name string, v []float64, shape ...int) *Tensor {
	t.Helper()
	x, err := r.NewTensor(name, shape...)
	must(t, err)
	must(t, x.Upload(to32(v)))
	t.Cleanup(x.Free)
	return x
}

func zeros(t testing.TB, r *Runtime, name string, shape ...int) *Tensor {
	t.Helper()
	x, err := r.NewTensor(name, shape...)
	must(t, err)
	t.Cleanup(x.Free)
	return x
}

func to32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// rounded returns v rounded to float32 and back: the exact inputs the GPU sees.
func rounded(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(float32(x))
	}
	return out
}

func randn(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64()
	}
	return rounded(v)
}

// run records with f into a fresh stream, runs it once and closes it.
func run(t testing.TB, r *Runtime, f func(s *vk.Stream) error) {
	t.Helper()
	s, err := r.Dev.NewStream(t.Name(), vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	must(t, f(s))
	must(t, s.Run())
}

func download(t testing.TB, x *Tensor) []float64 {
	t.Helper()
	v, err := x.Download()
	must(t, err)
	out := make([]float64, len(v))
	for i, f := range v {
		out[i] = float64(f)
	}
	return out
}

// eps32 is float32's unit roundoff.
const eps32 = 1.0 / (1 << 24)

// compareBound checks |got-want| <= bound[i] elementwise and reports the worst.
func compareBound(t testing.TB, what string, got, want, bound []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst, at := 0.0, -1
	for i := range got {
		d := math.Abs(got[i] - want[i])
		if !(d <= bound[i]) { // NaN fails too
			t.Fatalf("%s[%d] = %v, want %v (|diff| %.3g > bound %.3g)", what, i, got[i], want[i], d, bound[i])
		}
		if r := d / math.Max(bound[i], 1e-300); r > worst {
			worst, at = r, i
		}
	}
	_ = at
	t.Logf("%s: worst error %.2f of its bound", what, worst)
}

// dotBound is the float32 error bound of a sum of k products whose absolute
// values sum to absSum: (k+2) unit roundoffs of absSum (Higham's gamma_k, with
// room for the epilogue's bias and alpha).
func dotBound(k int, absSum float64) float64 { return float64(k+2) * eps32 * absSum * 1.01 }
