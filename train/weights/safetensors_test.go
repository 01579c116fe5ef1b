package weights

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSafetensorsRoundTrip(t *testing.T) {
	sd, err := ReadPTH(tinyZip)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "tiny.safetensors")
	meta := map[string]string{"format": "pt", "note": "round \"trip\""}
	if err := WriteSafetensors(path, sd, meta); err != nil {
		t.Fatal(err)
	}
	// Overwriting goes through the same temporary-file-and-rename path.
	if err := WriteSafetensors(path, sd, meta); err != nil {
		t.Fatal(err)
	}
	back, gotMeta, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Names, sd.Names) {
		t.Fatalf("names = %v, want %v", back.Names, sd.Names)
	}
	for _, name := range sd.Names {
		a, b := sd.Tensors[name], back.Tensors[name]
		if !slices.Equal(a.Shape, b.Shape) || !slices.Equal(a.Data, b.Data) || b.DType != F32 {
			t.Errorf("%s: got %v %s, want %v", name, b.Shape, b.DType, a.Shape)
		}
	}
	if len(gotMeta) != 2 || gotMeta["note"] != meta["note"] {
		t.Errorf("metadata = %v, want %v", gotMeta, meta)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d files after writing, want 1 (no temporary files)", len(entries))
	}
	raw := readFixture(t, path)
	if hlen := binary.LittleEndian.Uint64(raw); hlen%8 != 0 {
		t.Errorf("header length %d leaves the data unaligned", hlen)
	}
}

func TestReadSafetensorsFromPython(t *testing.T) {
	sd, meta, err := ReadSafetensors("testdata/python.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if meta["source"] != "gen_fixtures.py" {
		t.Errorf("metadata = %v", meta)
	}
	want := []struct {
		name  string
		dtype DType
		shape []int
		data  []float32
	}{
		{"b.f64", F64, []int{2, 2}, []float32{1.5, -2.25, 3, 1e-3}},
		{"a.f32", F32, []int{3}, []float32{0.5, -1, 42}},
		{"c.f16", F16, []int{2}, []float32{0.5, -65504}},
		{"d.bf16", BF16, []int{2, 1}, []float32{1, -3.5}},
		{"e.empty", F32, []int{0, 4}, []float32{}},
	}
	var names []string
	for _, w := range want {
		names = append(names, w.name)
		got, ok := sd.Get(w.name)
		if !ok || got.DType != w.dtype || !slices.Equal(got.Shape, w.shape) || !slices.Equal(got.Data, w.data) {
			t.Errorf("%s = %+v, want %v %v %v", w.name, got, w.dtype, w.shape, w.data)
		}
	}
	if !slices.Equal(sd.Names, names) {
		t.Errorf("names = %v, want data order %v", sd.Names, names)
	}
}

// buildSafetensors assembles a safetensors file from a header and data bytes.
func buildSafetensors(header string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(out, header...), data...)
}

func TestReadSafetensorsRejectsBadFiles(t *testing.T) {
	eight := make([]byte, 8)
	cases := []struct {
		name, want string
		file       []byte
	}{
		{"empty", "header length", nil},
		{"header too long", "does not fit", binary.LittleEndian.AppendUint64(nil, 1<<40)},
		{"not json", "not a JSON object", buildSafetensors("[1, 2]", nil)},
		{"broken json", "safetensors header", buildSafetensors(`{"a": {`, nil)},
		{"trailing", "trailing data", buildSafetensors(`{} {}`, nil)},
		{"duplicate", "appears twice",
			buildSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight)},
		{"past the end", "outside the 8 data bytes",
			buildSafetensors(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}`, eight)},
		{"negative", "outside",
			buildSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, eight)},
		{"size mismatch", "needs 8",
			buildSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, eight)},
		{"overlap", "overlap",
			buildSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight)},
		{"bad dtype", "unsupported dtype",
			buildSafetensors(`{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}`, eight)},
		{"three offsets", "want 2",
			buildSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, eight)},
		{"no shape", "no shape",
			buildSafetensors(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, eight)},
		{"negative dim", "negative dimension",
			buildSafetensors(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, eight)},
		{"metadata not strings", "__metadata__",
			buildSafetensors(`{"__metadata__":{"a":1}}`, nil)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeTemp(t, "bad.safetensors", c.file)
			_, _, err := ReadSafetensors(path)
			if err == nil || !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one naming the file and containing %q", err, c.want)
			}
		})
	}
}

func TestWriteSafetensorsRejectsInconsistentStateDict(t *testing.T) {
	dir := t.TempDir()
	bad := []*StateDict{
		{Names: []string{"a"}, Tensors: map[string]*Tensor{"a": {Shape: []int{2}, Data: []float32{1}}}},
		{Names: []string{"a", "a"}, Tensors: map[string]*Tensor{"a": {}, "b": {}}},
		{Names: []string{"a"}, Tensors: map[string]*Tensor{"b": {Shape: []int{}, Data: []float32{1}}}},
		{Names: []string{metadataKey}, Tensors: map[string]*Tensor{metadataKey: {Data: []float32{1}}}},
	}
	for i, sd := range bad {
		path := filepath.Join(dir, "x.safetensors")
		if err := WriteSafetensors(path, sd, nil); err == nil || !strings.HasPrefix(err.Error(), path) {
			t.Errorf("case %d: err = %v, want an error naming the file", i, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed writes left %d files behind", len(entries))
	}
}

func TestWriteSafetensorsScalarAndEmpty(t *testing.T) {
	var sd StateDict
	if err := sd.Add("scalar", &Tensor{Data: []float32{float32(math.Inf(-1))}}); err != nil {
		t.Fatal(err)
	}
	if err := sd.Add("empty", &Tensor{Shape: []int{3, 0}, Data: nil}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "s.safetensors")
	if err := WriteSafetensors(path, &sd, nil); err != nil {
		t.Fatal(err)
	}
	back, meta, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := back.Get("scalar")
	if meta != nil || len(s.Shape) != 0 || !math.IsInf(float64(s.Data[0]), -1) || back.Len() != 2 {
		t.Errorf("got %+v %v", back, meta)
	}
}
