package cifar10

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// realDir returns the folder with the real CIFAR-10 batch files, or skips.
func realDir(t *testing.T) string {
	t.Helper()
	cands := []string{filepath.Join("..", "..", "..", "shared", "data", DirName)}
	if env := os.Getenv("VKTRAIN_CIFAR_DIR"); env != "" {
		cands = []string{filepath.Join(env, DirName), env}
	}
	for _, d := range cands {
		if _, err := os.Stat(filepath.Join(d, TestFile)); err == nil {
			return d
		}
	}
	t.Skipf("real CIFAR-10 batch files not found in %v (set VKTRAIN_CIFAR_DIR to a folder holding %s)", cands, TestFile)
	return ""
}

// makeBatch returns n records with labels (first+i)%10 and pixel bytes
// derived from the record index and the salt.
func makeBatch(n, first int, salt byte) []byte {
	b := make([]byte, n*RecordBytes)
	for r := 0; r < n; r++ {
		rec := b[r*RecordBytes : (r+1)*RecordBytes]
		rec[0] = byte((first + r) % NumClasses)
		for j := 1; j < RecordBytes; j++ {
			rec[j] = byte(j*7+r*13) ^ salt
		}
	}
	return b
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRealTrainingBatches(t *testing.T) {
	dir := realDir(t)
	d, err := LoadDir(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	n := d.Len()
	if n == 0 || n%MaxRecords != 0 || n > NumTrain*MaxRecords {
		t.Fatalf("%d training records, want a multiple of 10000 up to 50000", n)
	}
	t.Logf("%d training records from %s", n, dir)
	if _, err := os.Stat(filepath.Join(dir, TrainFile(1))); err == nil {
		if got, want := d.Labels[:10], []uint8{6, 9, 9, 4, 1, 1, 2, 7, 8, 3}; !reflect.DeepEqual(got, want) {
			t.Errorf("first labels %v, want %v", got, want)
		}
	}
	counts := d.ClassCounts()
	sum := 0
	for c, k := range counts {
		sum += k
		if frac := float64(k) / float64(n); frac < 0.09 || frac > 0.11 {
			t.Errorf("class %d (%s): %d of %d images", c, ClassNames()[c], k, n)
		}
	}
	if sum != n {
		t.Errorf("histogram sums to %d, want %d", sum, n)
	}
	// Per-channel means on the 0..1 scale, against the published values for
	// all 50000 (a single batch is within 0.01 of them).
	want := [3]float64{0.4914, 0.4822, 0.4465}
	var mean [3]float64
	for i := 0; i < n; i++ {
		img := d.Image(i)
		for ch := 0; ch < Channels; ch++ {
			s := 0
			for _, v := range img[ch*1024 : (ch+1)*1024] {
				s += int(v)
			}
			mean[ch] += float64(s)
		}
	}
	for ch := range mean {
		mean[ch] /= float64(n) * 1024 * 255
		if d := mean[ch] - want[ch]; d < -0.01 || d > 0.01 {
			t.Errorf("channel %d mean %.4f, want %.4f ± 0.01", ch, mean[ch], want[ch])
		}
	}
	t.Logf("channel means %.4f, class counts %v", mean, counts)
}

func TestRealTestBatch(t *testing.T) {
	dir := realDir(t)
	d, err := ReadBatchFile(filepath.Join(dir, TestFile))
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, TestFile))
	if int64(d.Len()) != fi.Size()/RecordBytes || len(d.Images) != d.Len()*ImageBytes {
		t.Fatalf("%d records from a %d-byte file", d.Len(), fi.Size())
	}
	if got, want := d.Labels[:10], []uint8{3, 8, 8, 0, 6, 6, 1, 6, 3, 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("first labels %v, want %v", got, want)
	}
	counts := d.ClassCounts()
	for c, k := range counts {
		if k == 0 {
			t.Errorf("class %d has no test images", c)
		}
	}
	t.Logf("%d test records, class counts %v", d.Len(), counts)
	viaDir, err := LoadDir(dir, false)
	if err != nil || !reflect.DeepEqual(viaDir, d) {
		t.Errorf("LoadDir(test) differs from ReadBatchFile (err %v)", err)
	}
}

func TestReadBatchFileLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.bin")
	raw := makeBatch(3, 4, 0)
	writeFile(t, path, raw)
	d, err := ReadBatchFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 3 || !reflect.DeepEqual(d.Labels, []uint8{4, 5, 6}) {
		t.Fatalf("got %d records, labels %v", d.Len(), d.Labels)
	}
	for r := 0; r < 3; r++ {
		if got, want := d.Image(r), raw[r*RecordBytes+1:(r+1)*RecordBytes]; !reflect.DeepEqual(got, want) {
			t.Fatalf("image %d differs from the file", r)
		}
	}
}

func TestReadBatchFileBadSize(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{2*RecordBytes + 5, RecordBytes - 1, 0} {
		path := filepath.Join(dir, fmt.Sprintf("bad%d.bin", size))
		writeFile(t, path, makeBatch(3, 0, 0)[:size])
		_, err := ReadBatchFile(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), fmt.Sprintf("size %d bytes", size)) {
			t.Errorf("size %d: want an error naming %s and its size, got %v", size, path, err)
		}
	}
	if _, err := ReadBatchFile(filepath.Join(dir, "missing.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadBatchFile(dir); err == nil {
		t.Error("a directory was read as a batch")
	}
}

func TestReadBatchFileBadLabel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.bin")
	raw := makeBatch(4, 0, 0)
	raw[2*RecordBytes] = 10
	writeFile(t, path, raw)
	_, err := ReadBatchFile(path)
	if err == nil {
		t.Fatal("label 10 accepted")
	}
	for _, s := range []string{path, "record 2", "label 10"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
}

func TestLoadDirSubsetsAndErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, TrainFile(4)), makeBatch(2, 7, 1))
	writeFile(t, filepath.Join(dir, TrainFile(2)), makeBatch(3, 0, 2))
	d, err := LoadDir(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d.Labels, []uint8{0, 1, 2, 7, 8}) {
		t.Errorf("labels %v: batches not concatenated in order 2, 4", d.Labels)
	}
	if d.Image(3)[0] != makeBatch(2, 7, 1)[1] {
		t.Error("image 3 is not the first record of data_batch_4")
	}
	_, err = LoadDir(dir, false)
	if err == nil || !strings.Contains(err.Error(), TestFile) || !strings.Contains(err.Error(), dir) {
		t.Errorf("missing test batch: %v", err)
	}
	empty := t.TempDir()
	_, err = LoadDir(empty, true)
	if err == nil || !strings.Contains(err.Error(), "data_batch_1.bin") || !strings.Contains(err.Error(), "data_batch_5.bin") || !strings.Contains(err.Error(), empty) {
		t.Errorf("empty dir: %v", err)
	}
	writeFile(t, filepath.Join(dir, TrainFile(5)), []byte("short"))
	if _, err := LoadDir(dir, true); err == nil || !strings.Contains(err.Error(), TrainFile(5)) {
		t.Errorf("bad data_batch_5: %v", err)
	}
}

func TestDatasetMethods(t *testing.T) {
	d, err := ParseBatch("mem", makeBatch(5, 3, 0))
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.Subset([]int{4, 0, 4})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Labels, []uint8{7, 3, 7}) || !reflect.DeepEqual(s.Image(1), d.Image(0)) || !reflect.DeepEqual(s.Image(2), d.Image(4)) {
		t.Errorf("subset labels %v", s.Labels)
	}
	s.Images[0] ^= 0xff
	if d.Image(4)[0] == s.Images[0] {
		t.Error("Subset shares memory with its source")
	}
	if _, err := d.Subset([]int{5}); err == nil || !strings.Contains(err.Error(), "index 5") {
		t.Errorf("out-of-range subset: %v", err)
	}
	if d.Image(-1) != nil || d.Image(5) != nil {
		t.Error("out-of-range Image not nil")
	}
	if img := d.Image(1); cap(img) != ImageBytes {
		t.Error("Image's capacity reaches into the next image")
	}
	var nilDS *Dataset
	if nilDS.Len() != 0 || nilDS.Image(0) != nil {
		t.Error("nil dataset")
	}
	if err := (&Dataset{Images: make([]byte, 10), Labels: []uint8{1}}).Validate(); err == nil {
		t.Error("inconsistent dataset validated")
	}
	if n := ClassNames(); n[0] != "plane" || n[9] != "truck" {
		t.Errorf("class names %v", n)
	}
}
