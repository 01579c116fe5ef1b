package layers

import (
	"fmt"

	"vktrain/vk"
)

// ConvAlgo is how a Conv2D computes its passes.
type ConvAlgo int

const (
	// ConvIm2col unfolds the input into a column matrix and multiplies (any shape).
	ConvIm2col ConvAlgo = iota
	// ConvWinograd runs Winograd's F(2x2, 3x3) for 3x3 filters at stride 1: the
	// filters and 4x4 input tiles are transformed, multiplied as 16 batched GEMMs
	// over the channels (2.25x fewer multiplications than direct convolution)
	// and transformed back. Backward data is the same on dy with the filters
	// flipped and transposed (padding 2-P); backward weights multiplies the
	// transposed output transform of dy with the input transform of x and
	// transforms the sum back to 3x3.
	ConvWinograd
)

func (a ConvAlgo) String() string {
	if a == ConvWinograd {
		return "winograd"
	}
	return "im2col"
}

// ParseConvAlgo reads "winograd" or "im2col" ("" is im2col).
func ParseConvAlgo(s string) (ConvAlgo, error) {
	switch s {
	case "winograd":
		return ConvWinograd, nil
	case "im2col", "":
		return ConvIm2col, nil
	}
	return 0, fmt.Errorf("convolution algorithm %q: want winograd or im2col", s)
}

// WinogradApplies reports whether ConvWinograd can compute c: 3x3 filters at
// stride 1.
func (c *Conv2D) WinogradApplies() bool {
	return c.R == 3 && c.S == 3 && c.StrideH == 1 && c.StrideW == 1
}

// winoPlan is the layout of one Winograd pass in the scratch tensor: U (the
// 16 transformed filters, [16][co][ci]), V ([16][ci][ldT], the input tiles)
// and M ([16][co][ldT], the products), for chunks of g images of th x tw tiles.
type winoPlan struct {
	ci, co     int  // rows of V and of M (the pass's input and output channels)
	th, tw     int  // tiles per image
	g          int  // images per chunk
	offV, offM int  // element offsets of V and M (U is at 0)
	outH, outW int  // the size the tiles cover (the pass's output)
	padH, padW int  // of the input tiles
	inH, inW   int  // the pass's input
	n          int  // images in the batch
	flip       bool // backward data: the filters flipped and transposed
}

// ldT is the leading dimension of V and M for a chunk of gn images.
func (p winoPlan) ldT(gn int) int { return roundUp4(gn * p.th * p.tw) }

// need is the scratch elements a chunk of g images takes.
func (p winoPlan) need(g int) int {
	return roundUp4(16*p.co*p.ci) + 16*(p.ci+p.co)*p.ldT(g)
}

// winogradPlan lays out the pass with ci input and co output channels that
// covers an outH x outW output from an inH x inW input, for n images, in a
// scratch of limit elements (as many images per chunk as fit, at least one).
func winogradPlan(ci, co, inH, inW, outH, outW, padH, padW, n, limit int) winoPlan {
	p := winoPlan{ci: ci, co: co, th: (outH + 1) / 2, tw: (outW + 1) / 2, outH: outH, outW: outW,
		padH: padH, padW: padW, inH: inH, inW: inW, n: n}
	p.g = n
	for p.g > 1 && p.need(p.g) > limit {
		p.g--
	}
	p.offV = roundUp4(16 * co * ci)
	return p
}

// winoPasses are the layouts of the three passes for n h x w images: forward
// and backward weights share one (channels c -> k over the output's tiles),
// backward data runs the forward algorithm from dy's k channels to dx's c.
func (c *Conv2D) winoPasses(n, h, w, limit int) (fwd, data winoPlan) {
	oh, ow := c.OutSize(h, w)
	fwd = winogradPlan(c.C, c.K, h, w, oh, ow, c.PadH, c.PadW, n, limit)
	data = winogradPlan(c.K, c.C, oh, ow, h, w, 2-c.PadH, 2-c.PadW, n, limit)
	data.flip = true
	return fwd, data
}

// winogradScratchLen is ScratchLen for ConvWinograd.
func (c *Conv2D) winogradScratchLen(n, h, w int) int {
	limit := int(c.ScratchBudget / 4)
	if c.ScratchBudget <= 0 {
		limit = 0
	}
	fwd, data := c.winoPasses(n, h, w, limit)
	return max(fwd.need(fwd.g), data.need(data.g))
}

// winoCheck checks c, the activations' shape and the scratch for a Winograd
// pass and returns the plans, with their chunk sizes fitted to scratch.
func (r *Runtime) winoCheck(op string, c *Conv2D, x, scratch *Tensor) (fwd, data winoPlan, err error) {
	if c == nil || x == nil || scratch == nil {
		return fwd, data, fmt.Errorf("%s: nil convolution, input or scratch", op)
	}
	if !c.WinogradApplies() {
		return fwd, data, fmt.Errorf("%s: winograd needs a 3x3 filter at stride 1, not %dx%d at %d,%d", op, c.R, c.S, c.StrideH, c.StrideW)
	}
	if c.PadH > 2 || c.PadW > 2 {
		return fwd, data, fmt.Errorf("%s: winograd handles padding up to 2, not %d,%d", op, c.PadH, c.PadW)
	}
	if len(x.Shape) != 4 || x.Shape[0] != c.C {
		return fwd, data, fmt.Errorf("%s: input %q has shape %v, want %d x N x H x W", op, x.Name, x.Shape, c.C)
	}
	n, h, w := x.Shape[1], x.Shape[2], x.Shape[3]
	if oh, _ := c.OutSize(h, w); oh == 0 {
		return fwd, data, fmt.Errorf("%s: 3x3 filter with padding %d,%d does not fit a %dx%d input", op, c.PadH, c.PadW, h, w)
	}
	if int64(4*scratch.Len()) > r.storageLimit {
		return fwd, data, fmt.Errorf("%s: scratch %q of %d bytes exceeds the device's storage-buffer range of %d", op, scratch.Name, 4*scratch.Len(), r.storageLimit)
	}
	fwd, data = c.winoPasses(n, h, w, scratch.Len())
	for _, p := range []winoPlan{fwd, data} {
		if p.need(p.g) > scratch.Len() {
			return fwd, data, fmt.Errorf("%s: scratch %q of %d elements cannot hold one image's winograd tiles (%d); size it with ScratchLen", op, scratch.Name, scratch.Len(), p.need(1))
		}
	}
	return fwd, data, nil
}

// winoStage dispatches one transform of shaders/winograd.comp over rows x cols
// (cols rounded up to ld, the extra columns zeroed where the stage writes tiles).
func (r *Runtime) winoStage(s *vk.Stream, module string, spec map[uint32]uint32, rows, cols, ld int, p winoPlan, n0, srcOff, dstOff, plane int, src, dst vk.Range, extra ...vk.Range) error {
	pc := push(nil).u32(rows, cols, ld, p.n, p.inH, p.inW, p.outH, p.outW, p.th, p.tw,
		p.padH, p.padW, n0, srcOff, dstOff, plane) // the paddings are int in the shader; the same bits
	limY := int(r.Dev.Info.MaxWorkgroupCount[1])
	gy := min(rows, limY)
	groups := [3]uint32{uint32(ceilDiv(ld, 64)), uint32(gy), uint32(ceilDiv(rows, gy))}
	args := append([]vk.Range{src.AsR32F(), dst}, extra...)
	if err := r.dispatch(s, module, spec, groups, pc, args...); err != nil {
		return fmt.Errorf("%s: %w", module, err)
	}
	return nil
}

// winoFilter records U = the transformed filters of c (flipped and transposed for
// backward data) at the start of scratch.
func (r *Runtime) winoFilter(s *vk.Stream, c *Conv2D, p winoPlan, scratch *Tensor) error {
	return r.winoStage(s, "winograd_filter", map[uint32]uint32{0: boolU32(p.flip)}, p.co, p.ci, p.ci, p, 0, 0, 0, p.co*p.ci,
		c.Weight.Range(), scratch.Range())
}

// winoProducts records M[e] = U[e] * V[e] for the 16 e of a chunk of gn images.
func (r *Runtime) winoProducts(s *vk.Stream, p winoPlan, gn int, scratch *Tensor) error {
	ld, t := p.ldT(gn), gn*p.th*p.tw
	offM := p.offV + 16*p.ci*ld
	return r.GEMM(s, p.co, t, p.ci,
		Mat{T: scratch, LD: p.ci}, Mat{T: scratch, Off: p.offV, LD: ld}, Mat{T: scratch, Off: offM, LD: ld},
		GEMMOptions{Batch: 16, StrideA: p.co * p.ci, StrideB: p.ci * ld, StrideC: p.co * ld})
}

// winogradRun records a forward-form pass: out (co x N x outH x outW) =
// conv(in (ci x N x inH x inW)) by the plan, with bias and ReLU where given.
func (r *Runtime) winogradRun(s *vk.Stream, c *Conv2D, p winoPlan, in, out, scratch, bias *Tensor, relu bool) error {
	if err := r.winoFilter(s, c, p, scratch); err != nil {
		return err
	}
	b := r.dummy
	if bias != nil {
		b = bias
	}
	outSpec := map[uint32]uint32{1: boolU32(bias != nil), 2: boolU32(relu)}
	for n0 := 0; n0 < p.n; n0 += p.g {
		gn := min(p.g, p.n-n0)
		ld, t := p.ldT(gn), gn*p.th*p.tw
		if err := r.winoStage(s, "winograd_input", nil, p.ci, t, ld, p, n0, 0, p.offV, p.ci*ld, in.Range(), scratch.Range()); err != nil {
			return err
		}
		if err := r.winoProducts(s, p, gn, scratch); err != nil {
			return err
		}
		offM := p.offV + 16*p.ci*ld
		if err := r.winoStage(s, "winograd_output", outSpec, p.co, t, ld, p, n0, offM, 0, p.co*ld, scratch.Range(), out.Range(), b.Range()); err != nil {
			return err
		}
	}
	return nil
}

// winogradForward is Conv2DForward by F(2x2, 3x3).
func (r *Runtime) winogradForward(s *vk.Stream, c *Conv2D, x, y, scratch *Tensor) error {
	const op = "conv2d forward (winograd)"
	fwd, _, err := r.winoCheck(op, c, x, scratch)
	if err != nil {
		return err
	}
	if err := convCheckLen(op, "output", y, c.K*fwd.n*fwd.outH*fwd.outW); err != nil {
		return err
	}
	if err := r.winogradRun(s, c, fwd, x, y, scratch, c.Bias, c.ReLU); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// winogradBackwardData is Conv2DBackwardData by F(2x2, 3x3): dx = conv(dy) with
// the flipped, transposed filters and padding 2-P.
func (r *Runtime) winogradBackwardData(s *vk.Stream, c *Conv2D, dy, dx, scratch *Tensor) error {
	const op = "conv2d backward data (winograd)"
	_, data, err := r.winoCheck(op, c, dx, scratch)
	if err != nil {
		return err
	}
	if err := convCheckLen(op, "output gradient", dy, c.K*data.n*data.inH*data.inW); err != nil {
		return err
	}
	if dy.Buffer() == dx.Buffer() || dx.Buffer() == scratch.Buffer() {
		return fmt.Errorf("%s: input gradient %q shares a buffer with the output gradient or scratch", op, dx.Name)
	}
	if err := r.winogradRun(s, c, data, dy, dx, scratch, nil, false); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// winogradBackwardWeights is Conv2DBackwardWeights by F(2x2, 3x3): dU[e] (+)=
// dM[e] * V[e]^T over the chunks, dM the transposed output transform of dy's
// tiles and V the input transform of x's, then WeightGrad (+)= G^T dU G.
func (r *Runtime) winogradBackwardWeights(s *vk.Stream, c *Conv2D, x, dy, scratch *Tensor, accumulate bool) error {
	const op = "conv2d backward weights (winograd)"
	p, _, err := r.winoCheck(op, c, x, scratch)
	if err != nil {
		return err
	}
	if err := convCheckLen(op, "output gradient", dy, c.K*p.n*p.outH*p.outW); err != nil {
		return err
	}
	for n0 := 0; n0 < p.n; n0 += p.g {
		gn := min(p.g, p.n-n0)
		ld, t := p.ldT(gn), gn*p.th*p.tw
		offM := p.offV + 16*p.ci*ld
		if err := r.winoStage(s, "winograd_input", nil, p.ci, t, ld, p, n0, 0, p.offV, p.ci*ld, x.Range(), scratch.Range()); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if err := r.winoStage(s, "winograd_doutput", nil, p.co, t, ld, p, n0, 0, offM, p.co*ld, dy.Range(), scratch.Range()); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		err := r.GEMM(s, p.co, p.ci, t,
			Mat{T: scratch, Off: offM, LD: ld}, Mat{T: scratch, Off: p.offV, LD: ld, Trans: true}, Mat{T: scratch, LD: p.ci},
			GEMMOptions{Batch: 16, StrideA: p.co * ld, StrideB: p.ci * ld, StrideC: p.co * p.ci, Accumulate: n0 > 0})
		if err != nil {
			return fmt.Errorf("%s: images %d..%d: %w", op, n0, n0+gn-1, err)
		}
	}
	spec := map[uint32]uint32{3: boolU32(accumulate)}
	if err := r.winoStage(s, "winograd_dfilter", spec, p.co, p.ci, p.ci, p, 0, 0, 0, p.co*p.ci, scratch.Range(), c.WeightGrad.Range()); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}
