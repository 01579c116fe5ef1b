package train

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"sort"

	"golang.org/x/image/draw"

	"vktrain/layers"
	"vktrain/train/cifar10"
)

// ReadImage opens and decodes a PNG or JPEG file (chosen by its content, not
// its name). Every error names the file.
func ReadImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	var head [8]byte
	n, _ := f.ReadAt(head[:], 0)
	var img image.Image
	switch {
	case n >= 8 && string(head[:8]) == "\x89PNG\r\n\x1a\n":
		img, err = png.Decode(f)
	case n >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF:
		img, err = jpeg.Decode(f)
	default:
		return nil, fmt.Errorf("image %s: not a PNG or JPEG file", path)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", path, err)
	}
	if b := img.Bounds(); b.Empty() {
		return nil, fmt.Errorf("image %s: no pixels", path)
	}
	return img, nil
}

// ImageRecord converts img into a CIFAR-10 record (3072 bytes: the R plane,
// then G, then B, each 32x32 row-major), so that it goes through the network
// exactly as a training image does: the network's own preprocessing kernel
// then resizes it to ImageSize*8/7 (bilinear) and center-crops ImageSize.
//
// The conversion: the largest centered square is cut out (CIFAR images are
// square; nothing is stretched), then scaled to 32x32 with golang.org/x/image's
// Catmull-Rom kernel (which widens to an antialiasing filter when shrinking);
// a 32x32 square is copied pixel for pixel. Transparent pixels are composed
// over white. EXIF orientation is not applied.
func ImageRecord(img image.Image) []byte {
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	sr := image.Rect(0, 0, side, side).Add(b.Min).Add(image.Pt((b.Dx()-side)/2, (b.Dy()-side)/2))
	dst := image.NewRGBA(image.Rect(0, 0, cifar10.Side, cifar10.Side))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	if side == cifar10.Side {
		draw.Draw(dst, dst.Bounds(), img, sr.Min, draw.Over)
	} else {
		draw.CatmullRom.Scale(dst, dst.Bounds(), img, sr, draw.Over, nil)
	}
	const plane = cifar10.Side * cifar10.Side
	rec := make([]byte, cifar10.ImageBytes)
	for y := 0; y < cifar10.Side; y++ {
		for x := 0; x < cifar10.Side; x++ {
			o, i := dst.PixOffset(x, y), y*cifar10.Side+x
			rec[i], rec[plane+i], rec[2*plane+i] = dst.Pix[o], dst.Pix[o+1], dst.Pix[o+2]
		}
	}
	return rec
}

// RecordImage is the inverse of ImageRecord for a record: the 32x32 RGB image
// it holds (to write a CIFAR image as a PNG or JPEG file).
func RecordImage(rec []byte) *image.RGBA {
	const plane = cifar10.Side * cifar10.Side
	img := image.NewRGBA(image.Rect(0, 0, cifar10.Side, cifar10.Side))
	for i := 0; i < plane && 2*plane+i < len(rec); i++ {
		o := 4 * i
		img.Pix[o], img.Pix[o+1], img.Pix[o+2], img.Pix[o+3] = rec[i], rec[plane+i], rec[2*plane+i], 255
	}
	return img
}

// ReadImageRecord reads a PNG or JPEG file into a CIFAR-10 record (see
// ImageRecord).
func ReadImageRecord(path string) ([]byte, error) {
	img, err := ReadImage(path)
	if err != nil {
		return nil, err
	}
	return ImageRecord(img), nil
}

// Class is a class with its probability.
type Class struct {
	Label int     `json:"label"`
	Name  string  `json:"name"`
	Prob  float64 `json:"prob"`
}

// Softmax turns logits into probabilities, in float64 and stably (the maximum
// is subtracted first).
func Softmax(logits []float32) []float64 {
	if len(logits) == 0 {
		return nil
	}
	m := math.Inf(-1)
	for _, v := range logits {
		m = max(m, float64(v))
	}
	p := make([]float64, len(logits))
	sum := 0.0
	for i, v := range logits {
		p[i] = math.Exp(float64(v) - m)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// TopK returns the k most probable classes (all if k exceeds them), most
// probable first, ties by label; names label them where given.
func TopK(probs []float64, names []string, k int) []Class {
	all := make([]Class, len(probs))
	for i, p := range probs {
		all[i] = Class{Label: i, Prob: p}
		if i < len(names) {
			all[i].Name = names[i]
		}
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].Prob > all[b].Prob })
	return all[:max(0, min(k, len(all)))]
}

// Predict runs CIFAR-10 records (see ImageRecord) through the network and
// returns each one's class probabilities (the softmax of its logits). Records
// go in steps of m.Batch, the last one padded with repeats of its last record;
// every step is flushed before its logits are read.
func (m *Model) Predict(records [][]byte) ([][]float64, error) {
	net := m.sess.net
	batch, classes := m.Batch, net.Classes()
	if _, err := net.Flush(); err != nil { // nothing may be in flight: the logits are shared
		return nil, err
	}
	buf := make([]byte, batch*cifar10.ImageBytes)
	labels := make([]uint8, batch) // the loss is computed against class 0 and ignored
	out := make([][]float64, 0, len(records))
	for start := 0; start < len(records); start += batch {
		n := min(batch, len(records)-start)
		for j := 0; j < batch; j++ {
			rec := records[start+min(j, n-1)]
			if len(rec) != cifar10.ImageBytes {
				return nil, fmt.Errorf("predict: record %d has %d bytes, want %d", start+min(j, n-1), len(rec), cifar10.ImageBytes)
			}
			copy(buf[j*cifar10.ImageBytes:], rec)
		}
		if _, err := net.Submit(layers.EvalStep, layers.Batch{Records: buf, Labels: labels, Step: uint64(start / batch)}); err != nil {
			return nil, fmt.Errorf("predict: %w", err)
		}
		res, err := net.Flush()
		if err != nil {
			return nil, fmt.Errorf("predict: %w", err)
		}
		if res == nil {
			return nil, errors.New("predict: the step returned no result")
		}
		logits, err := net.Logits()
		if err != nil {
			return nil, fmt.Errorf("predict: %w", err)
		}
		for j := 0; j < n; j++ {
			out = append(out, Softmax(logits[j*classes:(j+1)*classes]))
		}
	}
	return out, nil
}
