package weights

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Fixtures made by testdata/gen_fixtures.py with torch 1.13.
const (
	tinyZip    = "testdata/tiny_alexnet_zip.pth"
	tinyLegacy = "testdata/tiny_alexnet_legacy.pth"
	tinyJSON   = "testdata/tiny_alexnet.json"
)

// expectedTensor is one entry of tiny_alexnet.json.
type expectedTensor struct {
	Name  string
	DType string    `json:"dtype"`
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

// loadExpected reads tiny_alexnet.json, keeping the order of its keys.
func loadExpected(t *testing.T) []expectedTensor {
	t.Helper()
	raw, err := os.ReadFile(tinyJSON)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var out []expectedTensor
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		e := expectedTensor{Name: tok.(string)}
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// torchDTypes maps torch dtype names in the JSON to DTypes.
var torchDTypes = map[string]DType{
	"float32": F32, "float64": F64, "float16": F16, "bfloat16": BF16, "int64": I64,
}

// compareExpected checks sd against the expected tensors exactly, order included.
func compareExpected(t *testing.T, sd *StateDict, want []expectedTensor) {
	t.Helper()
	var names []string
	for _, e := range want {
		names = append(names, e.Name)
	}
	if !slices.Equal(sd.Names, names) {
		t.Fatalf("names = %v, want %v", sd.Names, names)
	}
	for _, e := range want {
		got, ok := sd.Get(e.Name)
		if !ok {
			t.Fatalf("Get(%q) failed", e.Name)
		}
		if !slices.Equal(got.Shape, e.Shape) || got.DType != torchDTypes[e.DType] {
			t.Errorf("%s: shape %v dtype %s, want %v %s", e.Name, got.Shape, got.DType, e.Shape, e.DType)
			continue
		}
		if len(got.Data) != len(e.Data) {
			t.Errorf("%s: %d values, want %d", e.Name, len(got.Data), len(e.Data))
			continue
		}
		for i, v := range e.Data {
			if got.Data[i] != float32(v) {
				t.Errorf("%s[%d] = %v, want %v", e.Name, i, got.Data[i], v)
				break
			}
		}
	}
}

// writeTemp writes data to a file in a fresh temporary directory and returns its path.
func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readFixture returns the bytes of a testdata file.
func readFixture(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
