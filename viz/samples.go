package viz

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Sample grid layout, in pixels.
const (
	gridPad      = 6  // around each cell's content
	gridBorder   = 3  // red frame of a wrong prediction
	gridLineH    = 16 // height of a text line
	gridMinImage = 96 // images are upscaled to at least this side
	gridMaxSide  = 4096
	gridMaxCount = 4096
)

// SampleGrid draws images in a grid of cols columns (cols <= 0: up to 8),
// each upscaled by an integer factor (nearest neighbour, to at least 96
// pixels a side: 3x for 32x32) with its label written under it. Each image
// is w*h pixels, planar RGB: all red bytes, then green, then blue
// (3*w*h bytes). trueLabels gives the class of each image, as an index into
// classNames. With predLabels (nil = none) the label reads "true/pred", and
// wrong predictions get a red frame and red text. The drawing uses a fixed
// bitmap font, so the result is the same everywhere.
func SampleGrid(images [][]byte, w, h int, trueLabels []int, predLabels []int, classNames []string, cols int) (image.Image, error) {
	switch {
	case len(images) == 0:
		return nil, fmt.Errorf("sample grid: %w (no images)", ErrNoData)
	case len(images) > gridMaxCount:
		return nil, fmt.Errorf("sample grid: %d images, at most %d", len(images), gridMaxCount)
	case w <= 0 || h <= 0 || w > gridMaxSide || h > gridMaxSide:
		return nil, fmt.Errorf("sample grid: bad image size %dx%d", w, h)
	case len(trueLabels) != len(images):
		return nil, fmt.Errorf("sample grid: %d images but %d labels", len(images), len(trueLabels))
	case predLabels != nil && len(predLabels) != len(images):
		return nil, fmt.Errorf("sample grid: %d images but %d predictions", len(images), len(predLabels))
	}
	name := func(l int) (string, error) {
		if l < 0 || (len(classNames) > 0 && l >= len(classNames)) {
			return "", fmt.Errorf("sample grid: label %d out of range for %d classes", l, len(classNames))
		}
		if len(classNames) == 0 {
			return strconv.Itoa(l), nil
		}
		return classNames[l], nil
	}
	texts := make([]string, len(images))
	wrong := make([]bool, len(images))
	for i, img := range images {
		if len(img) != 3*w*h {
			return nil, fmt.Errorf("sample grid: image %d has %d bytes, want 3*%d*%d = %d", i, len(img), w, h, 3*w*h)
		}
		t, err := name(trueLabels[i])
		if err != nil {
			return nil, err
		}
		texts[i] = t
		if predLabels != nil {
			p, err := name(predLabels[i])
			if err != nil {
				return nil, err
			}
			texts[i] = t + "/" + p
			wrong[i] = predLabels[i] != trueLabels[i]
		}
	}

	face := basicfont.Face7x13
	gridWrong := color.RGBA{200, 20, 20, 255}   // frame and text of a wrong prediction
	gridFrame := color.RGBA{200, 200, 200, 255} // thin frame of the others
	scale := max(1, gridMinImage/max(w, h))
	iw, ih := w*scale, h*scale
	textW := 0
	for _, s := range texts {
		textW = max(textW, font.MeasureString(face, s).Ceil())
	}
	cellW := max(iw+2*gridBorder, textW) + 2*gridPad
	cellH := gridPad + gridBorder + ih + gridBorder + 2 + gridLineH + gridPad
	if cols <= 0 {
		cols = min(len(images), 8)
	}
	cols = min(cols, len(images))
	rows := (len(images) + cols - 1) / cols
	out := image.NewRGBA(image.Rect(0, 0, cols*cellW, rows*cellH))
	draw.Draw(out, out.Bounds(), image.White, image.Point{}, draw.Src)

	for i, img := range images {
		x0 := (i%cols)*cellW + (cellW-iw)/2
		y0 := (i/cols)*cellH + gridPad + gridBorder
		frame := image.Rect(x0-1, y0-1, x0+iw+1, y0+ih+1)
		fc := color.Color(gridFrame)
		if wrong[i] {
			frame = image.Rect(x0-gridBorder, y0-gridBorder, x0+iw+gridBorder, y0+ih+gridBorder)
			fc = gridWrong
		}
		draw.Draw(out, frame, image.NewUniform(fc), image.Point{}, draw.Src)
		plane := w * h
		for y := range ih {
			sy := y / scale
			for x := range iw {
				sx := x / scale
				k := sy*w + sx
				out.SetRGBA(x0+x, y0+y, color.RGBA{img[k], img[plane+k], img[2*plane+k], 255})
			}
		}
		tc := color.Color(color.Black)
		if wrong[i] {
			tc = gridWrong
		}
		tw := font.MeasureString(face, texts[i]).Ceil()
		d := font.Drawer{
			Dst:  out,
			Src:  image.NewUniform(tc),
			Face: face,
			Dot: fixed.P((i%cols)*cellW+(cellW-tw)/2,
				y0+ih+gridBorder+2+face.Ascent+(gridLineH-face.Height)/2),
		}
		d.DrawString(texts[i])
	}
	return out, nil
}
