package layers

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"vktrain/vk"
)

// PreprocessParams describes the conversion of uint8 image records (CIFAR's
// layout: the R plane, then G, then B, each SrcH x SrcW bytes, row-major) into
// normalized network input: bilinear resize to Resize x Resize, center crop to
// Crop x Crop, /255, (v - Mean[c]) / Std[c], and optional augmentation; see
// ref.Preprocess, which it matches.
type PreprocessParams struct {
	SrcH, SrcW int        // source image size; a record is 3*SrcH*SrcW bytes
	Resize     int        // bilinear resize (align_corners=False) to Resize x Resize
	Crop       int        // center crop to Crop x Crop, Crop <= Resize
	Mean, Std  [3]float64 // per-channel normalization of values in [0, 1]
	Pad        int        // augmentation: crop window shift of up to Pad pixels each way
	Flip       bool       // augmentation: random horizontal flip
	NCHW       bool       // output N x 3 x Crop x Crop instead of CNHW (3 x N x Crop x Crop)
}

// Validate reports whether the parameters are usable.
func (p PreprocessParams) Validate() error {
	if p.SrcH < 1 || p.SrcW < 1 || p.Resize < 1 || p.Crop < 1 || p.Pad < 0 {
		return fmt.Errorf("preprocess: bad sizes %+v", p)
	}
	if p.Crop > p.Resize {
		return fmt.Errorf("preprocess: crop %d larger than resize %d", p.Crop, p.Resize)
	}
	if 2*p.Resize*max(p.SrcH, p.SrcW) >= math.MaxInt32 || p.Pad > math.MaxInt32/4 {
		return fmt.Errorf("preprocess: sizes %+v too large", p)
	}
	for c, s := range p.Std {
		if s == 0 || math.IsNaN(s) || math.IsInf(s, 0) || math.IsNaN(p.Mean[c]) || math.IsInf(p.Mean[c], 0) {
			return fmt.Errorf("preprocess: mean %v / std %v of channel %d", p.Mean[c], s, c)
		}
	}
	return nil
}

// RecordBytes is the size of one record, 3*SrcH*SrcW.
func (p PreprocessParams) RecordBytes() int { return 3 * p.SrcH * p.SrcW }

// Augmented reports whether the parameters ask for augmentation.
func (p PreprocessParams) Augmented() bool { return p.Pad > 0 || p.Flip }

// CenterCropOffset is torchvision 0.14's center-crop offset of a crop of size
// crop in size pixels: round((size - crop) / 2) with round-half-to-even.
func CenterCropOffset(size, crop int) int {
	return int(math.RoundToEven(float64(size-crop) / 2))
}

// NewRecordBuffer allocates a host buffer (mapped, written every step) for n
// records of p's size.
func (r *Runtime) NewRecordBuffer(name string, p PreprocessParams, n int) (*vk.Buffer, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("record buffer %q: %d records", name, n)
	}
	return r.Dev.NewHostBuffer(int64(n)*int64(p.RecordBytes()), name)
}

// PackRecords packs record bytes four to a uint32 word, little-endian (byte k
// of the stream in bits 8*(k%4) of word k/4), the last word padded with zeros:
// the layout the preprocess kernel reads. dst is reused if large enough.
func PackRecords(dst []uint32, records []byte) []uint32 {
	n := (len(records) + 3) / 4
	if cap(dst) < n {
		dst = make([]uint32, n)
	}
	dst = dst[:n]
	full := len(records) / 4
	for i := 0; i < full; i++ {
		dst[i] = binary.LittleEndian.Uint32(records[4*i:])
	}
	if full < n {
		var tail [4]byte
		copy(tail[:], records[4*full:])
		dst[full] = binary.LittleEndian.Uint32(tail[:])
	}
	return dst
}

// WriteRecords copies whole records into b starting at record index first.
// Device memory is little-endian, so the bytes land packed as PackRecords
// describes. It must not race with a submission reading b.
func WriteRecords(b *vk.Buffer, p PreprocessParams, first int, records []byte) error {
	rb := p.RecordBytes()
	if rb <= 0 || len(records)%rb != 0 || first < 0 {
		return fmt.Errorf("write records: %d bytes from record %d are not whole records of %d bytes", len(records), first, rb)
	}
	return b.Write(int64(first)*int64(rb), records)
}

// Flags of the preprocess kernel.
const (
	ppAugment = 1
	ppFlip    = 2
	ppNCHW    = 4
)

// Preprocess records the conversion of n records (read from records, which
// starts at a 4-byte aligned offset and holds n*RecordBytes bytes) into out
// (3*n*Crop*Crop elements, CNHW or NCHW as p says) in one pass, as
// ref.Preprocess does. With augmentation (Pad > 0 or Flip) and a non-nil state,
// image i's shift and flip come from Philox4x32 of counter (i, 1, step lo,
// step hi) under key (seed lo, seed hi), step and seed read from state when the
// stream runs; a nil state disables augmentation (evaluation). Outputs larger
// than the device's storage range are written in several dispatches.
func (r *Runtime) Preprocess(s *vk.Stream, p PreprocessParams, records vk.Range, n int, state *StepState, out *Tensor) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if n < 1 || out == nil || records.Buf == nil {
		return errors.New("preprocess: no images, records or output")
	}
	cc := p.Crop * p.Crop
	if out.Len() != 3*n*cc {
		return fmt.Errorf("preprocess: output %q has %d elements, want 3 x %d x %d x %d", out.Name, out.Len(), n, p.Crop, p.Crop)
	}
	rb := int64(p.RecordBytes())
	if records.Offset%4 != 0 || records.Size < int64(n)*rb {
		return fmt.Errorf("preprocess: records range [%d, +%d) must start 4-byte aligned and hold %d records of %d bytes", records.Offset, records.Size, n, rb)
	}
	flags := 0
	aug := state != nil && p.Augmented()
	if aug {
		flags |= ppAugment
		if p.Flip {
			flags |= ppFlip
		}
	}
	stateRange := records // bound, never read, without augmentation
	if aug {
		stateRange = state.Range()
	}
	if p.NCHW {
		flags |= ppNCHW
	}
	var scale, bias [3]float32
	for c := range scale {
		scale[c] = float32(1 / (255 * p.Std[c]))
		bias[c] = float32(-p.Mean[c] / p.Std[c])
	}

	// Runs of images whose output and record bindings fit the storage range.
	// CNHW: one channel per dispatch once the output needs splitting (a channel's
	// block of consecutive images is contiguous); NCHW: all three.
	align := int64(16)
	if a := int64(r.Dev.Info.MinStorageBufferAlign); a > align {
		align = a
	}
	limit := r.storageLimit
	channels := [][2]int{{0, 3}}
	if !p.NCHW && int64(4*out.Len()) > limit-align-16 {
		channels = [][2]int{{0, 1}, {1, 1}, {2, 1}}
	}
	outUnit := int64(4 * cc * channels[0][1])
	per := min((limit-align-16)/outUnit, (limit-align-16)/rb)
	if per < 1 {
		return fmt.Errorf("preprocess: one image exceeds the device's storage range of %d bytes", limit)
	}
	segs := ceilDiv(p.Crop, 8)
	whole := out.Range()
	recWhole := records.Buf.Whole()
	for _, ch := range channels {
		for i0 := 0; i0 < n; i0 += int(per) {
			nb := min(int(per), n-i0)
			// Output elements [first, first+count) of the whole output.
			first, count := int64(i0*3*cc), int64(nb*3*cc)
			if !p.NCHW {
				first, count = int64((ch[0]*n+i0)*cc), int64(nb*ch[1]*cc)
			}
			outRange, outStart := ppSlice(out.Buffer(), 4*first, 4*(first+count), align, whole.Size)
			recFirst := records.Offset + int64(i0)*rb
			recRange, recStart := ppSlice(records.Buf, recFirst, recFirst+int64(nb)*rb, align, recWhole.Size)
			pc := push(nil).u32(p.SrcH, p.SrcW, p.Resize, p.Crop, CenterCropOffset(p.Resize, p.Crop), p.Pad, flags,
				n, i0, nb, ch[0], ch[1], int(outStart/4), int((recStart-records.Offset)/4)).
				f32(scale[:]...).f32(bias[:]...)
			items := nb * ch[1] * p.Crop * segs
			if err := r.dispatch(s, "preprocess", nil, r.groups1D(items, 64), pc, recRange, stateRange, outRange); err != nil {
				return fmt.Errorf("preprocess into %q: %w", out.Name, err)
			}
		}
	}
	return nil
}

// ppSlice is the binding of bytes [first, end) of b: it starts at first rounded
// down to align and ends at end rounded up to 16 bytes (within the buffer's
// allocated size); start is its first byte.
func ppSlice(b *vk.Buffer, first, end, align, alloc int64) (rng vk.Range, start int64) {
	start = first / align * align
	end = min((end+15)&^15, alloc)
	return b.Slice(start, end-start), start
}
