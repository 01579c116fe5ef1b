package watch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math/bits"
)

// readXWD decodes an X window dump (what `xwd -root` writes) of a TrueColor
// visual with 24 or 32 bits per pixel, the format Xvfb's 24-bit screens give.
func readXWD(data []byte) (*image.RGBA, error) {
	const headerWords = 25
	if len(data) < 4*headerWords {
		return nil, errors.New("xwd: short header")
	}
	be := binary.BigEndian
	h := make([]uint32, headerWords)
	for i := range h {
		h[i] = be.Uint32(data[4*i:])
	}
	headerSize, version, format := h[0], h[1], h[2]
	width, height := int(h[4]), int(h[5])
	byteOrder, bpp, stride := h[7], int(h[11]), int(h[12])
	visualClass, masks := h[13], [3]uint32{h[14], h[15], h[16]}
	ncolors := int(h[19])
	if version != 7 || format != 2 { // ZPixmap
		return nil, fmt.Errorf("xwd: version %d format %d, want 7 and ZPixmap", version, format)
	}
	if visualClass != 4 && visualClass != 5 { // TrueColor, DirectColor
		return nil, fmt.Errorf("xwd: visual class %d is not TrueColor", visualClass)
	}
	if bpp != 24 && bpp != 32 {
		return nil, fmt.Errorf("xwd: %d bits per pixel", bpp)
	}
	off := int(headerSize) + 12*ncolors
	if off+stride*height > len(data) || stride < width*bpp/8 {
		return nil, fmt.Errorf("xwd: %d bytes for %dx%d at stride %d", len(data), width, height, stride)
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	channel := func(px, mask uint32) uint8 {
		v := (px & mask) >> bits.TrailingZeros32(mask)
		if n := bits.OnesCount32(mask); n != 8 {
			v = v * 255 / (1<<n - 1)
		}
		return uint8(v)
	}
	bytesPP := bpp / 8
	for y := range height {
		row := data[off+y*stride:]
		for x := range width {
			p := row[x*bytesPP : x*bytesPP+bytesPP]
			var px uint32
			if byteOrder == 0 { // LSBFirst
				for i := bytesPP - 1; i >= 0; i-- {
					px = px<<8 | uint32(p[i])
				}
			} else {
				for i := range bytesPP {
					px = px<<8 | uint32(p[i])
				}
			}
			img.SetRGBA(x, y, color.RGBA{channel(px, masks[0]), channel(px, masks[1]), channel(px, masks[2]), 255})
		}
	}
	return img, nil
}
