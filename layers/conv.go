package layers

import (
	"fmt"
	"math"

	"vktrain/vk"
)

// Conv2D is a 2-D convolution (cross-correlation, as in PyTorch) with an
// optional bias and an optional fused ReLU, on CNHW activations: x is
// C x N x H x W, y K x N x OH x OW.
//
// Forward, per chunk of G images: im2col unfolds x into col[C*R*S, ldcol] (ldcol,
// G*OH*OW rounded up to a multiple of 4, lets the GEMM read col four floats at a
// time), then one GEMM writes the chunk's columns of Y[K, N*OH*OW] = W[K, C*R*S] *
// col + bias, with the ReLU in its epilogue. Backward uses the same chunks:
// dW (+)= dY * col^T, dcol = W^T * dY, and col2im gathers dcol into dx (each input
// element sums the entries that read it, so no atomics are needed). The bias
// gradient is a row sum of dY, fused with the ReLU's mask where there is one.
//
// Without a bias (PyTorch's bias=False, as in every ResNet convolution) Bias
// and BiasGrad are nil (see DropBias): the forward pass adds nothing and the
// backward pass computes no bias gradient (it still masks dy by the ReLU).
//
// The chunk size G is as many images as the scratch tensor holds (see
// ScratchLen); with one chunk the whole batch is one GEMM per pass.
type Conv2D struct {
	C, K             int // input and output channels
	R, S             int // filter height and width
	StrideH, StrideW int
	PadH, PadW       int
	ReLU             bool // y = max(conv + bias, 0), or max(conv, 0) without a bias
	// Algo is how each pass computes, indexed by ConvPass: ConvIm2col (the
	// default, any shape), ConvWinograd or ConvWinograd4 (see AlgoApplies).
	// SetAlgo sets all three.
	Algo [3]ConvAlgo
	// GEMM is the matrix-multiply kernel of each pass's GEMMs (im2col's or
	// Winograd's batched products), indexed by ConvPass: GEMMAuto (the
	// default) runs the runtime's Variant.
	GEMM [3]GEMMVariant

	// Weight is K x C x R x S (PyTorch's layout) and Bias K elements, or nil for
	// none. WeightGrad and BiasGrad are shaped like them; a nil BiasGrad means
	// the backward pass computes no bias gradient.
	Weight, Bias         *Tensor
	WeightGrad, BiasGrad *Tensor

	// ScratchBudget is the most bytes ScratchLen asks for (col, and in backward
	// dcol, reusing the same space): 64 MiB by default, less where the device's
	// storage-buffer range is smaller.
	ScratchBudget int64
}

// defaultConvScratch is the default Conv2D.ScratchBudget, in bytes.
const defaultConvScratch = 64 << 20

// NewConv2D allocates a convolution of c input and k output channels with
// kh x kw filters, the same stride and zero padding in both dimensions and,
// with relu, a ReLU fused into its output. Weights, bias and gradients start at
// zero: upload or initialise them. For a convolution without a bias call
// DropBias on the result.
func (r *Runtime) NewConv2D(name string, c, k, kh, kw, stride, pad int, relu bool) (*Conv2D, error) {
	if c <= 0 || k <= 0 || kh <= 0 || kw <= 0 || stride <= 0 || pad < 0 {
		return nil, fmt.Errorf("conv2d %q: bad parameters c=%d k=%d filter %dx%d stride %d pad %d", name, c, k, kh, kw, stride, pad)
	}
	cv := &Conv2D{C: c, K: k, R: kh, S: kw, StrideH: stride, StrideW: stride, PadH: pad, PadW: pad, ReLU: relu,
		ScratchBudget: min(defaultConvScratch, r.storageLimit)}
	var err error
	alloc := func(suffix string, shape ...int) *Tensor {
		if err != nil {
			return nil
		}
		var t *Tensor
		t, err = r.NewTensor(name+suffix, shape...)
		return t
	}
	cv.Weight = alloc(".weight", k, c, kh, kw)
	cv.Bias = alloc(".bias", k)
	cv.WeightGrad = alloc(".weight.grad", k, c, kh, kw)
	cv.BiasGrad = alloc(".bias.grad", k)
	if err != nil {
		cv.Free()
		return nil, fmt.Errorf("conv2d %q: %w", name, err)
	}
	return cv, nil
}

// Free releases the parameters and gradients.
func (c *Conv2D) Free() {
	for _, t := range []*Tensor{c.Weight, c.Bias, c.WeightGrad, c.BiasGrad} {
		t.Free()
	}
}

// DropBias makes c a convolution without a bias (PyTorch's bias=False): it
// frees Bias and BiasGrad and sets them to nil, so that the forward pass adds
// no bias and the backward pass computes no bias gradient.
func (c *Conv2D) DropBias() {
	c.Bias.Free()
	c.BiasGrad.Free()
	c.Bias, c.BiasGrad = nil, nil
}

// checkBias checks that c's bias, where it has one, has K elements.
func (c *Conv2D) checkBias(op string) error {
	if c.Bias == nil {
		return nil
	}
	return convCheckLen(op, "bias", c.Bias, c.K)
}

// OutSize is the output height and width for an h x w input; 0, 0 where the
// filter does not fit the padded input.
func (c *Conv2D) OutSize(h, w int) (int, int) {
	if h <= 0 || w <= 0 || h+2*c.PadH < c.R || w+2*c.PadW < c.S || c.StrideH <= 0 || c.StrideW <= 0 {
		return 0, 0
	}
	return (h+2*c.PadH-c.R)/c.StrideH + 1, (w+2*c.PadW-c.S)/c.StrideW + 1
}

// crs is the length of a filter: the rows of col.
func (c *Conv2D) crs() int { return c.C * c.R * c.S }

func roundUp4(n int) int { return (n + 3) &^ 3 }

// ScratchLen is the number of elements of the scratch tensor that Conv2DForward
// and Conv2DBackward need for a batch of n h x w images: col for as many images
// as fit ScratchBudget (at least one). 0 for a bad shape.
func (c *Conv2D) ScratchLen(n, h, w int) int {
	oh, ow := c.OutSize(h, w)
	if n <= 0 || oh == 0 {
		return 0
	}
	need := 0
	for pass, a := range c.Algo {
		if v, ok := c.winoVariant(a); ok {
			need = max(need, c.winogradScratchLen(v, ConvPass(pass), n, h, w))
		} else {
			need = max(need, c.im2colScratchLen(n, oh, ow))
		}
	}
	return need
}

// AnyAlgoScratchLen is ScratchLen for the largest of every algorithm that
// applies to c, so that a scratch tensor of that size serves whichever Algo
// is set later (a tuner's trials, or a benchmark's variants).
func (c *Conv2D) AnyAlgoScratchLen(n, h, w int) int {
	need := 0
	for _, a := range ConvAlgos {
		if c.AlgoApplies(a) {
			probe := *c
			probe.SetAlgo(a)
			need = max(need, probe.ScratchLen(n, h, w))
		}
	}
	return need
}

// im2colScratchLen is ScratchLen for ConvIm2col: col for as many images as fit
// ScratchBudget (at least one).
func (c *Conv2D) im2colScratchLen(n, oh, ow int) int {
	p, crs := oh*ow, c.crs()
	g := 1
	if c.ScratchBudget > 0 {
		g = max(1, min(n, int(c.ScratchBudget/4)/crs/p))
		for g > 1 && crs*roundUp4(g*p) > int(c.ScratchBudget/4) {
			g--
		}
	}
	return crs * roundUp4(g*p)
}

// convGeom is a convolution applied to a batch.
type convGeom struct {
	n, h, w, oh, ow int
	p, np, crs      int // OH*OW, N*P, C*R*S
	g               int // images per chunk
}

// convGeometry checks x (C x N x H x W, shape given) against c and the scratch, and
// picks the chunk size.
func (r *Runtime) convGeometry(op string, c *Conv2D, x, scratch *Tensor) (convGeom, error) {
	var g convGeom
	if c == nil || x == nil || scratch == nil {
		return g, fmt.Errorf("%s: nil convolution, input or scratch", op)
	}
	if len(x.Shape) != 4 || x.Shape[0] != c.C {
		return g, fmt.Errorf("%s: input %q has shape %v, want %d x N x H x W", op, x.Name, x.Shape, c.C)
	}
	g.n, g.h, g.w = x.Shape[1], x.Shape[2], x.Shape[3]
	g.oh, g.ow = c.OutSize(g.h, g.w)
	if g.oh == 0 {
		return g, fmt.Errorf("%s: %dx%d filter with padding %d,%d does not fit a %dx%d input", op, c.R, c.S, c.PadH, c.PadW, g.h, g.w)
	}
	g.p, g.crs = g.oh*g.ow, c.crs()
	g.np = g.n * g.p
	if int64(4*scratch.Len()) > r.storageLimit {
		return g, fmt.Errorf("%s: scratch %q of %d bytes exceeds the device's storage-buffer range of %d", op, scratch.Name, 4*scratch.Len(), r.storageLimit)
	}
	limit := scratch.Len()
	g.g = min(g.n, limit/g.crs/g.p)
	for g.g > 0 && g.crs*roundUp4(g.g*g.p) > limit {
		g.g--
	}
	if g.g == 0 {
		return g, fmt.Errorf("%s: scratch %q of %d elements cannot hold one image's columns (%d); size it with ScratchLen", op, scratch.Name, limit, g.crs*roundUp4(g.p))
	}
	return g, nil
}

// convCheckLen checks that t exists and has want elements.
func convCheckLen(op, what string, t *Tensor, want int) error {
	if t == nil {
		return fmt.Errorf("%s: nil %s", op, what)
	}
	if t.Len() != want {
		return fmt.Errorf("%s: %s %q %v has %d elements, want %d", op, what, t.Name, t.Shape, t.Len(), want)
	}
	return nil
}

// Conv2DForward records y = conv(x) + bias (no bias where c.Bias is nil; then
// the ReLU where c.ReLU is set) for x C x N x H x W (its shape must say so) and
// y K x N x OH x OW (any shape of that many elements). scratch holds the column matrix; size it with
// c.ScratchLen (a smaller one works, in more chunks, if it holds one image).
func (r *Runtime) Conv2DForward(s *vk.Stream, c *Conv2D, x, y, scratch *Tensor) error {
	const op = "conv2d forward"
	if c != nil && c.Algo[PassForward] != ConvIm2col {
		return r.winogradForward(s, c, x, y, scratch)
	}
	g, err := r.convGeometry(op, c, x, scratch)
	if err != nil {
		return err
	}
	if err := convCheckLen(op, "output", y, c.K*g.np); err != nil {
		return err
	}
	if err := c.checkBias(op); err != nil {
		return err
	}
	for n0 := 0; n0 < g.n; n0 += g.g {
		gn := min(g.g, g.n-n0)
		ldcol := roundUp4(gn * g.p)
		if err := r.im2col(s, c, g, x, scratch, n0, gn); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		err := r.GEMM(s, c.K, gn*g.p, g.crs,
			Mat{T: c.Weight, LD: g.crs}, Mat{T: scratch, LD: ldcol}, Mat{T: y, Off: n0 * g.p, LD: g.np},
			GEMMOptions{Bias: c.Bias, BiasPerRow: true, ReLU: c.ReLU, Variant: c.GEMM[PassForward]})
		if err != nil {
			return fmt.Errorf("%s: images %d..%d: %w", op, n0, n0+gn-1, err)
		}
	}
	return nil
}

// im2col records col = the columns of images n0..n0+gn-1 of x into scratch.
func (r *Runtime) im2col(s *vk.Stream, c *Conv2D, g convGeom, x, scratch *Tensor, n0, gn int) error {
	ldcol := roundUp4(gn * g.p)
	col := scratch.Buffer().Slice(0, int64(4*g.crs*ldcol))
	pc := push(nil).u32(c.C, g.n, g.h, g.w, c.R, c.S, c.StrideH, c.StrideW, c.PadH, c.PadW,
		g.oh, g.ow, n0, gn, ldcol/4, g.crs)
	limY := int(r.Dev.Info.MaxWorkgroupCount[1])
	gy := min(g.crs, limY)
	groups := [3]uint32{uint32(ceilDiv(ldcol/4, 4*64)), uint32(gy), uint32(ceilDiv(g.crs, gy))} // four vec4s per invocation
	if err := r.dispatch(s, "im2col", nil, groups, pc, x.Range().AsR32F(), col); err != nil {
		return fmt.Errorf("im2col of %q: %w", x.Name, err)
	}
	return nil
}

// Conv2DBackward records the backward pass of Conv2DForward given dy, the
// gradient of y: BiasGrad (where c has one), WeightGrad and, where dx is not
// nil, dx (shaped like x; conv1 needs none). With c.ReLU, dy is first masked
// in place with y > 0 (so dy then holds the gradient before the ReLU) and y is
// required; without it y may be nil. With accumulate the weight and bias gradients are added to;
// otherwise they are overwritten. dx is always overwritten. A frozen layer that
// still passes gradients back uses Conv2DMaskReLU and Conv2DBackwardData.
func (r *Runtime) Conv2DBackward(s *vk.Stream, c *Conv2D, x, y, dy, dx, scratch *Tensor, accumulate bool) error {
	if err := r.Conv2DBackwardBias(s, c, y, dy, accumulate); err != nil {
		return err
	}
	if err := r.Conv2DBackwardWeights(s, c, x, dy, scratch, accumulate); err != nil {
		return err
	}
	if dx == nil {
		return nil
	}
	return r.Conv2DBackwardData(s, c, dy, dx, scratch)
}

// Conv2DBackwardBias records BiasGrad (+)= the sums of dy's K rows (dy is
// K x N x OH x OW). With c.ReLU it first masks dy in place with y > 0, in the
// same pass. Where BiasGrad is nil (no bias) it only masks dy, as
// Conv2DMaskReLU does.
func (r *Runtime) Conv2DBackwardBias(s *vk.Stream, c *Conv2D, y, dy *Tensor, accumulate bool) error {
	if c == nil || dy == nil {
		return fmt.Errorf("conv2d backward bias: nil convolution or gradient")
	}
	if c.BiasGrad == nil {
		return r.Conv2DMaskReLU(s, c, y, dy)
	}
	if err := convCheckLen("conv2d backward bias", "bias gradient", c.BiasGrad, c.K); err != nil {
		return err
	}
	if dy.Len()%c.K != 0 {
		return fmt.Errorf("conv2d backward bias: gradient %q of %d elements is not %d rows", dy.Name, dy.Len(), c.K)
	}
	np := dy.Len() / c.K
	a := RowSum{Rows: c.K, L: np, RowStride: np, ColStride: 1, Accumulate: accumulate}
	if c.ReLU {
		if err := r.ReLUGradRowSum(s, y, dy, c.BiasGrad, a); err != nil {
			return fmt.Errorf("conv2d backward bias: %w", err)
		}
		return nil
	}
	if err := r.RowSum(s, dy, c.BiasGrad, a); err != nil {
		return fmt.Errorf("conv2d backward bias: %w", err)
	}
	return nil
}

// Conv2DMaskReLU records dy = dy * (y > 0) in place where c.ReLU is set (and
// nothing otherwise): the first step of the backward pass for a layer whose
// parameters get no gradient.
func (r *Runtime) Conv2DMaskReLU(s *vk.Stream, c *Conv2D, y, dy *Tensor) error {
	if c == nil || dy == nil {
		return fmt.Errorf("conv2d relu mask: nil convolution or gradient")
	}
	if !c.ReLU {
		return nil
	}
	if dy.Len()%c.K != 0 {
		return fmt.Errorf("conv2d relu mask: gradient %q of %d elements is not %d rows", dy.Name, dy.Len(), c.K)
	}
	np := dy.Len() / c.K // one workgroup per channel
	if err := r.ReLUGradRowSum(s, y, dy, nil, RowSum{Rows: c.K, L: np, RowStride: np, ColStride: 1}); err != nil {
		return fmt.Errorf("conv2d relu mask: %w", err)
	}
	return nil
}

// Conv2DBackwardWeights records WeightGrad (+)= dY * col(x)^T, for x
// C x N x H x W (shape given) and dy K x N x OH x OW, the gradient before the
// ReLU (masked already: see Conv2DBackwardBias).
func (r *Runtime) Conv2DBackwardWeights(s *vk.Stream, c *Conv2D, x, dy, scratch *Tensor, accumulate bool) error {
	const op = "conv2d backward weights"
	if c != nil && c.Algo[PassBackwardWeights] != ConvIm2col {
		return r.winogradBackwardWeights(s, c, x, dy, scratch, accumulate)
	}
	g, err := r.convGeometry(op, c, x, scratch)
	if err != nil {
		return err
	}
	if err := convCheckLen(op, "output gradient", dy, c.K*g.np); err != nil {
		return err
	}
	for n0 := 0; n0 < g.n; n0 += g.g {
		gn := min(g.g, g.n-n0)
		if err := r.im2col(s, c, g, x, scratch, n0, gn); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		err := r.GEMM(s, c.K, g.crs, gn*g.p,
			Mat{T: dy, Off: n0 * g.p, LD: g.np}, Mat{T: scratch, LD: roundUp4(gn * g.p), Trans: true}, Mat{T: c.WeightGrad, LD: g.crs},
			GEMMOptions{Accumulate: accumulate || n0 > 0, Variant: c.GEMM[PassBackwardWeights]})
		if err != nil {
			return fmt.Errorf("%s: images %d..%d: %w", op, n0, n0+gn-1, err)
		}
	}
	return nil
}

// Conv2DBackwardData records dx = the input gradient for dy (K x N x OH x OW, the
// gradient before the ReLU) into dx, C x N x H x W (its shape must say so).
func (r *Runtime) Conv2DBackwardData(s *vk.Stream, c *Conv2D, dy, dx, scratch *Tensor) error {
	const op = "conv2d backward data"
	if c != nil && c.Algo[PassBackwardData] != ConvIm2col {
		return r.winogradBackwardData(s, c, dy, dx, scratch)
	}
	g, err := r.convGeometry(op, c, dx, scratch)
	if err != nil {
		return err
	}
	if err := convCheckLen(op, "output gradient", dy, c.K*g.np); err != nil {
		return err
	}
	if dy.Buffer() == dx.Buffer() || dx.Buffer() == scratch.Buffer() {
		return fmt.Errorf("%s: input gradient %q shares a buffer with the output gradient or scratch", op, dx.Name)
	}
	hw := g.h * g.w
	for n0 := 0; n0 < g.n; n0 += g.g {
		gn := min(g.g, g.n-n0)
		ldcol := roundUp4(gn * g.p)
		err := r.GEMM(s, g.crs, gn*g.p, c.K,
			Mat{T: c.Weight, LD: g.crs, Trans: true}, Mat{T: dy, Off: n0 * g.p, LD: g.np}, Mat{T: scratch, LD: ldcol},
			GEMMOptions{Variant: c.GEMM[PassBackwardData]})
		if err != nil {
			return fmt.Errorf("%s: images %d..%d: %w", op, n0, n0+gn-1, err)
		}
		// The chunk's part of dx is C blocks of gn*H*W elements, N*H*W apart:
		// bound whole, or in runs of channels where dx exceeds the storage range.
		for _, ch := range r.rowChunks(Mat{T: dx, Off: n0 * hw, LD: g.n * hw}, c.C, gn*hw, math.MaxInt) {
			total := ch.rows * gn * hw
			pc := push(nil).u32(g.n, g.h, g.w, c.R, c.S, c.StrideH, c.StrideW, c.PadH, c.PadW,
				g.oh, g.ow, ch.row, ch.rows, gn, ldcol, ch.off, total)
			if err := r.dispatch(s, "col2im", nil, r.groups1D(total, 64), pc, scratch.Range().AsR32F(), ch.rng); err != nil {
				return fmt.Errorf("%s: col2im into %q: %w", op, dx.Name, err)
			}
		}
	}
	return nil
}
