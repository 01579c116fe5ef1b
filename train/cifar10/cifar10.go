// Package cifar10 reads the CIFAR-10 data set in its official binary format,
// downloads and unpacks it into the cache when it is missing, and draws a
// synthetic stand-in with the same shape for demos and tests.
//
// An image is 3072 bytes as in the files: the red plane, then green, then
// blue, each 32x32 row-major, values 0..255.
package cifar10

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The official archive and its md5 digest, as published on
// https://www.cs.toronto.edu/~kriz/cifar.html.
const (
	URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
	MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
)

// Shapes of the data set.
const (
	Side        = 32                       // image width and height
	Channels    = 3                        // R, G, B planes
	ImageBytes  = Side * Side * Channels   // 3072 bytes per image
	RecordBytes = 1 + ImageBytes           // 3073: one label byte, then the image
	NumClasses  = 10                       // labels are 0..9
	DirName     = "cifar-10-batches-bin"   // the folder inside the archive
	ArchiveName = "cifar-10-binary.tar.gz" // the archive's file name in the cache
	TestFile    = "test_batch.bin"         // the test batch's file name
	NumTrain    = 5                        // data_batch_1.bin .. data_batch_5.bin
	MaxRecords  = 10000                    // records per official batch file
)

// ClassNames returns the class names by label, as the PyTorch tutorial
// names them ("plane" for airplane, "car" for automobile).
func ClassNames() [NumClasses]string {
	return [NumClasses]string{"plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
}

// TrainFile returns the name of training batch i, 1 <= i <= NumTrain.
func TrainFile(i int) string { return fmt.Sprintf("data_batch_%d.bin", i) }

// Dataset holds n labelled images in memory.
type Dataset struct {
	// Images holds n*ImageBytes bytes: image i is Images[i*3072:(i+1)*3072],
	// its R plane, G plane and B plane, each 32x32 row-major.
	Images []byte
	// Labels holds n class indices 0..9.
	Labels []uint8
}

// Len returns the number of images.
func (d *Dataset) Len() int {
	if d == nil {
		return 0
	}
	return len(d.Labels)
}

// Image returns the 3072 bytes of image i (sharing memory with d.Images), or
// nil when i is out of range.
func (d *Dataset) Image(i int) []byte {
	if i < 0 || i >= d.Len() || (i+1)*ImageBytes > len(d.Images) {
		return nil
	}
	return d.Images[i*ImageBytes : (i+1)*ImageBytes : (i+1)*ImageBytes]
}

// Subset returns a new Dataset with copies of the images at idx, in that
// order (an index may repeat). An index out of range is an error.
func (d *Dataset) Subset(idx []int) (*Dataset, error) {
	n := d.Len()
	out := &Dataset{Images: make([]byte, 0, len(idx)*ImageBytes), Labels: make([]uint8, 0, len(idx))}
	for k, i := range idx {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("cifar10: subset: index %d (position %d) out of range [0,%d)", i, k, n)
		}
		out.Images = append(out.Images, d.Image(i)...)
		out.Labels = append(out.Labels, d.Labels[i])
	}
	return out, nil
}

// ClassCounts returns how many images carry each label (labels >= 10 are
// not counted).
func (d *Dataset) ClassCounts() [NumClasses]int {
	var c [NumClasses]int
	if d == nil {
		return c
	}
	for _, l := range d.Labels {
		if int(l) < NumClasses {
			c[l]++
		}
	}
	return c
}

// Validate checks that Images and Labels agree in length and all labels are
// 0..9.
func (d *Dataset) Validate() error {
	if d == nil {
		return errors.New("cifar10: nil dataset")
	}
	if len(d.Images) != len(d.Labels)*ImageBytes {
		return fmt.Errorf("cifar10: %d labels but %d image bytes (want %d)", len(d.Labels), len(d.Images), len(d.Labels)*ImageBytes)
	}
	for i, l := range d.Labels {
		if int(l) >= NumClasses {
			return fmt.Errorf("cifar10: record %d has label %d, want 0..%d", i, l, NumClasses-1)
		}
	}
	return nil
}

// ParseBatch parses the bytes of a batch file; name is used in errors. The
// size must be a positive whole multiple of 3073 and every label 0..9.
func ParseBatch(name string, data []byte) (*Dataset, error) {
	d := &Dataset{}
	if err := appendBatch(d, name, data); err != nil {
		return nil, err
	}
	return d, nil
}

func checkSize(name string, size int64) error {
	if size <= 0 || size%RecordBytes != 0 {
		return fmt.Errorf("cifar10: %s: size %d bytes is not a positive whole multiple of the %d-byte record (label + 32x32x3 image); the file is truncated or not a CIFAR-10 binary batch", name, size, RecordBytes)
	}
	return nil
}

func appendBatch(d *Dataset, name string, data []byte) error {
	if err := checkSize(name, int64(len(data))); err != nil {
		return err
	}
	if err := checkLabels(name, data); err != nil {
		return err
	}
	n := len(data) / RecordBytes
	d.Labels = append(d.Labels, make([]uint8, n)...)
	d.Images = append(d.Images, make([]byte, n*ImageBytes)...)
	labels := d.Labels[len(d.Labels)-n:]
	images := d.Images[len(d.Images)-n*ImageBytes:]
	for r := 0; r < n; r++ {
		rec := data[r*RecordBytes : (r+1)*RecordBytes]
		labels[r] = rec[0]
		copy(images[r*ImageBytes:(r+1)*ImageBytes], rec[1:])
	}
	return nil
}

// ReadBatchFile reads one binary batch file (data_batch_N.bin or
// test_batch.bin, any whole number of records).
func ReadBatchFile(path string) (*Dataset, error) {
	d := &Dataset{}
	if err := readBatchInto(d, path); err != nil {
		return nil, err
	}
	return d, nil
}

func readBatchInto(d *Dataset, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cifar10: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cifar10: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("cifar10: %s is not a regular file", path)
	}
	if err := checkSize(path, fi.Size()); err != nil {
		return err
	}
	data := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return fmt.Errorf("cifar10: reading %s: %w", path, err)
	}
	return appendBatch(d, path, data)
}

// batchFiles lists the files a split is made of, in order.
func batchFiles(train bool) []string {
	if !train {
		return []string{TestFile}
	}
	names := make([]string, NumTrain)
	for i := range names {
		names[i] = TrainFile(i + 1)
	}
	return names
}

func splitName(train bool) string {
	if train {
		return "training"
	}
	return "test"
}

// present returns those of names that exist in dir as files.
func present(dir string, names []string) ([]string, error) {
	var have []string
	for _, name := range names {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cifar10: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("cifar10: %s is not a regular file", p)
		}
		have = append(have, name)
	}
	return have, nil
}

// LoadDir reads a folder of binary batch files, such as the archive's
// cifar-10-batches-bin. With train it reads those of data_batch_1.bin ..
// data_batch_5.bin that are present (at least one), in order, concatenated;
// otherwise test_batch.bin.
func LoadDir(dir string, train bool) (*Dataset, error) {
	want := batchFiles(train)
	have, err := present(dir, want)
	if err != nil {
		return nil, err
	}
	if len(have) == 0 {
		what := want[0]
		if train {
			what = "any of " + strings.Join(want, ", ")
		}
		return nil, fmt.Errorf("cifar10: no %s data in %s: expected %s (the binary version's %s folder)", splitName(train), dir, what, DirName)
	}
	var total int64
	for _, name := range have {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("cifar10: %w", err)
		}
		total += fi.Size()
	}
	n := int(total / RecordBytes)
	d := &Dataset{Images: make([]byte, 0, n*ImageBytes), Labels: make([]uint8, 0, n)}
	for _, name := range have {
		if err := readBatchInto(d, filepath.Join(dir, name)); err != nil {
			return nil, err
		}
	}
	return d, nil
}
