package weights

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// DType names an element type as safetensors spells it ("F32", "BF16", ...).
type DType string

// The element types this package can read. Every one is converted to float32.
const (
	F32  DType = "F32"
	F64  DType = "F64"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	Bool DType = "BOOL"
)

// Size returns the number of bytes of one element, or 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16, I16:
		return 2
	case I8, U8, Bool:
		return 1
	}
	return 0
}

// decode converts len(dst) little-endian elements of type d from src into dst.
// src must hold exactly len(dst)*d.Size() bytes.
func (d DType) decode(dst []float32, src []byte) {
	le := binary.LittleEndian
	switch d {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(src[4*i:]))
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(src[8*i:])))
		}
	case F16:
		for i := range dst {
			dst[i] = halfToFloat32(le.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(le.Uint16(src[2*i:])) << 16)
		}
	case I64:
		for i := range dst {
			dst[i] = float32(int64(le.Uint64(src[8*i:])))
		}
	case I32:
		for i := range dst {
			dst[i] = float32(int32(le.Uint32(src[4*i:])))
		}
	case I16:
		for i := range dst {
			dst[i] = float32(int16(le.Uint16(src[2*i:])))
		}
	case I8:
		for i := range dst {
			dst[i] = float32(int8(src[i]))
		}
	case U8:
		for i := range dst {
			dst[i] = float32(src[i])
		}
	case Bool:
		for i := range dst {
			if src[i] != 0 {
				dst[i] = 1
			} else {
				dst[i] = 0
			}
		}
	}
}

// halfToFloat32 converts IEEE 754 binary16 bits to a float32 exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0: // zero or subnormal: mant * 2^-24
		f := float32(mant) / (1 << 24)
		if sign != 0 {
			f = -f
		}
		return f
	default:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	}
}

// readChunk is how many bytes readFloats decodes at a time.
const readChunk = 1 << 16

// readFloats reads n elements of type d from r and converts them to float32,
// holding at most readChunk raw bytes at a time.
func readFloats(r io.Reader, d DType, n int) ([]float32, error) {
	size := d.Size()
	if size == 0 {
		return nil, fmt.Errorf("unsupported dtype %q", d)
	}
	out := make([]float32, n)
	perChunk := readChunk / size
	buf := make([]byte, min(n, perChunk)*size)
	for done := 0; done < n; {
		k := min(n-done, perChunk)
		raw := buf[:k*size]
		if _, err := io.ReadFull(r, raw); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading %d %s elements: %w", n, d, err)
		}
		d.decode(out[done:done+k], raw)
		done += k
	}
	return out, nil
}

// mulInt returns a*b for non-negative a and b, and false if it overflows an int.
func mulInt(a, b int) (int, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	if a > math.MaxInt/b {
		return 0, false
	}
	return a * b, true
}

// numElements returns the product of shape, checking that every dimension is
// non-negative and that the product fits in an int.
func numElements(shape []int) (int, error) {
	n := 1
	for _, s := range shape {
		if s < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		var ok bool
		if n, ok = mulInt(n, s); !ok {
			return 0, fmt.Errorf("shape %v has too many elements", shape)
		}
	}
	return n, nil
}
