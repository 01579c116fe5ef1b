package cifar10

import "math"

// ncm trains a nearest-class-mean classifier on raw pixels of train and
// returns its accuracy on test.
func ncm(train, test *Dataset) float64 {
	var mean [NumClasses][ImageBytes]float64
	var count [NumClasses]float64
	for i := 0; i < train.Len(); i++ {
		c := train.Labels[i]
		count[c]++
		for j, v := range train.Image(i) {
			mean[c][j] += float64(v)
		}
	}
	for c := range mean {
		for j := range mean[c] {
			mean[c][j] /= max(count[c], 1)
		}
	}
	correct := 0
	for i := 0; i < test.Len(); i++ {
		img := test.Image(i)
		best, bestD := -1, 0.0
		for c := range mean {
			d := 0.0
			for j, v := range img {
				e := float64(v) - mean[c][j]
				d += e * e
			}
			if best < 0 || d < bestD {
				best, bestD = c, d
			}
		}
		if best == int(test.Labels[i]) {
			correct++
		}
	}
	return float64(correct) / float64(test.Len())
}

// hogFeatures returns, per image, a histogram of gradient orientations
// (9 unsigned bins, magnitude-weighted) in each of 4x4 cells of 8x8 pixels,
// over the luma, L2-normalized: a crude HOG.
func hogFeatures(d *Dataset) [][]float64 {
	const cell, bins = 8, 9
	out := make([][]float64, d.Len())
	var luma [Side * Side]float64
	for i := range out {
		img := d.Image(i)
		for p := range luma {
			luma[p] = 0.299*float64(img[p]) + 0.587*float64(img[1024+p]) + 0.114*float64(img[2048+p])
		}
		f := make([]float64, (Side/cell)*(Side/cell)*bins)
		for y := 1; y < Side-1; y++ {
			for x := 1; x < Side-1; x++ {
				gx := luma[y*Side+x+1] - luma[y*Side+x-1]
				gy := luma[(y+1)*Side+x] - luma[(y-1)*Side+x]
				mag := math.Hypot(gx, gy)
				ang := math.Atan2(gy, gx)
				if ang < 0 {
					ang += math.Pi
				}
				b := int(ang / math.Pi * bins)
				if b >= bins {
					b = bins - 1
				}
				f[((y/cell)*(Side/cell)+x/cell)*bins+b] += mag
			}
		}
		norm := 0.0
		for _, v := range f {
			norm += v * v
		}
		norm = math.Sqrt(norm) + 1e-9
		for k := range f {
			f[k] /= norm
		}
		out[i] = f
	}
	return out
}

// ncmFeatures is ncm over feature vectors.
func ncmFeatures(trainX [][]float64, trainY []uint8, testX [][]float64, testY []uint8) float64 {
	dim := len(trainX[0])
	mean := make([][]float64, NumClasses)
	count := make([]float64, NumClasses)
	for c := range mean {
		mean[c] = make([]float64, dim)
	}
	for i, x := range trainX {
		count[trainY[i]]++
		for j, v := range x {
			mean[trainY[i]][j] += v
		}
	}
	for c := range mean {
		for j := range mean[c] {
			mean[c][j] /= max(count[c], 1)
		}
	}
	correct := 0
	for i, x := range testX {
		best, bestD := -1, 0.0
		for c := range mean {
			d := 0.0
			for j, v := range x {
				d += (v - mean[c][j]) * (v - mean[c][j])
			}
			if best < 0 || d < bestD {
				best, bestD = c, d
			}
		}
		if best == int(testY[i]) {
			correct++
		}
	}
	return float64(correct) / float64(len(testX))
}

// centred returns the pixels of each image less its per-channel mean.
func centred(d *Dataset) [][]float64 {
	out := make([][]float64, d.Len())
	for i := range out {
		img := d.Image(i)
		f := make([]float64, ImageBytes)
		for ch := 0; ch < 3; ch++ {
			m := 0.0
			for _, v := range img[ch*1024 : ch*1024+1024] {
				m += float64(v)
			}
			m /= 1024
			for j := ch * 1024; j < ch*1024+1024; j++ {
				f[j] = float64(img[j]) - m
			}
		}
		out[i] = f
	}
	return out
}
