package cifar10

import (
	"math"
	"runtime"
	"sync"
)

// SyntheticClassNames returns short names of the ten classes Synthetic
// draws, by label. They are not CIFAR-10's objects; only the label range and
// image format are shared.
func SyntheticClassNames() [NumClasses]string {
	return [NumClasses]string{
		"hstripes", "vstripes", "dstripes", "astripes",
		"disc", "ring", "square", "frame", "plus", "cross",
	}
}

// Synthetic draws n labelled 32x32 RGB images procedurally, in the same
// layout as the real data, for demos and tests that must not depend on a
// download. The same (n, seed) always gives the same bytes; labels are
// balanced (each class n/10 times, the first n%10 classes once more) and
// shuffled. n <= 0 gives an empty Dataset.
//
// Each image is a shape in a foreground colour over a background, with
// random position, size, stroke width, rotation jitter, colours, a
// brightness gradient, a small distracting blob and per-pixel noise. The
// classes, by label:
//
//	0 hstripes  a disc-shaped patch of stripes running horizontally (±12°)
//	1 vstripes  the same with vertical stripes (90° ±12°)
//	2 dstripes  the same with diagonal stripes rising to the right (45° ±12°)
//	3 astripes  the same with stripes falling to the right (135° ±12°)
//	4 disc      a filled circle
//	5 ring      a circle outline
//	6 square    a filled square, rotated up to ±15°
//	7 frame     a square outline, rotated up to ±15°
//	8 plus      an upright cross "+", rotated up to ±15°
//	9 cross     a diagonal cross "x" (45° ±15°)
//
// Each class also leans towards its own hue (class k around k*36°, jittered
// by ±40°, so neighbouring classes overlap): colour helps but does not
// decide. Nearest-class-mean classifiers get about 20% right on raw pixels
// (17-30% depending on the sample), 40% on pixels less their image mean and
// 75% on crude gradient-orientation histograms, against 10% chance: the
// shapes carry most of the signal, which a small CNN learns quickly.
//
// Generation is parallel and takes about 0.1 ms per image per core. The bytes
// are the same on every run and every amd64 machine; architectures that fuse
// floating-point multiply-adds may differ in a few pixel values.
func Synthetic(n int, seed uint64) *Dataset {
	if n <= 0 {
		return &Dataset{Images: []byte{}, Labels: []uint8{}}
	}
	d := &Dataset{Images: make([]byte, n*ImageBytes), Labels: make([]uint8, n)}
	for i := range d.Labels {
		d.Labels[i] = uint8(i % NumClasses)
	}
	r := newRNG(seed, math.MaxUint64)
	for i := n - 1; i > 0; i-- {
		j := r.intn(i + 1)
		d.Labels[i], d.Labels[j] = d.Labels[j], d.Labels[i]
	}
	workers := min(runtime.GOMAXPROCS(0), (n+255)/256)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var alpha [Side * Side]float64
			for i := w; i < n; i += workers {
				drawSynthetic(d.Images[i*ImageBytes:(i+1)*ImageBytes], int(d.Labels[i]), newRNG(seed, uint64(i)), &alpha)
			}
		}(w)
	}
	wg.Wait()
	return d
}

// rng is splitmix64: small, fast and fixed forever, so that synthetic data
// never changes with a Go release.
type rng struct {
	s        uint64
	spare    float64 // the second value of the last Box-Muller pair
	hasSpare bool
}

func newRNG(seed, stream uint64) *rng {
	return &rng{s: mix64(seed ^ mix64(stream+0x9e3779b97f4a7c15))}
}

// mix64 is splitmix64's output function, a bijective bit mixer.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix64(r.s)
}

// float returns a uniform value in [0,1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// uniform returns a uniform value in [a,b).
func (r *rng) uniform(a, b float64) float64 { return a + (b-a)*r.float() }

// intn returns a uniform integer in [0,n), n > 0.
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// normal returns a standard normal value (Box-Muller, both values used).
func (r *rng) normal() float64 {
	if r.hasSpare {
		r.hasSpare = false
		return r.spare
	}
	u := 1 - r.float() // (0,1]
	rad := math.Sqrt(-2 * math.Log(u))
	sn, cs := math.Sincos(2 * math.Pi * r.float())
	r.spare, r.hasSpare = rad*sn, true
	return rad * cs
}

// hsv converts hue (degrees), saturation and value (0..1) to RGB 0..255.
func hsv(h, s, v float64) [3]float64 {
	h = math.Mod(h, 360)
	if h < 0 {
		h += 360
	}
	c := v * s
	x := c * (1 - math.Abs(math.Mod(h/60, 2)-1))
	m := v - c
	var r, g, b float64
	switch {
	case h < 60:
		r, g, b = c, x, 0
	case h < 120:
		r, g, b = x, c, 0
	case h < 180:
		r, g, b = 0, c, x
	case h < 240:
		r, g, b = 0, x, c
	case h < 300:
		r, g, b = x, 0, c
	default:
		r, g, b = c, 0, x
	}
	return [3]float64{(r + m) * 255, (g + m) * 255, (b + m) * 255}
}

// drawSynthetic renders one image of class c into img (3072 bytes).
func drawSynthetic(img []byte, c int, r *rng, alpha *[Side * Side]float64) {
	// Colours: the foreground leans towards the class hue; the background
	// is a weakly saturated colour of the opposite brightness.
	hue := float64(c)*36 + r.uniform(-40, 40)
	var fg, bg [3]float64
	if r.float() < 0.35 { // a darker shape on a light background
		fg = hsv(hue, r.uniform(0.5, 1), r.uniform(0.2, 0.5))
		bg = hsv(r.uniform(0, 360), r.uniform(0, 0.4), r.uniform(0.7, 0.95))
	} else { // a bright shape on a dark background
		fg = hsv(hue, r.uniform(0.35, 1), r.uniform(0.55, 1))
		bg = hsv(r.uniform(0, 360), r.uniform(0, 0.4), r.uniform(0.05, 0.35))
	}

	// Geometry.
	cx, cy := r.uniform(10, 22), r.uniform(10, 22)
	var shape func(x, y float64) bool
	switch c {
	case 0, 1, 2, 3:
		theta := ([]float64{0, 90, 45, 135}[c] + r.uniform(-12, 12)) * math.Pi / 180
		// u runs across the stripes: along the normal of their direction.
		nx, ny := -math.Sin(theta), math.Cos(theta)
		period := r.uniform(3.5, 6.5)
		phase := r.float()
		radius := r.uniform(8, 13)
		shape = func(x, y float64) bool {
			dx, dy := x-cx, y-cy
			if dx*dx+dy*dy > radius*radius {
				return false
			}
			// Image y grows downwards; flip it so that 45° rises to the right.
			u := (dx*nx-dy*ny)/period + phase
			return u-math.Floor(u) < 0.5
		}
	case 4:
		rad := r.uniform(5, 11)
		shape = func(x, y float64) bool { return sq(x-cx)+sq(y-cy) <= rad*rad }
	case 5:
		rad, w := r.uniform(6, 12), r.uniform(1.6, 3)
		shape = func(x, y float64) bool {
			d := math.Sqrt(sq(x-cx) + sq(y-cy))
			return d <= rad && d >= rad-w
		}
	case 6, 7, 8, 9:
		rot := r.uniform(-15, 15)
		if c == 9 {
			rot += 45
		}
		cs, sn := math.Cos(rot*math.Pi/180), math.Sin(rot*math.Pi/180)
		half := r.uniform(5, 10)
		w := r.uniform(1.6, 3.2)
		if c >= 8 {
			half = r.uniform(7, 12)
		}
		shape = func(x, y float64) bool {
			dx, dy := x-cx, y-cy
			u, v := math.Abs(dx*cs+dy*sn), math.Abs(-dx*sn+dy*cs)
			switch c {
			case 6:
				return u <= half && v <= half
			case 7:
				return u <= half && v <= half && (u >= half-w || v >= half-w)
			default: // plus and cross: two bars
				return (u <= w/2 && v <= half) || (v <= w/2 && u <= half)
			}
		}
	}

	// Coverage with 3x3 supersampling for smooth edges.
	for y := 0; y < Side; y++ {
		for x := 0; x < Side; x++ {
			hits := 0
			for sy := 0; sy < 3; sy++ {
				for sx := 0; sx < 3; sx++ {
					if shape(float64(x)+(float64(sx)+0.5)/3, float64(y)+(float64(sy)+0.5)/3) {
						hits++
					}
				}
			}
			alpha[y*Side+x] = float64(hits) / 9
		}
	}

	// A small blob of a random colour somewhere, as clutter.
	blobX, blobY, blobR := r.uniform(0, 32), r.uniform(0, 32), r.uniform(1.5, 3)
	blob := hsv(r.uniform(0, 360), r.uniform(0, 1), r.uniform(0.2, 1))

	// A linear brightness gradient in a random direction and noise.
	ga := r.uniform(0, 2*math.Pi)
	gx, gy := math.Cos(ga), math.Sin(ga)
	gain := r.uniform(0, 1.4) // brightness change per pixel, 0..255 scale
	sigma := r.uniform(6, 22)
	for y := 0; y < Side; y++ {
		for x := 0; x < Side; x++ {
			p := y*Side + x
			a := alpha[p]
			g := gain * ((float64(x)-15.5)*gx + (float64(y)-15.5)*gy)
			inBlob := sq(float64(x)+0.5-blobX)+sq(float64(y)+0.5-blobY) <= blobR*blobR
			for ch := 0; ch < Channels; ch++ {
				v := bg[ch]*(1-a) + fg[ch]*a
				if inBlob {
					v = blob[ch]
				}
				v += g + sigma*r.normal()
				img[ch*Side*Side+p] = clampByte(v)
			}
		}
	}
}

func sq(x float64) float64 { return x * x }

func clampByte(v float64) byte {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	default:
		return byte(v + 0.5)
	}
}
