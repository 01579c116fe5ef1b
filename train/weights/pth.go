package weights

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"

	"github.com/nlpodyssey/gopickle/types"
)

// maxPickleSize bounds the data.pkl of a zip-format file.
const maxPickleSize = 256 << 20

// ReadPTH reads a PyTorch state dict saved with torch.save, in the zip format
// (torch >= 1.6) or the legacy format, and returns its tensors in file order. A
// checkpoint dict that holds the state dict under "state_dict" or "model" is
// accepted too. Every error names the file.
func ReadPTH(path string) (*StateDict, error) {
	sd, err := readPTH(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sd.Path = path
	return sd, nil
}

func readPTH(path string) (*StateDict, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return decodePTH(f, info.Size())
}

// decodePTH reads a .pth file of size bytes from r, telling the format by its first bytes.
func decodePTH(r io.ReaderAt, size int64) (*StateDict, error) {
	var head [4]byte
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return nil, fmt.Errorf("not a PyTorch file: %w", errTruncated)
	}
	switch {
	case string(head[:]) == "PK\x03\x04":
		return readZipPTH(r, size)
	case head[0] == 0x80: // pickle protocol 2+ opcode: the legacy format's magic number
		return readLegacyPTH(io.NewSectionReader(r, 0, size), size)
	}
	return nil, fmt.Errorf("not a PyTorch file (neither a zip archive nor a pickle)")
}

// readZipPTH reads the zip format: <archive>/data.pkl holds the pickle, and
// <archive>/data/<key> the raw little-endian bytes of each storage.
func readZipPTH(f io.ReaderAt, size int64) (*StateDict, error) {
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return nil, fmt.Errorf("bad zip archive: %w", err)
	}
	entries := make(map[string]*zip.File, len(zr.File))
	var pkl *zip.File
	for _, zf := range zr.File {
		entries[zf.Name] = zf
		dir, base, ok := strings.Cut(zf.Name, "/")
		if ok && base == "data.pkl" && dir != "" {
			if pkl != nil {
				return nil, fmt.Errorf("zip archive has two data.pkl entries (%s, %s)", pkl.Name, zf.Name)
			}
			pkl = zf
		}
	}
	if pkl == nil {
		return nil, fmt.Errorf("zip archive has no <archive>/data.pkl: not a torch.save file")
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	if entries[prefix+"constants.pkl"] != nil {
		return nil, fmt.Errorf("this is a TorchScript archive (torch.jit.save), not a state dict")
	}

	data, err := readZipEntry(pkl, maxPickleSize)
	if err != nil {
		return nil, err
	}
	scanned, err := nextPickle(newPickleSource(bytes.NewReader(data), int64(len(data))))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkl.Name, err)
	}
	u := newUnpickler()
	obj, err := u.load(scanned, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkl.Name, err)
	}
	tensors, err := stateDictEntries(obj)
	if err != nil {
		return nil, err
	}
	for _, s := range u.storages {
		zf := entries[prefix+"data/"+s.key]
		if zf == nil {
			return nil, fmt.Errorf("storage %q: no entry %sdata/%s in the zip archive", s.key, prefix, s.key)
		}
		if s.data, err = readZipStorage(zf, s); err != nil {
			return nil, err
		}
	}
	return buildStateDict(tensors)
}

// readZipEntry reads a whole zip entry of at most limit bytes, verifying its checksum.
func readZipEntry(zf *zip.File, limit uint64) ([]byte, error) {
	if zf.UncompressedSize64 > limit {
		return nil, fmt.Errorf("%s: %d bytes is more than the %d allowed", zf.Name, zf.UncompressedSize64, limit)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", zf.Name, err)
	}
	defer rc.Close()
	// Reading one byte past the declared size makes archive/zip check the CRC.
	data, err := io.ReadAll(io.LimitReader(rc, int64(zf.UncompressedSize64)+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", zf.Name, err)
	}
	if uint64(len(data)) != zf.UncompressedSize64 {
		return nil, fmt.Errorf("%s: holds %d bytes, its header says %d", zf.Name, len(data), zf.UncompressedSize64)
	}
	return data, nil
}

// readZipStorage reads and converts the storage s from its zip entry.
func readZipStorage(zf *zip.File, s *storageRef) ([]float32, error) {
	want, ok := mulInt(s.numel, s.dtype.Size())
	if !ok || uint64(want) != zf.UncompressedSize64 {
		return nil, fmt.Errorf("storage %q: entry %s holds %d bytes, want %d %s elements",
			s.key, zf.Name, zf.UncompressedSize64, s.numel, s.dtype)
	}
	// Stored entries (what torch writes) are bounded by the file; bound deflated
	// ones by deflate's best ratio so that a small file cannot claim gigabytes.
	if zf.Method != zip.Store && zf.UncompressedSize64/1032 > zf.CompressedSize64 {
		return nil, fmt.Errorf("storage %q: entry %s claims an impossible compression ratio", s.key, zf.Name)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("storage %q: %s: %w", s.key, zf.Name, err)
	}
	defer rc.Close()
	data, err := readFloats(rc, s.dtype, s.numel)
	if err == nil {
		// Reading to the end makes archive/zip check the CRC.
		var one [1]byte
		if n, rerr := rc.Read(one[:]); n != 0 || !errors.Is(rerr, io.EOF) {
			err = fmt.Errorf("corrupt entry: %w", rerr)
			if rerr == nil {
				err = fmt.Errorf("entry longer than declared")
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("storage %q: %s: %w", s.key, zf.Name, err)
	}
	return data, nil
}

// The legacy format's first two pickles.
const (
	legacyMagic    = "1950a86a20f9469cfc6c" // hex of the magic number
	legacyProtocol = 1001
)

// readLegacyPTH reads the legacy format: pickles of the magic number, the protocol
// version and sys_info, then the data pickle, then a pickle of the storage keys, then
// for each key an int64 element count followed by the raw little-endian elements.
func readLegacyPTH(r io.Reader, size int64) (*StateDict, error) {
	src := newPickleSource(r, size)
	u := newUnpickler()
	next := func(what string, storages bool) (any, error) {
		data, err := nextPickle(src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		v, err := u.load(data, storages)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return v, nil
	}

	magic, err := next("magic number", false)
	if err != nil {
		return nil, err
	}
	if m, ok := magic.(*big.Int); !ok || m.Text(16) != legacyMagic {
		return nil, fmt.Errorf("not a PyTorch file: wrong magic number")
	}
	proto, err := next("protocol version", false)
	if err != nil {
		return nil, err
	}
	if proto != legacyProtocol {
		return nil, fmt.Errorf("unsupported legacy protocol version %v, want %d", proto, legacyProtocol)
	}
	sysInfo, err := next("sys_info", false)
	if err != nil {
		return nil, err
	}
	if entries, ok := dictEntries(sysInfo); !ok || lookup(entries, "little_endian") != true {
		return nil, fmt.Errorf("file was saved on a big-endian machine or has no sys_info; not supported")
	}
	obj, err := next("data", true)
	if err != nil {
		return nil, err
	}
	tensors, err := stateDictEntries(obj)
	if err != nil {
		return nil, err
	}
	keysObj, err := next("storage keys", false)
	if err != nil {
		return nil, err
	}
	keys, ok := keysObj.(*types.List)
	if !ok {
		return nil, fmt.Errorf("storage keys: want a list, got %s", describe(keysObj))
	}
	for _, k := range *keys {
		key, _ := k.(string)
		s := u.storages[key]
		if s == nil || s.data != nil {
			return nil, fmt.Errorf("storage keys: unexpected key %s", describe(k))
		}
		if s.data, err = readLegacyStorage(src, s); err != nil {
			return nil, err
		}
	}
	return buildStateDict(tensors)
}

// readLegacyStorage reads one storage record: an int64 element count, then the elements.
func readLegacyStorage(src *pickleSource, s *storageRef) ([]float32, error) {
	head, err := src.take(8)
	if err != nil {
		return nil, fmt.Errorf("storage %q: %w", s.key, err)
	}
	if n := int64(binary.LittleEndian.Uint64(head)); n != int64(s.numel) {
		return nil, fmt.Errorf("storage %q: record says %d elements, pickle says %d", s.key, n, s.numel)
	}
	if nbytes, ok := mulInt(s.numel, s.dtype.Size()); !ok || int64(nbytes) > src.remaining {
		return nil, fmt.Errorf("storage %q: %d %s elements: %w", s.key, s.numel, s.dtype, errTruncated)
	}
	data, err := readFloats(src, s.dtype, s.numel)
	if err != nil {
		return nil, fmt.Errorf("storage %q: %w", s.key, err)
	}
	return data, nil
}

// buildStateDict materializes every tensor from its (already read) storage.
func buildStateDict(tensors []namedTensor) (*StateDict, error) {
	sd := &StateDict{Tensors: make(map[string]*Tensor, len(tensors))}
	for _, nt := range tensors {
		t, err := materialize(nt.ref)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", nt.name, err)
		}
		if err := sd.Add(nt.name, t); err != nil {
			return nil, err
		}
	}
	return sd, nil
}

// materialize copies a (possibly strided, offset) view of a storage into a dense
// row-major tensor, after checking that the view lies inside the storage. A view
// with more elements than its storage (overlapping strides, as from expand) is
// refused: it never occurs in a state dict and would let a tiny file ask for
// unbounded memory.
func materialize(ref *tensorRef) (*Tensor, error) {
	s := ref.storage
	if s.data == nil && s.numel > 0 {
		return nil, fmt.Errorf("storage %q was never read", s.key)
	}
	n, err := numElements(ref.shape)
	if err != nil {
		return nil, err
	}
	t := &Tensor{Shape: ref.shape, DType: s.dtype}
	if n == 0 {
		t.Data = []float32{}
		return t, nil
	}
	if n > s.numel {
		return nil, fmt.Errorf("shape %v has %d elements but its storage %q only %d", ref.shape, n, s.key, s.numel)
	}
	last := ref.offset // index of the view's last element
	for i, dim := range ref.shape {
		step, ok := mulInt(dim-1, ref.stride[i])
		if !ok || last > s.numel-step {
			last = s.numel
			break
		}
		last += step
	}
	if last >= s.numel {
		return nil, fmt.Errorf("shape %v, stride %v at offset %d runs past the end of storage %q (%d elements)",
			ref.shape, ref.stride, ref.offset, s.key, s.numel)
	}
	if isContiguous(ref.shape, ref.stride) {
		window := s.data[ref.offset : ref.offset+n]
		if ref.offset == 0 && n == s.numel && !s.claimed {
			s.claimed = true // hand the storage over instead of copying it
			t.Data = window
		} else {
			t.Data = append([]float32(nil), window...)
		}
		return t, nil
	}
	t.Data = gather(s.data, ref.offset, ref.shape, ref.stride, n)
	return t, nil
}

// isContiguous reports whether strides are the row-major strides of shape
// (dimensions of size 1 may have any stride).
func isContiguous(shape, stride []int) bool {
	want := 1
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] != 1 && stride[i] != want {
			return false
		}
		want *= shape[i]
	}
	return true
}

// gather copies the n elements of a strided view into row-major order. The caller
// has checked that every index lies inside data.
func gather(data []float32, offset int, shape, stride []int, n int) []float32 {
	out := make([]float32, n)
	idx := make([]int, len(shape))
	pos := offset
	for i := range out {
		out[i] = data[pos]
		for d := len(shape) - 1; d >= 0; d-- { // odometer increment of idx
			idx[d]++
			pos += stride[d]
			if idx[d] < shape[d] {
				break
			}
			pos -= idx[d] * stride[d]
			idx[d] = 0
		}
	}
	return out
}
