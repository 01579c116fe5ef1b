package layers

import (
	"fmt"
	"strings"

	"vktrain/vk"
)

// Mat is a matrix inside a tensor's buffer: element (i, j) of the m x k (or k x n)
// operand is at Off + i*LD + j, or Off + j*LD + i when Trans is set.
type Mat struct {
	T     *Tensor
	Off   int // in elements
	LD    int // leading dimension, in elements
	Trans bool
}

// GEMMOptions are the epilogue of a GEMM.
type GEMMOptions struct {
	Alpha      float32 // scale of the product; 0 means 1
	Accumulate bool    // C += product instead of C = product
	Bias       *Tensor // added per row (BiasPerRow) or per column of C; nil for none
	BiasOff    int
	BiasPerRow bool
	ReLU       bool // clamp the result at 0 (after the bias)
	// Batch > 1 records that many products in one dispatch, product z reading
	// A, B and C StrideA, StrideB and StrideC elements after product z-1's
	// (the bias is shared). 0 means 1.
	Batch                     int
	StrideA, StrideB, StrideC int
	// Variant is the kernel: GEMMAuto (the zero value) runs the runtime's
	// Variant. The tiled kernel reads A and B as storage buffers; an operand
	// past the device's storage range is read as texels instead.
	Variant GEMMVariant
	// Update, when set, makes C a parameter and the product (times Alpha) its
	// gradient: instead of being stored, the gradient takes C and its momentum
	// through one torch.optim.SGD step (shaders/gemm_smallk.comp's update4, the
	// same arithmetic as Runtime.SGD), so the gradient is never written nor read
	// back. Only where FusesUpdate holds, with no Accumulate, Bias, ReLU or Batch.
	Update *GEMMUpdate
}

// GEMMUpdate is the optimizer state a fused GEMM update uses.
type GEMMUpdate struct {
	SGD      *SGDParams
	Momentum *Tensor // shaped like C's tensor; nil without momentum
	// InputGrad, when its tensor is set, also receives D (k x n) = A^T C with
	// C's values before the step, computed from the same reads of C (module
	// gemm_smallk_sgd_dx): with A = dy^T and C a linear layer's weight, D is
	// the layer's input gradient dy W, so the weight is read once for its
	// input gradient and its step. The kernel writes partial sums over slabs
	// of C's rows into Scratch (at least UpdateScratchLen elements); one more
	// pass (slabsum) adds them into D. n must be a multiple of 4.
	InputGrad Mat
	Scratch   *Tensor
}

// gemmUpdateSlabRows is the number of C's rows each workgroup of
// gemm_smallk_sgd_dx walks (its slab; the shader's SLAB): the partial input
// gradients are K x N per slab. Measured on lavapipe (Intel Xeon host,
// BenchmarkLinearBackward, fc6 at batch 4, fused): 64, 128 and 256 rows within
// 5% of each other (83.9, 87.5 and 85.4 ms; the partial sums' pass 1.7, 0.5
// and 0.3 ms); with 128, fc7's 1024 rows make 8 slabs (32 workgroups).
const gemmUpdateSlabRows = 128

// gemmUpdateGroupCols is the number of C's columns a workgroup of
// gemm_smallk_sgd_dx covers: 256 invocations of four.
const gemmUpdateGroupCols = 1024

// specInputGradK and specSlabRows are gemm_smallk_sgd_dx's K (the batch: its
// register arrays' length) and rows per slab.
const (
	specInputGradK = 13
	specSlabRows   = 14
)

// UpdateScratchLen is the scratch, in elements, that a fused update of the m x
// n matrix c with depth k needs for its input gradient (GEMMUpdate.InputGrad):
// k x n partial sums per slab of gemmUpdateSlabRows rows, C's storage chunks
// counted separately.
func (r *Runtime) UpdateScratchLen(m, n, k int, c Mat) int {
	return r.updateSlabs(m, n, c) * k * n
}

// updateSlabs is the number of slabs a fused update with an input gradient
// splits the m x n matrix c into, over its storage chunks.
func (r *Runtime) updateSlabs(m, n int, c Mat) int {
	slabs := 0
	for _, ch := range r.rowChunks(c, m, n, gemmUpdateSlabRows*int(r.Dev.Info.MaxWorkgroupCount[1])) {
		slabs += ceilDiv(ch.rows, gemmUpdateSlabRows)
	}
	return slabs
}

// FusesUpdate reports whether GEMM can apply GEMMOptions.Update to a product
// of depth k of b into c on the runtime's own variant: on the texel variant,
// for K up to gemmSmallKMax, B not transposed, B's and C's rows aligned to 4
// (gemm_smallk).
func (r *Runtime) FusesUpdate(k int, b, c Mat) bool {
	return r.fusesUpdate(GEMMAuto, k, b, c)
}

// fusesUpdate is FusesUpdate for a product choosing variant v.
func (r *Runtime) fusesUpdate(v GEMMVariant, k int, b, c Mat) bool {
	return r.GEMMVariantFor(v) == GEMMTexel && r.smallK(k, b, c, true, true)
}

// smallK reports whether gemm_smallk computes the product (alignB4 and
// alignC4: the batch strides keep the alignment).
func (r *Runtime) smallK(k int, b, c Mat, alignB4, alignC4 bool) bool {
	return k <= gemmSmallKMax && !b.Trans && b.LD%4 == 0 && b.Off%4 == 0 && alignB4 && c.LD%4 == 0 && c.Off%4 == 0 && alignC4
}

// gemmUnrollMinK is the smallest K for which the texel GEMM runs its K loop four
// steps per iteration (gemm_texel.comp's KSTEPS); below it the single-step build
// is faster (measured on lavapipe: the linear layers' weight gradients, K = batch).
const gemmUnrollMinK = 64

// gemmSharedUnrollMinK is gemmUnrollMinK for gemm_texel_sh: its 16x32 tile
// runs the single-step build faster up to K = 192. Measured on lavapipe (AMD
// EPYC Zen 4 host, interleaved rounds, a noisy host): batched GEMMs of
// Winograd's shapes 1.0-1.7x at K = 64, 1.2-1.3x at K = 128, 1.1-1.7x at
// K = 192; BenchmarkConv's Winograd passes at batch 64 1.3-1.6x for conv2's
// forward (K = 64) and 1.3-1.5x for conv3's (K = 192), at batch 4 0.7-1.7x;
// conv2's backward-data GEMM (K = 192) 1.0-1.1x, fc6's weight gradient at
// batch 64 (K = 64) 0.7-1.5x; at K = 256 (conv5's passes) 0.7-1.2x, so from
// 256 on the four-step build stays.
const gemmSharedUnrollMinK = 256

// gemmMFastMinK is the smallest K for which the texel GEMM walks its
// workgroups row tile first (gemm_texel.comp's M_FAST): consecutive workgroups
// then share a 64-column block of B, which stays in cache, instead of a block
// of 8 rows of A. Measured on lavapipe (AMD EPYC host, AlexNet's GEMMs at
// batch 4 and 64, BenchmarkGEMM): 1.2-1.8x for the convolutions' forward
// GEMMs, 1.0-1.8x for the input gradients; for the linear layers' weight
// gradients (K = batch, C written once and nothing to reuse) 0.9x, so those
// keep the column-first walk.
// gemm_texel_sh (16x32 tiles) keeps the rule: the column-first walk measured
// 0.80-1.38x of it there, below 1 for 11 of 16 GEMMs (Zen 4 host, medians of
// two runs).
const gemmMFastMinK = 128

// gemmSharedMinM is the smallest M for which the texel variant runs
// gemm_texel_sh (16x32 tiles, A shared across the subgroup by shuffles) rather
// than gemm_texel (8x64 tiles, every invocation fetching A itself), where the
// device has subgroup shuffles in subgroups of at least 8 (Runtime.sharesA).
// Measured on lavapipe (AMD EPYC Zen 4 host, BenchmarkGEMM, two interleaved
// rounds): 1.4-1.8x for the convolutions' forward GEMMs at batch 64 and for
// fc6's forward and input gradient, 1.0-1.5x at batch 4; with M = 4 (fc6's
// forward at batch 4) three quarters of its tile is wasted and it measured
// 0.8x, so small M keeps gemm_texel.
const gemmSharedMinM = 16

// gemmSmallKMax is the largest K gemm_smallk serves (texel variant, B not
// transposed, B and C aligned for vec4): the linear layers' weight gradients
// at small batches.
const gemmSmallKMax = 16

// Spec constant IDs shared by gemm_texel.comp and gemm_tiled.comp.
const (
	specTransA = 1
	specTransB = 2
	specVecA   = 3
	specVecB   = 4
	specBias   = 5
	specHasBuf = 10 // gemm_smallk_sgd: a momentum buffer is bound
	specReLU   = 6
	specAccum  = 7
	specAlignA = 9
	specMFast  = 11 // gemm_texel: the grid's x walks the row tiles
	// gemm_texel: B is transposed with rows a multiple of gemmAliasLD floats
	// apart: fetch each row's 16 depths of an iteration back to back.
	specAliasedB = 12
)

// gemmAliasLD is the leading dimension (in floats: 4 KiB, the period of a
// CPU's L1 cache sets) whose multiples put the texel GEMM's transposed B rows
// all in one cache set: a tile's 32 or 64 rows fetched 4 depths at a time then
// evict each other before the next step reads the rest of their lines (fc6's
// forward reads its 9216-wide weight so). There the kernel fetches each row's
// 16 depths of an iteration at once (gemm_texel_sh.comp's PRE_B). Measured on
// lavapipe (AMD EPYC Zen 4 host, BenchmarkGEMM, two interleaved rounds): fc6's
// forward 1.2-1.8x at batch 64 and 1.4-2.2x at batch 4; preloading where rows
// do not alias measured 0.5-1.0x, so other strides keep the step-by-step
// fetch (strides of 1-2 KiB, which alias partly, are unmeasured).
// gemm_texel_sh preloads a B not transposed with such rows too (fc6's input
// gradient at batch 64 reads its weight so: 1.07-1.25x on the Intel Xeon host).
const gemmAliasLD = 1024

// GEMM records C (m x n) = alpha * A (m x k) * B (k x n) with the options'
// epilogue, using the options' GEMM variant (by default the runtime's).
func (r *Runtime) GEMM(s *vk.Stream, m, n, k int, a, b, c Mat, o GEMMOptions) error {
	if m <= 0 || n <= 0 || k <= 0 {
		return fmt.Errorf("gemm: bad size %dx%dx%d", m, n, k)
	}
	if c.Trans {
		return fmt.Errorf("gemm: C cannot be transposed")
	}
	batch := max(o.Batch, 1)
	if o.Batch < 0 || o.StrideA < 0 || o.StrideB < 0 || o.StrideC < 0 || (batch > 1 && o.StrideC == 0) {
		return fmt.Errorf("gemm: batch %d with strides %d, %d, %d: want a positive batch, strides not negative and C's positive", o.Batch, o.StrideA, o.StrideB, o.StrideC)
	}
	last := func(x Mat, stride int) Mat { x.Off += (batch - 1) * stride; return x }
	for _, x := range []Mat{a, last(a, o.StrideA)} {
		if err := checkMat("A", x, m, k); err != nil {
			return err
		}
	}
	for _, x := range []Mat{b, last(b, o.StrideB)} {
		if err := checkMat("B", x, k, n); err != nil {
			return err
		}
	}
	for _, x := range []Mat{c, last(c, o.StrideC)} {
		if err := checkMat("C", x, m, n); err != nil {
			return err
		}
	}
	// Vector reads and stores need every product's operand aligned like the first's.
	strideA4, strideB4, strideC4 := o.StrideA%4 == 0, o.StrideB%4 == 0, o.StrideC%4 == 0
	bias, biasMode := r.dummy, uint32(0)
	if o.Bias != nil {
		bias, biasMode = o.Bias, 2
		want := n
		if o.BiasPerRow {
			biasMode, want = 1, m
		}
		if o.BiasOff < 0 || o.BiasOff+want > o.Bias.Len() {
			return fmt.Errorf("gemm: bias %q has %d elements, needs %d from offset %d", o.Bias.Name, o.Bias.Len(), want, o.BiasOff)
		}
	} else if bias == nil {
		var err error
		if r.dummy, err = r.NewTensor("dummy", 4); err != nil {
			return err
		}
		bias = r.dummy
	}
	inputGrad := o.Update != nil && o.Update.InputGrad.T != nil // gemm_smallk_sgd_dx
	alpha := o.Alpha
	if alpha == 0 {
		alpha = 1
	}
	spec := map[uint32]uint32{
		specTransA: boolU32(a.Trans), specTransB: boolU32(b.Trans),
		specBias: biasMode, specReLU: boolU32(o.ReLU), specAccum: boolU32(o.Accumulate),
	}
	module, rowsPerGroup, colsPerGroup := "gemm_texel", 8, 64
	ra, rb := a.T.Range(), b.T.Range()
	alignB, alignC := b.LD%4 == 0 && b.Off%4 == 0 && strideB4, c.LD%4 == 0 && c.Off%4 == 0 && strideC4
	var extra []vk.Range // the fused update's bindings 4 and 5
	if u := o.Update; u != nil {
		switch {
		case !r.fusesUpdate(o.Variant, k, b, c):
			return fmt.Errorf("gemm: a fused update of %q needs the texel variant, K <= %d, B not transposed and B's and C's rows aligned to 4 (%dx%dx%d, variant %s)", c.T.Name, gemmSmallKMax, m, n, k, r.GEMMVariantFor(o.Variant))
		case u.SGD == nil || o.Accumulate || o.Bias != nil || o.ReLU || batch > 1:
			return fmt.Errorf("gemm: a fused update of %q takes SGD state and no accumulation, bias, ReLU or batch", c.T.Name)
		case u.Momentum != nil && (u.Momentum.Len() != c.T.Len() || u.Momentum.Buffer() == c.T.Buffer()):
			return fmt.Errorf("gemm: momentum %q must be shaped like parameter %q and distinct from it", u.Momentum.Name, c.T.Name)
		}
		extra = []vk.Range{u.SGD.Range()}
		if d := u.InputGrad; d.T != nil {
			if err := r.checkInputGrad(m, n, k, c, d, u.Scratch, []*Tensor{a.T, b.T, c.T, u.Momentum}); err != nil {
				return err
			}
		}
	}
	// The tiled kernel binds A and B as storage buffers; an operand past the
	// device's storage range (fc6's weight on some devices) is read as texels.
	if o.Update == nil && r.GEMMVariantFor(o.Variant) == GEMMTiled && ra.Size <= r.storageLimit && rb.Size <= r.storageLimit {
		module, rowsPerGroup = "gemm_tiled", 64
	} else if r.smallK(k, b, c, strideB4, strideC4) {
		module, rowsPerGroup, colsPerGroup = "gemm_smallk", 8, 256
		ra = ra.AsR32F()
		delete(spec, specTransB) // never transposed here
		if o.Update != nil {
			module = "gemm_smallk_sgd"
			spec = map[uint32]uint32{specTransA: boolU32(a.Trans), specHasBuf: boolU32(o.Update.Momentum != nil)}
			if inputGrad {
				module, rowsPerGroup, colsPerGroup = "gemm_smallk_sgd_dx", gemmUpdateSlabRows, gemmUpdateGroupCols
				spec[specInputGradK], spec[specSlabRows] = uint32(k), gemmUpdateSlabRows
			}
		}
	} else {
		alignA := a.LD%4 == 0 && a.Off%4 == 0 && strideA4
		vecA, vecB := alignA || !a.Trans, alignB
		if !vecA {
			ra = ra.AsR32F()
		}
		if !alignA && vecA {
			spec[specAlignA] = 0 // rows start anywhere: two texels and a shift
		}
		if !vecB {
			rb = rb.AsR32F()
		}
		spec[specVecA], spec[specVecB] = boolU32(vecA), boolU32(vecB)
		if alignC {
			module = "gemm_texel_c4" // vec4 stores: on lavapipe scalar stores cost as much as the math for small K
		}
		shared := r.sharesA && m >= gemmSharedMinM
		if k < gemmUnrollMinK || (shared && k < gemmSharedUnrollMinK) {
			module += "_k1"
		}
		if shared {
			module = strings.Replace(module, "gemm_texel", "gemm_texel_sh", 1)
			rowsPerGroup, colsPerGroup = 16, 32
		}
		// The single-step builds have no preload; gemm_texel preloads only a
		// transposed B.
		if vecB && (b.Trans || shared) && b.LD%gemmAliasLD == 0 && !strings.HasSuffix(module, "_k1") {
			spec[specAliasedB] = 1
		}
	}
	maxCount := r.Dev.Info.MaxWorkgroupCount
	mFast := strings.HasPrefix(module, "gemm_texel") && k >= gemmMFastMinK && ceilDiv(n, colsPerGroup) <= int(maxCount[1])
	rowGroups := int(maxCount[1])
	if mFast {
		spec[specMFast] = 1
		rowGroups = int(maxCount[0])
	}
	// C is a storage buffer: where its rows span more than the device's storage
	// range (fc6's 4096x9216 weight gradient on lavapipe), bind it in row chunks.
	// One chunk binds C's whole tensor, which checkMat showed holds every product.
	chunks := r.rowChunks(c, m, n, rowsPerGroup*rowGroups)
	if batch > 1 && len(chunks) > 1 {
		return fmt.Errorf("gemm: a batch of %d products whose C %q passes the device's storage-buffer range", batch, c.T.Name)
	}
	slab := 0 // gemm_smallk_sgd_dx: the first slab of the chunk, passed where the bias offset would be
	for _, ch := range chunks {
		aOff := a.Off + ch.row*a.LD
		if a.Trans {
			aOff = a.Off + ch.row
		}
		biasOff := o.BiasOff
		if o.BiasPerRow {
			biasOff += ch.row
		}
		if inputGrad {
			biasOff = slab
			slab += ceilDiv(ch.rows, rowsPerGroup)
		}
		pc := push(nil).u32(ch.rows, n, k, a.LD, b.LD, c.LD, aOff, b.Off, ch.off, biasOff).f32(alpha).u32(o.StrideA, o.StrideB, o.StrideC)
		groups := [3]uint32{uint32(ceilDiv(n, colsPerGroup)), uint32(ceilDiv(ch.rows, rowsPerGroup)), uint32(batch)}
		if mFast {
			groups[0], groups[1] = groups[1], groups[0]
		}
		args := []vk.Range{ra, rb, ch.rng, bias.Range()}
		if o.Update != nil {
			mom := ch.rng // bound but never accessed without momentum
			if u := o.Update.Momentum; u != nil {
				mom = u.Buffer().Slice(ch.start, ch.rng.Size)
			}
			args = []vk.Range{ra, rb, ch.rng, extra[0], mom, ch.rng, mom} // bindings 0-2, 4-7: no bias
			if inputGrad {
				args = append(args, o.Update.Scratch.Range()) // binding 8: the slabs' partial sums
			}
		}
		if err := r.dispatch(s, module, spec, groups, pc, args...); err != nil {
			return err
		}
	}
	if inputGrad {
		if err := r.SlabSum(s, o.Update.Scratch, slab, k, n, o.Update.InputGrad); err != nil {
			return fmt.Errorf("gemm: the update of %q: %w", c.T.Name, err)
		}
	}
	return nil
}

// checkInputGrad checks a fused update's input gradient d (k x n, not
// transposed) and its scratch against an m x n x k product into c: n a
// multiple of 4, the scratch large enough, and both distinct from the
// product's other tensors.
func (r *Runtime) checkInputGrad(m, n, k int, c, d Mat, scratch *Tensor, others []*Tensor) error {
	if d.Trans || n%4 != 0 {
		return fmt.Errorf("gemm: the input gradient %q of a fused update needs n a multiple of 4 (n = %d) and no transpose", d.T.Name, n)
	}
	if err := checkMat("input gradient", d, k, n); err != nil {
		return err
	}
	need := r.UpdateScratchLen(m, n, k, c)
	if scratch == nil || scratch.Len() < need {
		have := 0
		if scratch != nil {
			have = scratch.Len()
		}
		return fmt.Errorf("gemm: the input gradient %q of a fused update needs a scratch of %d elements, has %d", d.T.Name, need, have)
	}
	for _, t := range others {
		if t != nil && (t.Buffer() == d.T.Buffer() || t.Buffer() == scratch.Buffer()) {
			return fmt.Errorf("gemm: the input gradient %q and scratch %q of a fused update must be distinct from %q", d.T.Name, scratch.Name, t.Name)
		}
	}
	if d.T.Buffer() == scratch.Buffer() {
		return fmt.Errorf("gemm: the input gradient %q of a fused update must be distinct from its scratch", d.T.Name)
	}
	return nil
}

// rowChunk is a run of C's rows bound as one storage range; off is the first
// row's element offset within that range.
type rowChunk struct {
	row, rows, off int
	rng            vk.Range
	start          int64 // rng's byte offset in the tensor's buffer
}

// rowChunks splits the m x n block of c into runs of at most maxRows rows
// whose bytes fit the device's storage-buffer range, each binding starting at
// an aligned offset.
func (r *Runtime) rowChunks(c Mat, m, n, maxRows int) []rowChunk {
	whole := c.T.Range()
	limit := r.storageLimit
	if whole.Size <= limit && m <= maxRows {
		return []rowChunk{{row: 0, rows: m, off: c.Off, rng: whole}}
	}
	if whole.Size <= limit {
		var chunks []rowChunk
		for row := 0; row < m; row += maxRows {
			chunks = append(chunks, rowChunk{row: row, rows: min(maxRows, m-row), off: c.Off + row*c.LD, rng: whole})
		}
		return chunks
	}
	// Aligned for storage and texel bindings alike (both powers of two).
	align := int64(max(r.Dev.Info.MinStorageBufferAlign, r.Dev.Info.MinTexelBufferAlign))
	rowBytes := int64(4 * c.LD)
	var chunks []rowChunk
	for row := 0; row < m; {
		first := int64(4 * (c.Off + row*c.LD))
		start := first / align * align
		rows := int((limit-(first-start)-4*int64(n))/rowBytes) + 1
		rows = max(1, min(rows, m-row, maxRows))
		end := first + int64(rows-1)*rowBytes + 4*int64(n)
		size := (end - start + 15) &^ 15
		size = min(size, whole.Size-start)
		chunks = append(chunks, rowChunk{row: row, rows: rows, off: int((first - start) / 4), rng: c.T.Buffer().Slice(start, size), start: start})
		row += rows
	}
	return chunks
}

// checkMat checks that a rows x cols operand lies inside its tensor.
func checkMat(name string, x Mat, rows, cols int) error {
	if x.T == nil {
		return fmt.Errorf("gemm: %s is nil", name)
	}
	if x.Trans {
		rows, cols = cols, rows
	}
	if x.LD < cols || x.Off < 0 || x.Off+(rows-1)*x.LD+cols > x.T.Len() {
		return fmt.Errorf("gemm: %s (%dx%d, ld %d, offset %d) does not fit tensor %q of %d elements", name, rows, cols, x.LD, x.Off, x.T.Name, x.T.Len())
	}
	return nil
}
