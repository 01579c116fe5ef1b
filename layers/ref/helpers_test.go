package ref

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// newRand returns a deterministic generator for one test.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

// randSlice returns n standard normal values.
func randSlice(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64()
	}
	return v
}

// dot returns sum a[i]*b[i].
func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// relErr returns |got-want| / max(1, |want|): relative for large values,
// absolute for small ones.
func relErr(got, want float64) float64 {
	return math.Abs(got-want) / math.Max(1, math.Abs(want))
}

// compare fails the test if any element differs from want by more than
// tol in relErr, and returns the worst relErr seen.
func compare(t *testing.T, name string, got, want []float64, tol float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: length %d, want %d", name, len(got), len(want))
	}
	worst, bad := 0.0, 0
	for i := range got {
		e := relErr(got[i], want[i])
		if math.IsNaN(e) {
			e = math.Inf(1)
		}
		if e > tol {
			if bad < 5 {
				t.Errorf("%s[%d] = %.17g, want %.17g (rel err %.3g > %.3g)", name, i, got[i], want[i], e, tol)
			}
			bad++
		}
		worst = math.Max(worst, e)
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements out of tolerance", name, bad, len(got))
	}
	return worst
}

// fdStep is the central-difference step; with float64 and O(1) values it
// leaves a rounding error near 1e-10 relative, so fdTol = 1e-7 is tight
// yet safe, and any indexing, sign or transpose bug shows as an O(1) error.
const (
	fdStep = 1e-6
	fdTol  = 1e-7
)

// checkFD checks grad, the claimed gradient of L(v) = <f(v), g> at v,
// against central finite differences (L(v+h e_i) - L(v-h e_i)) / 2h for
// every i, with tolerance fdTol in relErr. v is restored afterwards.
func checkFD(t *testing.T, name string, v, g, grad []float64, f func([]float64) []float64) {
	t.Helper()
	fd := make([]float64, len(v))
	for i := range v {
		orig := v[i]
		v[i] = orig + fdStep
		plus := dot(f(v), g)
		v[i] = orig - fdStep
		minus := dot(f(v), g)
		v[i] = orig
		fd[i] = (plus - minus) / (2 * fdStep)
	}
	worst := compare(t, name+" vs finite differences", grad, fd, fdTol)
	t.Logf("%s: worst finite-difference rel err %.2g (tol %.0g)", name, worst, fdTol)
}

// must returns a function that fails the test on a non-nil error and
// otherwise passes the slice through: must(t)(Conv2DForward(...)).
func must(t *testing.T) func([]float64, error) []float64 {
	return func(v []float64, err error) []float64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// fixtureTensor is one tensor of a golden fixture, flattened row-major.
type fixtureTensor struct {
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

// fixtureCase is one golden case written by testdata/gen_fixtures.py.
type fixtureCase struct {
	Name    string                   `json:"name"`
	Params  map[string]float64       `json:"params"`
	Tensors map[string]fixtureTensor `json:"tensors"`
}

// int returns an integer parameter, failing the test if it is missing.
func (c fixtureCase) int(t *testing.T, key string) int {
	t.Helper()
	v, ok := c.Params[key]
	if !ok {
		t.Fatalf("%s: no param %q", c.Name, key)
	}
	return int(v)
}

// float returns a float parameter, failing the test if it is missing.
func (c fixtureCase) float(t *testing.T, key string) float64 {
	t.Helper()
	v, ok := c.Params[key]
	if !ok {
		t.Fatalf("%s: no param %q", c.Name, key)
	}
	return v
}

// data returns a tensor's values, failing the test if it is missing.
func (c fixtureCase) data(t *testing.T, key string) []float64 {
	t.Helper()
	v, ok := c.Tensors[key]
	if !ok {
		t.Fatalf("%s: no tensor %q", c.Name, key)
	}
	n := 1
	for _, d := range v.Shape {
		n *= d
	}
	if n != len(v.Data) {
		t.Fatalf("%s: tensor %q has %d values for shape %v", c.Name, key, len(v.Data), v.Shape)
	}
	return v.Data
}

// int32s returns an integer tensor's values.
func (c fixtureCase) int32s(t *testing.T, key string) []int32 {
	t.Helper()
	d := c.data(t, key)
	out := make([]int32, len(d))
	for i, v := range d {
		out[i] = int32(v)
	}
	return out
}

// loadFixture reads testdata/name and returns its cases.
func loadFixture(t *testing.T, name string) []fixtureCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []fixtureCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(f.Cases) == 0 {
		t.Fatalf("%s: no cases", name)
	}
	return f.Cases
}

// goldenTol is the tolerance (relErr) against the PyTorch fixtures. The
// fixtures store outputs to 15 significant digits and both sides compute
// in float64, so observed errors are around 1e-15.
const goldenTol = 1e-10
