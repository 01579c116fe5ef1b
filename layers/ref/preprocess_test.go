package ref

import (
	"fmt"
	"testing"
)

// imagenetParams returns PreprocessParams with the ImageNet statistics the
// fixtures use.
func imagenetParams(srcH, srcW, resize, crop int) PreprocessParams {
	return PreprocessParams{
		SrcH: srcH, SrcW: srcW, Resize: resize, Crop: crop,
		Mean: [3]float64{0.485, 0.456, 0.406}, Std: [3]float64{0.229, 0.224, 0.225},
	}
}

// fixtureRecords converts a fixture's byte tensor to records.
func fixtureRecords(t *testing.T, c fixtureCase) []uint8 {
	t.Helper()
	d := c.data(t, "records")
	out := make([]uint8, len(d))
	for i, v := range d {
		out[i] = uint8(v)
	}
	return out
}

func TestPreprocessIdentity(t *testing.T) {
	// Resize to the source size and crop nothing: each output is byte/255.
	rec := make([]uint8, 2*3*4*4)
	for i := range rec {
		rec[i] = uint8(i * 7)
	}
	p := PreprocessParams{SrcH: 4, SrcW: 4, Resize: 4, Crop: 4, Std: [3]float64{1, 1, 1}}
	out := must(t)(Preprocess(p, rec, 2))
	want := make([]float64, len(rec))
	for i, v := range rec {
		want[i] = float64(v) / 255
	}
	compare(t, "out", out, want, 1e-15)
}

func TestCenterCropOffsetGolden(t *testing.T) {
	cases := loadFixture(t, "preprocess_resize.json")
	rows := cases[1].data(t, "size_crop_offset")
	for i := 0; i+2 < len(rows); i += 3 {
		size, crop, want := int(rows[i]), int(rows[i+1]), int(rows[i+2])
		if got := CenterCropOffset(size, crop); got != want {
			t.Errorf("CenterCropOffset(%d, %d) = %d, torchvision %d", size, crop, got, want)
		}
	}
	// The cases that round half to even, and AlexNet's 256 -> 224.
	for _, c := range [][3]int{{40, 39, 0}, {40, 37, 2}, {40, 35, 2}, {256, 224, 16}} {
		if got := CenterCropOffset(c[0], c[1]); got != c[2] {
			t.Errorf("CenterCropOffset(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}

func TestPreprocessGolden(t *testing.T) {
	cases := loadFixture(t, "preprocess_crop.json")
	cases = append(cases, loadFixture(t, "preprocess_resize.json")[0])
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			p := imagenetParams(c.int(t, "SrcH"), c.int(t, "SrcW"), c.int(t, "Resize"), c.int(t, "Crop"))
			for ch := 0; ch < 3; ch++ {
				p.Mean[ch], p.Std[ch] = c.float(t, fmt.Sprint("Mean", ch)), c.float(t, fmt.Sprint("Std", ch))
			}
			out := must(t)(Preprocess(p, fixtureRecords(t, c), c.int(t, "N")))
			worst := compare(t, "out", out, c.data(t, "out"), goldenTol)
			t.Logf("worst rel err vs torch %.2g (tol %.0g)", worst, goldenTol)
		})
	}
}

// augmentStats counts what checkAugmented saw.
type augmentStats struct {
	flips, outside int
	shifts         map[[2]int]bool
}

// checkAugmented checks out, the result of Preprocess(p, records, n),
// against resized, torch's full n x 3 x Resize x Resize resize of the same
// records: each output pixel must be the resized pixel at the moved and
// possibly mirrored position, or black outside the image. The shift and
// flip are recomputed from the documented Philox counter layout.
func checkAugmented(t *testing.T, p PreprocessParams, out, resized []float64, n int, st *augmentStats) {
	t.Helper()
	offset := CenterCropOffset(p.Resize, p.Crop)
	span := uint32(2*p.Pad + 1)
	for i := 0; i < n; i++ {
		r := Philox4x32([4]uint32{uint32(i), 1, uint32(p.Step), uint32(p.Step >> 32)},
			[2]uint32{uint32(p.Seed), uint32(p.Seed >> 32)})
		dy, dx, flip := int(r[0]%span)-p.Pad, int(r[1]%span)-p.Pad, p.Flip && r[2]&1 == 1
		st.shifts[[2]int{dy, dx}] = true
		if flip {
			st.flips++
		}
		for c := 0; c < 3; c++ {
			black := (0 - p.Mean[c]) / p.Std[c]
			for y := 0; y < p.Crop; y++ {
				for x := 0; x < p.Crop; x++ {
					sx := x
					if flip {
						sx = p.Crop - 1 - x
					}
					ry, rx := offset+dy+y, offset+dx+sx
					want := black
					if ry >= 0 && ry < p.Resize && rx >= 0 && rx < p.Resize {
						want = resized[index4(i, c, ry, rx, 3, p.Resize, p.Resize)]
					} else {
						st.outside++
					}
					if got := out[index4(i, c, y, x, 3, p.Crop, p.Crop)]; relErr(got, want) > goldenTol {
						t.Fatalf("step %d image %d channel %d (%d,%d): got %v, want %v (shift %d,%d flip %v)",
							p.Step, i, c, y, x, got, want, dy, dx, flip)
					}
				}
			}
		}
	}
}

// TestPreprocessAugmentation checks shifted and flipped crops, with a
// seed and steps that use both 32-bit halves, against torch's resize.
func TestPreprocessAugmentation(t *testing.T) {
	full := loadFixture(t, "preprocess_resize.json")[0]
	const n, steps = 2, 12
	resized, rec := full.data(t, "out"), fixtureRecords(t, full)
	p := imagenetParams(32, 32, 40, 36)
	p.Pad, p.Flip, p.Seed = 4, true, 0xabcdef0123

	st := augmentStats{shifts: map[[2]int]bool{}}
	for step := uint64(0); step < steps; step++ {
		p.Step = step << 31
		checkAugmented(t, p, must(t)(Preprocess(p, rec, n)), resized, n, &st)
	}
	if st.flips == 0 || st.flips == n*steps || len(st.shifts) < 5 || st.outside == 0 {
		t.Errorf("augmentation barely exercised: %d flips of %d, %d distinct shifts, %d samples outside",
			st.flips, n*steps, len(st.shifts), st.outside)
	}

	p.Flip = false
	st = augmentStats{shifts: map[[2]int]bool{}}
	checkAugmented(t, p, must(t)(Preprocess(p, rec, n)), resized, n, &st)
	if st.flips != 0 {
		t.Error("flipped with Flip unset")
	}

	p.Pad = 0
	plain := must(t)(Preprocess(p, rec, n))
	compare(t, "pad 0 without flip", plain, centerCrop(resized, n, 40, 36, CenterCropOffset(40, 36)), goldenTol)
}

// centerCrop crops an n x 3 x size x size tensor at offset.
func centerCrop(v []float64, n, size, crop, offset int) []float64 {
	out := make([]float64, 0, n*3*crop*crop)
	for i := 0; i < n*3; i++ {
		for y := 0; y < crop; y++ {
			row := (i*size+offset+y)*size + offset
			out = append(out, v[row:row+crop]...)
		}
	}
	return out
}

func TestPreprocessRejectsBadInput(t *testing.T) {
	p := imagenetParams(4, 4, 6, 5)
	if _, err := Preprocess(p, make([]uint8, 47), 1); err == nil {
		t.Error("short records accepted")
	}
	for _, bad := range []PreprocessParams{
		imagenetParams(4, 4, 6, 7),
		imagenetParams(0, 4, 6, 5),
		{SrcH: 4, SrcW: 4, Resize: 6, Crop: 5, Std: [3]float64{1, 0, 1}},
		{SrcH: 4, SrcW: 4, Resize: 6, Crop: 5, Std: [3]float64{1, 1, 1}, Pad: -1},
	} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%+v) = nil, want error", bad)
		}
	}
}
