package weights

import (
	"bytes"
	"testing"
)

// FuzzReadPTH feeds mutated .pth files to the reader: it may fail, but must not
// panic, and what it returns must be consistent. Run it by hand:
//
//	go test -run '^$' -fuzz FuzzReadPTH -fuzztime 30s ./train/weights
func FuzzReadPTH(f *testing.F) {
	for _, p := range []string{tinyZip, tinyLegacy, "testdata/nested_zip.pth", "testdata/evil_zip.pth",
		"testdata/evil_legacy.pth", "testdata/bad_extent_zip.pth"} {
		f.Add(readFixture(f, p))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sd, err := decodePTH(bytes.NewReader(data), int64(len(data)))
		if err == nil {
			checkConsistent(t, sd)
		}
	})
}

// FuzzReadSafetensors does the same for safetensors files.
func FuzzReadSafetensors(f *testing.F) {
	f.Add(readFixture(f, "testdata/python.safetensors"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sd, _, err := decodeSafetensors(bytes.NewReader(data), int64(len(data)))
		if err == nil {
			checkConsistent(t, sd)
		}
	})
}

func checkConsistent(t *testing.T, sd *StateDict) {
	if len(sd.Names) != len(sd.Tensors) {
		t.Fatalf("%d names, %d tensors", len(sd.Names), len(sd.Tensors))
	}
	for _, name := range sd.Names {
		tt := sd.Tensors[name]
		if n, err := numElements(tt.Shape); err != nil || n != len(tt.Data) {
			t.Fatalf("%s: shape %v, %d values", name, tt.Shape, len(tt.Data))
		}
	}
}
