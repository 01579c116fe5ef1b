package weights

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

func TestReadPTHMatchesTorch(t *testing.T) {
	want := loadExpected(t)
	for _, path := range []string{tinyZip, tinyLegacy} {
		t.Run(path, func(t *testing.T) {
			sd, err := ReadPTH(path)
			if err != nil {
				t.Fatal(err)
			}
			if sd.Path != path {
				t.Errorf("Path = %q, want %q", sd.Path, path)
			}
			compareExpected(t, sd, want)
			if sd.Len() != 17 {
				t.Errorf("Len() = %d, want 17", sd.Len())
			}
			total := 0
			for _, e := range want {
				total += len(e.Data)
			}
			if sd.NumElements() != total {
				t.Errorf("NumElements() = %d, want %d", sd.NumElements(), total)
			}
		})
	}
}

func TestReadPTHSharedStorageIsNotAliased(t *testing.T) {
	sd, err := ReadPTH(tinyZip)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := sd.Get("classifier.1.weight")
	b, _ := sd.Get("classifier.1.bias")
	before := b.Data[0]
	for i := range w.Data {
		w.Data[i] = 1e9
	}
	if b.Data[0] != before {
		t.Error("writing one view of a shared storage changed another")
	}
}

func TestReadPTHNestedCheckpoint(t *testing.T) {
	sd, err := ReadPTH("testdata/nested_zip.pth")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(sd.Names, ",") != "w,b" {
		t.Fatalf("names = %v, want [w b]", sd.Names)
	}
	if w, _ := sd.Get("w"); len(w.Data) != 6 {
		t.Errorf("w has %d values, want 6", len(w.Data))
	}
}

// evilMarker is the file the os.system payload in the evil fixtures would create.
const evilMarker = "/tmp/vktrain-weights-evil-marker"

func TestReadPTHRefusesForbiddenGlobals(t *testing.T) {
	os.Remove(evilMarker)
	// builtins.eval through STACK_GLOBAL (protocol 4) in a zip-format file.
	evalZip := replaceZipEntry(t, readFixture(t, tinyZip), "tiny_alexnet_zip/data.pkl",
		[]byte("\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x01x\x85R."))
	cases := []struct{ path, global string }{
		{"testdata/evil_zip.pth", "posix.system"},
		{"testdata/evil_legacy.pth", "posix.system"},
		{"testdata/evil_bare.pkl", "posix.system"},
		{writeTemp(t, "eval.pth", evalZip), "builtins.eval"},
	}
	for _, c := range cases {
		_, err := ReadPTH(c.path)
		var fg *ForbiddenGlobalError
		if !errors.As(err, &fg) || fg.Module+"."+fg.Name != c.global {
			t.Errorf("%s: err = %v, want a ForbiddenGlobalError for %s", c.path, err, c.global)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, c.path+": ") || !strings.Contains(msg, "forbidden global "+c.global) {
			t.Errorf("error %q does not name the file and the global", msg)
		}
	}
	if _, err := os.Stat(evilMarker); err == nil {
		t.Fatal("the pickled os.system command ran")
	}
}

func TestReadPTHTruncated(t *testing.T) {
	for _, path := range []string{tinyZip, tinyLegacy} {
		data := readFixture(t, path)
		dir := t.TempDir()
		for cut := 0; cut < len(data); cut += 1 + cut/8 {
			p := dir + "/cut.pth"
			if err := os.WriteFile(p, data[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadPTH(p)
			if err == nil {
				t.Errorf("%s cut at %d: no error", path, cut)
			} else if !strings.HasPrefix(err.Error(), p+": ") {
				t.Errorf("%s cut at %d: error %q does not name the file", path, cut, err)
			}
		}
	}
}

func TestReadPTHTruncatedLegacyStorage(t *testing.T) {
	data := readFixture(t, tinyLegacy)
	_, err := ReadPTH(writeTemp(t, "short.pth", data[:len(data)-3]))
	if err == nil || !strings.Contains(err.Error(), "storage") {
		t.Fatalf("err = %v, want a truncated-storage error", err)
	}
}

func TestReadPTHCorruptZipEntry(t *testing.T) {
	for _, name := range []string{"tiny_alexnet_zip/data/3", "tiny_alexnet_zip/data.pkl"} {
		data := readFixture(t, tinyZip)
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		var off int64 = -1
		for _, f := range zr.File {
			if f.Name == name {
				if off, err = f.DataOffset(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if off < 0 {
			t.Fatalf("no entry %s", name)
		}
		data[off+5] ^= 0x40
		_, err = ReadPTH(writeTemp(t, "corrupt.pth", data))
		if !errors.Is(err, zip.ErrChecksum) {
			t.Errorf("%s flipped: err = %v, want a checksum error", name, err)
		}
	}
}

func TestReadPTHStorageTooSmall(t *testing.T) {
	data := replaceZipEntry(t, readFixture(t, tinyZip), "tiny_alexnet_zip/data/3", make([]byte, 12))
	_, err := ReadPTH(writeTemp(t, "small.pth", data))
	if err == nil || !strings.Contains(err.Error(), `storage "3"`) || !strings.Contains(err.Error(), "holds 12 bytes") {
		t.Fatalf("err = %v, want storage 3 too small", err)
	}
}

func TestReadPTHMissingStorage(t *testing.T) {
	data := replaceZipEntry(t, readFixture(t, tinyZip), "tiny_alexnet_zip/data/3", nil)
	_, err := ReadPTH(writeTemp(t, "missing.pth", data))
	if err == nil || !strings.Contains(err.Error(), "no entry tiny_alexnet_zip/data/3") {
		t.Fatalf("err = %v, want a missing-entry error", err)
	}
}

func TestReadPTHViewPastStorage(t *testing.T) {
	_, err := ReadPTH("testdata/bad_extent_zip.pth")
	if err == nil || !strings.Contains(err.Error(), `tensor "t"`) || !strings.Contains(err.Error(), "runs past the end") {
		t.Fatalf("err = %v, want an out-of-storage error", err)
	}
}

func TestReadPTHNotAPTH(t *testing.T) {
	for _, data := range []string{"", "PK", "hello world", "\x80\x02K\x01."} {
		p := writeTemp(t, "x.pth", []byte(data))
		if _, err := ReadPTH(p); err == nil || !strings.HasPrefix(err.Error(), p) {
			t.Errorf("%q: err = %v, want an error naming the file", data, err)
		}
	}
	if _, err := ReadPTH("testdata/does-not-exist.pth"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
}

// replaceZipEntry rebuilds a zip archive with entry name's content replaced, or
// dropped when content is nil.
func replaceZipEntry(t *testing.T, data []byte, name string, content []byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	found := false
	for _, f := range zr.File {
		body := content
		if f.Name == name {
			found = true
			if content == nil {
				continue
			}
		} else {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			if body, err = io.ReadAll(rc); err != nil {
				t.Fatal(err)
			}
			rc.Close()
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if !found {
		t.Fatalf("no entry %s", name)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
