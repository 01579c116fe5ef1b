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
	// ConvWinograd runs Winograd's F(2x2, RxR) for 3x3 and 5x5 filters at stride
	// 1: the filters and (R+1)x(R+1) input tiles are transformed, multiplied as
	// (R+1)² batched GEMMs over the channels (2.25x fewer multiplications than
	// direct convolution for 3x3, 2.78x for 5x5) and transformed back.
	// Backward data is the same on dy with the filters flipped and transposed
	// (padding R-1-P); backward weights multiplies the transposed output
	// transform of dy with the input transform of x and transforms the sum back
	// to RxR.
	ConvWinograd
	// ConvWinograd4 runs F(4x4, 3x3) for 3x3 filters at stride 1 (36 products
	// per 16 outputs: 4x fewer multiplications, larger transforms and a larger
	// rounding error); elsewhere a network falls back to ConvWinograd.
	ConvWinograd4
)

// ConvAlgos lists every algorithm, in the order bench --variants times them.
var ConvAlgos = []ConvAlgo{ConvIm2col, ConvWinograd, ConvWinograd4}

func (a ConvAlgo) String() string {
	switch a {
	case ConvWinograd:
		return "winograd"
	case ConvWinograd4:
		return "winograd4"
	}
	return "im2col"
}

// ParseConvAlgo reads "im2col", "winograd" or "winograd4" ("" is im2col).
func ParseConvAlgo(s string) (ConvAlgo, error) {
	for _, a := range ConvAlgos {
		if s == a.String() {
			return a, nil
		}
	}
	if s == "" {
		return ConvIm2col, nil
	}
	return 0, fmt.Errorf("convolution algorithm %q: want im2col, winograd or winograd4", s)
}

// ConvPass is one of a convolution's three passes; Conv2D.Algo has an
// algorithm for each.
type ConvPass int

// The passes.
const (
	PassForward ConvPass = iota
	PassBackwardData
	PassBackwardWeights
)

// ConvPasses lists them.
var ConvPasses = []ConvPass{PassForward, PassBackwardData, PassBackwardWeights}

func (p ConvPass) String() string {
	return [...]string{"forward", "backward-data", "backward-weights"}[p]
}

// ParseConvPass reads a ConvPass's String.
func ParseConvPass(s string) (ConvPass, error) {
	for _, p := range ConvPasses {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("convolution pass %q: want forward, backward-data or backward-weights", s)
}

// SetAlgo runs every pass of c by a.
func (c *Conv2D) SetAlgo(a ConvAlgo) { c.Algo = [3]ConvAlgo{a, a, a} }

// winoVariant is Winograd's F(m x m, r x r).
type winoVariant struct{ m, r int }

// alpha is the input tile's side; a² is the number of batched products.
func (v winoVariant) alpha() int { return v.m + v.r - 1 }

func (v winoVariant) String() string { return fmt.Sprintf("F(%dx%d,%dx%d)", v.m, v.m, v.r, v.r) }

// module is the SPIR-V module of one transform stage (shaders/kernels.txt).
func (v winoVariant) module(stage string) string {
	return fmt.Sprintf("winograd_m%dr%d_%s", v.m, v.r, stage)
}

// winoVariants are the compiled ones (shaders/winograd_matrices.glsl).
var winoVariants = []winoVariant{{2, 3}, {4, 3}, {2, 5}}

// winoVariant returns the Winograd variant algorithm a runs c with, and whether
// there is one: a square filter the variant is compiled for, at stride 1, with
// padding up to R-1 (the backward-data pass pads by R-1-P).
func (c *Conv2D) winoVariant(a ConvAlgo) (winoVariant, bool) {
	if c.R != c.S || c.StrideH != 1 || c.StrideW != 1 || c.PadH > c.R-1 || c.PadW > c.S-1 {
		return winoVariant{}, false
	}
	var v winoVariant
	switch a {
	case ConvWinograd:
		v = winoVariant{2, c.R}
	case ConvWinograd4:
		v = winoVariant{4, c.R}
	default:
		return winoVariant{}, false
	}
	for _, k := range winoVariants {
		if k == v {
			return v, true
		}
	}
	return winoVariant{}, false
}

// AlgoApplies reports whether algorithm a can compute c: im2col always,
// ConvWinograd 3x3 and 5x5 filters at stride 1, ConvWinograd4 3x3 at stride 1
// (padding up to R-1).
func (c *Conv2D) AlgoApplies(a ConvAlgo) bool {
	if a == ConvIm2col {
		return true
	}
	_, ok := c.winoVariant(a)
	return ok
}

// ChooseAlgo returns the algorithm c runs when a network asks for a, its
// output being outH x outW: a itself where it applies, else ConvWinograd
// where that does (ConvWinograd4 asked of a 5x5 filter), else ConvIm2col.
// ConvWinograd4 on an output smaller than its 4x4 tiles in either dimension
// runs as ConvWinograd: F(4x4, 3x3) would compute up to four times the
// outputs and drop the rest (on lavapipe, ResNet-18's 2x2 maps of layer4 at
// 64x64 input and batch 64: 81-104 ms per pass against 31-48 ms).
func (c *Conv2D) ChooseAlgo(a ConvAlgo, outH, outW int) ConvAlgo {
	if a == ConvWinograd4 && (outH < 4 || outW < 4) && c.AlgoApplies(ConvWinograd) {
		return ConvWinograd
	}
	for _, try := range []ConvAlgo{a, ConvWinograd} {
		if try != ConvIm2col && c.AlgoApplies(try) && (try == a || a == ConvWinograd4) {
			return try
		}
	}
	return ConvIm2col
}

// winoPlan is the layout of one Winograd pass in the scratch tensor: U (the
// a² transformed filters, [a²][co][ldU]; the weight gradients' dU
// [a²][co][ci] in the same place), V ([a²][ci][ldT], the input tiles)
// and M ([a²][co][ldT], the products), for chunks of g images of th x tw tiles.
type winoPlan struct {
	v          winoVariant
	ci, co     int  // rows of V and of M (the pass's input and output channels)
	th, tw     int  // tiles per image
	g          int  // images per chunk
	offV       int  // element offset of V (U is at 0; M follows V, see offM)
	outH, outW int  // the size the tiles cover (the pass's output)
	padH, padW int  // of the input tiles
	inH, inW   int  // the pass's input
	n          int  // images in the batch
	flip       bool // backward data: the filters flipped and transposed
}

// ldT is the leading dimension of V and M for a chunk of gn images.
func (p winoPlan) ldT(gn int) int { return roundUp4(gn * p.th * p.tw) }

// ldU is the leading dimension of U: ci rounded up to 4, so that the filter
// transform stores vec4s and the GEMMs read U's rows as aligned RGBA32F texels.
func (p winoPlan) ldU() int { return roundUp4(p.ci) }

// need is the scratch elements a chunk of g images takes.
func (p winoPlan) need(g int) int {
	return p.planes()*p.co*p.ldU() + p.planes()*(p.ci+p.co)*p.ldT(g)
}

// planes is a², the number of transformed matrices (and of batched products).
func (p winoPlan) planes() int { return p.v.alpha() * p.v.alpha() }

// offM is the element offset of M for a chunk of gn images.
func (p winoPlan) offM(gn int) int { return p.offV + p.planes()*p.ci*p.ldT(gn) }

// winogradPlan lays out the pass by v with ci input and co output channels
// that covers an outH x outW output from an inH x inW input, for n images, in a
// scratch of limit elements (as many images per chunk as fit, at least one).
func winogradPlan(v winoVariant, ci, co, inH, inW, outH, outW, padH, padW, n, limit int) winoPlan {
	p := winoPlan{v: v, ci: ci, co: co, th: ceilDiv(outH, v.m), tw: ceilDiv(outW, v.m), outH: outH, outW: outW,
		padH: padH, padW: padW, inH: inH, inW: inW, n: n}
	p.g = n
	for p.g > 1 && p.need(p.g) > limit {
		p.g--
	}
	p.offV = p.planes() * co * p.ldU()
	return p
}

// winoPasses are the layouts of the three passes by v for n h x w images:
// forward and backward weights share one (channels c -> k over the output's
// tiles), backward data runs the forward algorithm from dy's k channels to dx's c.
func (c *Conv2D) winoPasses(v winoVariant, n, h, w, limit int) (fwd, data winoPlan) {
	oh, ow := c.OutSize(h, w)
	fwd = winogradPlan(v, c.C, c.K, h, w, oh, ow, c.PadH, c.PadW, n, limit)
	data = winogradPlan(v, c.K, c.C, oh, ow, h, w, c.R-1-c.PadH, c.S-1-c.PadW, n, limit)
	data.flip = true
	return fwd, data
}

// winogradScratchLen is ScratchLen for pass by variant v.
func (c *Conv2D) winogradScratchLen(v winoVariant, pass ConvPass, n, h, w int) int {
	limit := int(c.ScratchBudget / 4)
	if c.ScratchBudget <= 0 {
		limit = 0
	}
	fwd, data := c.winoPasses(v, n, h, w, limit)
	if pass == PassBackwardData {
		return data.need(data.g)
	}
	return fwd.need(fwd.g)
}

// winoCheck checks c, the activations' shape and the scratch for a Winograd
// pass and returns the plans, with their chunk sizes fitted to scratch.
func (r *Runtime) winoCheck(op string, pass ConvPass, c *Conv2D, x, scratch *Tensor) (fwd, data winoPlan, err error) {
	if c == nil || x == nil || scratch == nil {
		return fwd, data, fmt.Errorf("%s: nil convolution, input or scratch", op)
	}
	v, ok := c.winoVariant(c.Algo[pass])
	if !ok {
		return fwd, data, fmt.Errorf("%s: %s needs a square filter of a compiled variant (%v) at stride 1, not %dx%d at %d,%d",
			op, c.Algo[pass], winoVariants, c.R, c.S, c.StrideH, c.StrideW)
	}
	if c.PadH > c.R-1 || c.PadW > c.S-1 {
		return fwd, data, fmt.Errorf("%s: winograd handles padding up to %d, not %d,%d", op, c.R-1, c.PadH, c.PadW)
	}
	if len(x.Shape) != 4 || x.Shape[0] != c.C {
		return fwd, data, fmt.Errorf("%s: input %q has shape %v, want %d x N x H x W", op, x.Name, x.Shape, c.C)
	}
	n, h, w := x.Shape[1], x.Shape[2], x.Shape[3]
	if oh, _ := c.OutSize(h, w); oh == 0 {
		return fwd, data, fmt.Errorf("%s: %dx%d filter with padding %d,%d does not fit a %dx%d input", op, c.R, c.S, c.PadH, c.PadW, h, w)
	}
	if int64(4*scratch.Len()) > r.storageLimit {
		return fwd, data, fmt.Errorf("%s: scratch %q of %d bytes exceeds the device's storage-buffer range of %d", op, scratch.Name, 4*scratch.Len(), r.storageLimit)
	}
	fwd, data = c.winoPasses(v, n, h, w, scratch.Len())
	p := fwd
	if pass == PassBackwardData {
		p = data
	}
	if p.need(p.g) > scratch.Len() {
		return fwd, data, fmt.Errorf("%s: scratch %q of %d elements cannot hold one image's %v tiles (%d); size it with ScratchLen", op, scratch.Name, scratch.Len(), v, p.need(1))
	}
	return fwd, data, nil
}

// winoStageGrid is how shaders/winograd.comp spreads a stage over its rows x
// columns: columns (tiles, or input channels for filters) per invocation and
// invocations per workgroup. Four columns an invocation store each transformed
// element as one vec4 (on lavapipe a storage store is a loop over the lanes, so
// it costs little more than one float's) and OUTPUT reads them as one texel;
// 16 invocations a workgroup keep small maps at small batches filling one.
// Measured on lavapipe (AMD EPYC Zen 4 host, BenchmarkConv, the stage's GPU
// time against one column an invocation, 64 a workgroup): INPUT median 2.3x at
// batch 4 and 1.8x at batch 64, DOUTPUT 3.1x and 2.0x; 64 invocations a
// workgroup of four-tile INPUT 0.76-0.88x of 16 at batch 4.
type winoStageGrid struct{ cols, local int }

// winoStages returns stage's grid, and false for a stage the shader lacks.
func winoStages(stage string) (winoStageGrid, bool) {
	switch stage {
	case "filter", "input", "output", "doutput":
		return winoStageGrid{cols: 4, local: 16}, true
	case "dfilter":
		return winoStageGrid{cols: 1, local: 64}, true
	}
	return winoStageGrid{}, false
}

// winoStage dispatches one transform stage of shaders/winograd.comp, for the
// plan's variant, over rows x cols (cols rounded up to ld, the extra columns
// zeroed where the stage writes a transformed tensor).
func (r *Runtime) winoStage(s *vk.Stream, stage string, spec map[uint32]uint32, rows, cols, ld int, p winoPlan, n0, srcOff, dstOff, plane int, src, dst vk.Range, extra ...vk.Range) error {
	pc := push(nil).u32(rows, cols, ld, p.n, p.inH, p.inW, p.outH, p.outW, p.th, p.tw,
		p.padH, p.padW, n0, srcOff, dstOff, plane) // the paddings are int in the shader; the same bits
	g, ok := winoStages(stage)
	if !ok {
		return fmt.Errorf("winograd: no stage %q", stage)
	}
	limY := int(r.Dev.Info.MaxWorkgroupCount[1])
	gy := min(rows, limY)
	groups := [3]uint32{uint32(ceilDiv(ceilDiv(ld, g.cols), g.local)), uint32(gy), uint32(ceilDiv(rows, gy))}
	if stage != "output" { // OUTPUT reads four floats a texel
		src = src.AsR32F()
	}
	args := append([]vk.Range{src, dst}, extra...)
	module := p.v.module(stage)
	if err := r.dispatch(s, module, spec, groups, pc, args...); err != nil {
		return fmt.Errorf("%s: %w", module, err)
	}
	return nil
}

// winoFilter records U = the transformed filters of c (flipped and transposed for
// backward data) at the start of scratch.
func (r *Runtime) winoFilter(s *vk.Stream, c *Conv2D, p winoPlan, scratch *Tensor) error {
	return r.winoStage(s, "filter", map[uint32]uint32{0: boolU32(p.flip)}, p.co, p.ci, p.ldU(), p, 0, 0, 0, p.co*p.ldU(),
		c.Weight.Range(), scratch.Range())
}

// winoProducts records M[e] = U[e] * V[e] for the a² e of a chunk of gn images.
// The GEMMs run variant v.
func (r *Runtime) winoProducts(s *vk.Stream, p winoPlan, gn int, scratch *Tensor, v GEMMVariant) error {
	ld, t := p.ldT(gn), gn*p.th*p.tw
	return r.GEMM(s, p.co, t, p.ci,
		Mat{T: scratch, LD: p.ldU()}, Mat{T: scratch, Off: p.offV, LD: ld}, Mat{T: scratch, Off: p.offM(gn), LD: ld},
		GEMMOptions{Batch: p.planes(), StrideA: p.co * p.ldU(), StrideB: p.ci * ld, StrideC: p.co * ld, Variant: v})
}

// winogradRun records a forward-form pass: out (co x N x outH x outW) =
// conv(in (ci x N x inH x inW)) by the plan, with bias and ReLU where given.
func (r *Runtime) winogradRun(s *vk.Stream, c *Conv2D, p winoPlan, in, out, scratch, bias *Tensor, relu bool) error {
	if err := r.winoFilter(s, c, p, scratch); err != nil {
		return err
	}
	b := bias
	if b == nil { // the output stage binds a dummy where there is no bias
		var err error
		if b, err = r.convDummy(); err != nil {
			return err
		}
	}
	outSpec := map[uint32]uint32{1: boolU32(bias != nil), 2: boolU32(relu)}
	pass := PassForward
	if p.flip {
		pass = PassBackwardData
	}
	for n0 := 0; n0 < p.n; n0 += p.g {
		gn := min(p.g, p.n-n0)
		ld, t := p.ldT(gn), gn*p.th*p.tw
		if err := r.winoStage(s, "input", nil, p.ci, t, ld, p, n0, 0, p.offV, p.ci*ld, in.Range(), scratch.Range()); err != nil {
			return err
		}
		if err := r.winoProducts(s, p, gn, scratch, c.GEMM[pass]); err != nil {
			return err
		}
		if err := r.winoStage(s, "output", outSpec, p.co, t, ld, p, n0, p.offM(gn), 0, p.co*ld, scratch.Range(), out.Range(), b.Range()); err != nil {
			return err
		}
	}
	return nil
}

// winogradForward is Conv2DForward by Winograd (c.Algo's variant).
func (r *Runtime) winogradForward(s *vk.Stream, c *Conv2D, x, y, scratch *Tensor) error {
	const op = "conv2d forward (winograd)"
	fwd, _, err := r.winoCheck(op, PassForward, c, x, scratch)
	if err != nil {
		return err
	}
	if err := convCheckLen(op, "output", y, c.K*fwd.n*fwd.outH*fwd.outW); err != nil {
		return err
	}
	if err := c.checkBias(op); err != nil {
		return err
	}
	if err := r.winogradRun(s, c, fwd, x, y, scratch, c.Bias, c.ReLU); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// winogradBackwardData is Conv2DBackwardData by Winograd: dx = conv(dy) with
// the flipped, transposed filters and padding R-1-P.
func (r *Runtime) winogradBackwardData(s *vk.Stream, c *Conv2D, dy, dx, scratch *Tensor) error {
	const op = "conv2d backward data (winograd)"
	_, data, err := r.winoCheck(op, PassBackwardData, c, dx, scratch)
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

// winogradBackwardWeights is Conv2DBackwardWeights by Winograd: dU[e] (+)=
// dM[e] * V[e]^T over the chunks, dM the transposed output transform of dy's
// tiles and V the input transform of x's, then WeightGrad (+)= G^T dU G.
func (r *Runtime) winogradBackwardWeights(s *vk.Stream, c *Conv2D, x, dy, scratch *Tensor, accumulate bool) error {
	const op = "conv2d backward weights (winograd)"
	p, _, err := r.winoCheck(op, PassBackwardWeights, c, x, scratch)
	if err != nil {
		return err
	}
	if err := convCheckLen(op, "output gradient", dy, c.K*p.n*p.outH*p.outW); err != nil {
		return err
	}
	for n0 := 0; n0 < p.n; n0 += p.g {
		gn := min(p.g, p.n-n0)
		ld, t := p.ldT(gn), gn*p.th*p.tw
		offM := p.offM(gn)
		if err := r.winoStage(s, "input", nil, p.ci, t, ld, p, n0, 0, p.offV, p.ci*ld, x.Range(), scratch.Range()); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if err := r.winoStage(s, "doutput", nil, p.co, t, ld, p, n0, 0, offM, p.co*ld, dy.Range(), scratch.Range()); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		err := r.GEMM(s, p.co, p.ci, t,
			Mat{T: scratch, Off: offM, LD: ld}, Mat{T: scratch, Off: p.offV, LD: ld, Trans: true}, Mat{T: scratch, LD: p.ci},
			GEMMOptions{Batch: p.planes(), StrideA: p.co * ld, StrideB: p.ci * ld, StrideC: p.co * p.ci, Accumulate: n0 > 0, Variant: c.GEMM[PassBackwardWeights]})
		if err != nil {
			return fmt.Errorf("%s: images %d..%d: %w", op, n0, n0+gn-1, err)
		}
	}
	spec := map[uint32]uint32{3: boolU32(accumulate)}
	if err := r.winoStage(s, "dfilter", spec, p.co, p.ci, p.ci, p, 0, 0, 0, p.co*p.ci, scratch.Range(), c.WeightGrad.Range()); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}
