package weights

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// maxHeaderSize bounds a safetensors JSON header (the reference implementation's limit).
const maxHeaderSize = 100 << 20

// metadataKey is the header entry that holds free-form string metadata.
const metadataKey = "__metadata__"

// stEntry is one tensor's header entry.
type stEntry struct {
	DType   DType   `json:"dtype"`
	Shape   []int   `json:"shape"`
	Offsets []int64 `json:"data_offsets"`
}

// ReadSafetensors reads a safetensors file: an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__":
// {...}}, then the data. It reads F32, F64, F16 and BF16 (and integer and bool)
// tensors as float32, in the order of their data in the file, and returns the
// metadata (nil when absent). Offsets must lie inside the data, not overlap and
// match each tensor's shape and dtype. Every error names the file.
func ReadSafetensors(path string) (*StateDict, map[string]string, error) {
	sd, meta, err := readSafetensors(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	sd.Path = path
	return sd, meta, nil
}

func readSafetensors(path string) (*StateDict, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	return decodeSafetensors(f, info.Size())
}

// decodeSafetensors reads a safetensors file of size bytes from f.
func decodeSafetensors(f io.ReaderAt, size int64) (*StateDict, map[string]string, error) {
	var lenBuf [8]byte
	if _, err := f.ReadAt(lenBuf[:], 0); err != nil {
		return nil, nil, fmt.Errorf("safetensors header length: %w", errTruncated)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > maxHeaderSize || int64(hlen) > size-8 {
		return nil, nil, fmt.Errorf("safetensors header of %d bytes does not fit in a %d-byte file", hlen, size)
	}
	header := make([]byte, hlen)
	if _, err := f.ReadAt(header, 8); err != nil {
		return nil, nil, fmt.Errorf("safetensors header: %w", err)
	}
	names, entries, meta, err := parseHeader(header)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors header: %w", err)
	}
	dataStart := 8 + int64(hlen)
	if err := checkLayout(names, entries, size-dataStart); err != nil {
		return nil, nil, err
	}

	sd := &StateDict{}
	for _, name := range names {
		e := entries[name]
		n, _ := numElements(e.Shape) // checked by checkLayout
		r := io.NewSectionReader(f, dataStart+e.Offsets[0], e.Offsets[1]-e.Offsets[0])
		data, err := readFloats(r, e.DType, n)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if err := sd.Add(name, &Tensor{Shape: e.Shape, Data: data, DType: e.DType}); err != nil {
			return nil, nil, err
		}
	}
	return sd, meta, nil
}

// parseHeader decodes the JSON header, refusing duplicate names and anything but
// one object. The names come back sorted by where their data begins.
func parseHeader(header []byte) ([]string, map[string]stEntry, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(header))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, nil, errors.New("not a JSON object")
	}
	entries := make(map[string]stEntry)
	var meta map[string]string
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, nil, err
		}
		name, _ := tok.(string)
		if _, dup := entries[name]; dup || (name == metadataKey && seenMeta) {
			return nil, nil, nil, fmt.Errorf("%q appears twice", name)
		}
		if name == metadataKey {
			seenMeta = true
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, nil, fmt.Errorf("%s: want an object of strings: %w", metadataKey, err)
			}
			continue
		}
		var e stEntry
		if err := dec.Decode(&e); err != nil {
			return nil, nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		entries[name] = e
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, nil, errors.New("trailing data after the JSON object")
	}
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := entries[names[i]], entries[names[j]]
		if len(a.Offsets) > 0 && len(b.Offsets) > 0 && a.Offsets[0] != b.Offsets[0] {
			return a.Offsets[0] < b.Offsets[0]
		}
		return names[i] < names[j]
	})
	return names, entries, meta, nil
}

// checkLayout checks every entry's dtype, shape and offsets against a data section
// of dataSize bytes. names must be sorted by begin offset.
func checkLayout(names []string, entries map[string]stEntry, dataSize int64) error {
	var prevEnd int64
	prevName := ""
	for _, name := range names {
		e := entries[name]
		if e.DType.Size() == 0 {
			return fmt.Errorf("tensor %q: unsupported dtype %q", name, e.DType)
		}
		if e.Shape == nil {
			return fmt.Errorf("tensor %q: no shape", name)
		}
		n, err := numElements(e.Shape)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		if len(e.Offsets) != 2 {
			return fmt.Errorf("tensor %q: data_offsets has %d numbers, want 2", name, len(e.Offsets))
		}
		begin, end := e.Offsets[0], e.Offsets[1]
		if begin < 0 || end < begin || end > dataSize {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] outside the %d data bytes", name, begin, end, dataSize)
		}
		if nbytes, ok := mulInt(n, e.DType.Size()); !ok || int64(nbytes) != end-begin {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] hold %d bytes, but shape %v of %s needs %d",
				name, begin, end, end-begin, e.Shape, e.DType, nbytes)
		}
		if begin < prevEnd {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap tensor %q", name, begin, end, prevName)
		}
		if end > begin {
			prevEnd, prevName = end, name
		}
	}
	return nil
}

// WriteSafetensors writes sd as a safetensors file of F32 tensors in sd.Names
// order, with optional string metadata, atomically (a temporary file in the same
// directory, fsynced, then renamed over path).
func WriteSafetensors(path string, sd *StateDict, metadata map[string]string) error {
	header, err := safetensorsHeader(sd, metadata)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	err = writeFileAtomic(path, func(w io.Writer) error {
		if _, err := w.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(header)))); err != nil {
			return err
		}
		if _, err := w.Write(header); err != nil {
			return err
		}
		buf := make([]byte, 0, readChunk)
		for _, name := range sd.Names {
			for _, v := range sd.Tensors[name].Data {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
				if len(buf) == cap(buf) {
					if _, err := w.Write(buf); err != nil {
						return err
					}
					buf = buf[:0]
				}
			}
		}
		_, err := w.Write(buf)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// safetensorsHeader builds the JSON header for sd, padded with spaces so that the
// data starts at a multiple of 8 bytes, after checking sd is consistent.
func safetensorsHeader(sd *StateDict, metadata map[string]string) ([]byte, error) {
	if len(sd.Names) != len(sd.Tensors) {
		return nil, fmt.Errorf("state dict has %d names but %d tensors", len(sd.Names), len(sd.Tensors))
	}
	var b bytes.Buffer
	b.WriteByte('{')
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "%q:%s", metadataKey, m)
	}
	var offset int64
	seen := make(map[string]bool, len(sd.Names))
	for i, name := range sd.Names {
		t, ok := sd.Tensors[name]
		if !ok || name == metadataKey || seen[name] {
			return nil, fmt.Errorf("tensor name %q is duplicated, reserved or has no tensor", name)
		}
		seen[name] = true
		n, err := numElements(t.Shape)
		if err != nil || n != len(t.Data) {
			return nil, fmt.Errorf("tensor %q has shape %v but %d values", name, t.Shape, len(t.Data))
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		key, _ := json.Marshal(name)
		e, _ := json.Marshal(stEntry{DType: F32, Shape: shape, Offsets: []int64{offset, offset + 4*int64(n)}})
		if i > 0 || len(metadata) > 0 {
			b.WriteByte(',')
		}
		b.Write(key)
		b.WriteByte(':')
		b.Write(e)
		offset += 4 * int64(n)
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes(), nil
}
