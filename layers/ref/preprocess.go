package ref

import (
	"fmt"
	"math"
)

// PreprocessParams describes the conversion of CIFAR-style uint8 records
// into normalized network input; see Preprocess.
type PreprocessParams struct {
	SrcH, SrcW int        // source image size; a record is 3*SrcH*SrcW bytes, planes R, G, B
	Resize     int        // bilinear resize to Resize x Resize
	Crop       int        // center crop to Crop x Crop, Crop <= Resize
	Mean, Std  [3]float64 // per-channel normalization, applied to values in [0, 1]
	Pad        int        // augmentation: crop window shift of up to Pad pixels each way
	Flip       bool       // augmentation: random horizontal flip
	Seed, Step uint64     // augmentation random stream
}

// Validate reports whether the parameters are usable.
func (p PreprocessParams) Validate() error {
	if err := checkAtLeast("preprocess", 1, field{"SrcH", p.SrcH}, field{"SrcW", p.SrcW},
		field{"Resize", p.Resize}, field{"Crop", p.Crop}); err != nil {
		return err
	}
	if err := checkAtLeast("preprocess", 0, field{"Pad", p.Pad}); err != nil {
		return err
	}
	if p.Crop > p.Resize {
		return fmt.Errorf("ref: preprocess crop %d larger than resize %d", p.Crop, p.Resize)
	}
	for c, s := range p.Std {
		if s == 0 || math.IsNaN(s) {
			return fmt.Errorf("ref: preprocess std[%d] = %v", c, s)
		}
	}
	return nil
}

// CenterCropOffset returns the offset of a crop of size crop centred in
// size pixels, following torchvision 0.14's center_crop:
// int(round((size - crop) / 2.0)) with Python's round-half-to-even, so
// (size - crop) = 1 gives 0, 3 gives 2 and 5 gives 2.
func CenterCropOffset(size, crop int) int {
	return int(math.RoundToEven(float64(size-crop) / 2))
}

// bilinearTap is one output coordinate's pair of source indices and
// weights along one axis.
type bilinearTap struct {
	i0, i1 int
	l0, l1 float64
}

// bilinearTaps returns the taps for each of out outputs resampled from in
// inputs with PyTorch's align_corners=False rule: src = (dst+0.5)*in/out
// - 0.5, clamped at 0; i0 = floor(src), i1 = min(i0+1, in-1); l1 = src-i0
// and l0 = 1-l1.
func bilinearTaps(in, out int) []bilinearTap {
	scale := float64(in) / float64(out)
	taps := make([]bilinearTap, out)
	for d := range taps {
		src := max((float64(d)+0.5)*scale-0.5, 0)
		i0 := min(int(src), in-1)
		i1 := min(i0+1, in-1)
		l1 := src - float64(i0)
		taps[d] = bilinearTap{i0: i0, i1: i1, l0: 1 - l1, l1: l1}
	}
	return taps
}

// augmentation returns image i's crop shift (dy, dx) and flip.
func (p PreprocessParams) augmentation(i int) (dy, dx int, flip bool) {
	r := philoxStream(uint32(i), 1, p.Seed, p.Step)
	span := uint32(2*p.Pad + 1)
	return int(r[0]%span) - p.Pad, int(r[1]%span) - p.Pad, p.Flip && r[2]&1 == 1
}

// Preprocess turns n uint8 records into an n x 3 x Crop x Crop float64
// tensor. Each record is 3*SrcH*SrcW bytes: the R plane, then G, then B,
// each row-major. Per image and channel:
//
//  1. Bilinear resize from SrcH x SrcW to Resize x Resize as
//     torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
//     antialias=False) does, on the byte values: along each axis output d
//     samples src = (d+0.5)*in/Resize - 0.5, clamped at 0, blending
//     floor(src) and the next index (clamped to the edge) by their
//     distances.
//  2. Center crop to Crop x Crop at offset CenterCropOffset(Resize, Crop)
//     in both directions (torchvision 0.14's rule).
//  3. Divide by 255 and normalize: (v - Mean[c]) / Std[c].
//
// Augmentation: image i draws r = Philox4x32([i, 1, uint32(Step),
// uint32(Step>>32)], [uint32(Seed), uint32(Seed>>32)]). The crop window
// moves by dy = r[0]%(2*Pad+1) - Pad rows and dx = r[1]%(2*Pad+1) - Pad
// columns; samples that fall outside the resized image read byte value 0
// (black) before normalization. If Flip is set and r[2]&1 == 1, the output
// is mirrored horizontally. With Pad == 0 and Flip unset the output is the
// plain center crop.
//
// Scaling by 1/255 after the resize rather than before (as ToTensor then
// Resize would) changes results only by rounding, well below 1e-12.
func Preprocess(p PreprocessParams, records []uint8, n int) ([]float64, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := checkAtLeast("preprocess", 0, field{"n", n}); err != nil {
		return nil, err
	}
	plane := p.SrcH * p.SrcW
	if err := checkLen("preprocess records", len(records), n*3*plane); err != nil {
		return nil, err
	}
	rows, cols := bilinearTaps(p.SrcH, p.Resize), bilinearTaps(p.SrcW, p.Resize)
	offset := CenterCropOffset(p.Resize, p.Crop)
	out := make([]float64, n*3*p.Crop*p.Crop)
	for i := 0; i < n; i++ {
		dy, dx, flip := p.augmentation(i)
		for c := 0; c < 3; c++ {
			src := records[(i*3+c)*plane : (i*3+c+1)*plane]
			pixel := func(y, x int) float64 { return float64(src[y*p.SrcW+x]) }
			for y := 0; y < p.Crop; y++ {
				for x := 0; x < p.Crop; x++ {
					sx := x
					if flip {
						sx = p.Crop - 1 - x
					}
					ry, rx := offset+dy+y, offset+dx+sx
					v := 0.0
					if ry >= 0 && ry < p.Resize && rx >= 0 && rx < p.Resize {
						h, w := rows[ry], cols[rx]
						v = h.l0*(w.l0*pixel(h.i0, w.i0)+w.l1*pixel(h.i0, w.i1)) +
							h.l1*(w.l0*pixel(h.i1, w.i0)+w.l1*pixel(h.i1, w.i1))
					}
					out[index4(i, c, y, x, 3, p.Crop, p.Crop)] = (v/255 - p.Mean[c]) / p.Std[c]
				}
			}
		}
	}
	return out, nil
}
