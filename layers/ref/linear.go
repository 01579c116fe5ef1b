package ref

// GEMM computes C = alpha*op(A)*op(B) + beta*C in place, with C an m x n
// row-major matrix, op(A) m x k and op(B) k x n. When transA is set, a
// holds A as a k x m matrix and op(A) is its transpose; otherwise a is
// m x k. Likewise b is n x k when transB is set and k x n otherwise.
//
// As in BLAS, beta == 0 means C is overwritten without being read, so NaN
// or Inf values already in C do not leak into the result. Sizes may be 0.
func GEMM(transA, transB bool, m, n, k int, alpha float64, a, b []float64, beta float64, c []float64) error {
	if err := checkAtLeast("gemm", 0, field{"m", m}, field{"n", n}, field{"k", k}); err != nil {
		return err
	}
	if err := checkLen("gemm a", len(a), m*k); err != nil {
		return err
	}
	if err := checkLen("gemm b", len(b), k*n); err != nil {
		return err
	}
	if err := checkLen("gemm c", len(c), m*n); err != nil {
		return err
	}
	opA := func(i, p int) float64 {
		if transA {
			return a[p*m+i]
		}
		return a[i*k+p]
	}
	opB := func(p, j int) float64 {
		if transB {
			return b[j*k+p]
		}
		return b[p*n+j]
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			sum := 0.0
			for p := 0; p < k; p++ {
				sum += opA(i, p) * opB(p, j)
			}
			if beta == 0 {
				c[i*n+j] = alpha * sum
			} else {
				c[i*n+j] = alpha*sum + beta*c[i*n+j]
			}
		}
	}
	return nil
}

// checkLinear validates the sizes of a linear layer.
func checkLinear(batch, in, out int) error {
	return checkAtLeast("linear", 1, field{"batch", batch}, field{"in", in}, field{"out", out})
}

// LinearForward computes y = x w^T + b for x (batch x in), w (out x in,
// PyTorch's layout) and b (length out, or nil for no bias). The result is
// batch x out.
func LinearForward(batch, in, out int, x, w, b []float64) ([]float64, error) {
	if err := checkLinear(batch, in, out); err != nil {
		return nil, err
	}
	if err := checkLens(lenCheck{"linear x", len(x), batch * in}, lenCheck{"linear w", len(w), out * in}); err != nil {
		return nil, err
	}
	if b != nil {
		if err := checkLen("linear b", len(b), out); err != nil {
			return nil, err
		}
	}
	y := make([]float64, batch*out)
	if err := GEMM(false, true, batch, out, in, 1, x, w, 0, y); err != nil {
		return nil, err
	}
	for i := 0; i < batch; i++ {
		for j := range b {
			y[i*out+j] += b[j]
		}
	}
	return y, nil
}

// LinearBackwardData returns dx = dy w (batch x in) for dy (batch x out)
// and w (out x in).
func LinearBackwardData(batch, in, out int, dy, w []float64) ([]float64, error) {
	if err := checkLinear(batch, in, out); err != nil {
		return nil, err
	}
	if err := checkLens(lenCheck{"linear dy", len(dy), batch * out}, lenCheck{"linear w", len(w), out * in}); err != nil {
		return nil, err
	}
	dx := make([]float64, batch*in)
	if err := GEMM(false, false, batch, in, out, 1, dy, w, 0, dx); err != nil {
		return nil, err
	}
	return dx, nil
}

// LinearBackwardWeight returns dw = dy^T x (out x in) for x (batch x in)
// and dy (batch x out).
func LinearBackwardWeight(batch, in, out int, x, dy []float64) ([]float64, error) {
	if err := checkLinear(batch, in, out); err != nil {
		return nil, err
	}
	if err := checkLens(lenCheck{"linear x", len(x), batch * in}, lenCheck{"linear dy", len(dy), batch * out}); err != nil {
		return nil, err
	}
	dw := make([]float64, out*in)
	if err := GEMM(true, false, out, in, batch, 1, dy, x, 0, dw); err != nil {
		return nil, err
	}
	return dw, nil
}

// LinearBackwardBias returns db (length out), the sum of dy
// (batch x out) over the batch.
func LinearBackwardBias(batch, out int, dy []float64) ([]float64, error) {
	if err := checkAtLeast("linear", 1, field{"batch", batch}, field{"out", out}); err != nil {
		return nil, err
	}
	if err := checkLen("linear dy", len(dy), batch*out); err != nil {
		return nil, err
	}
	return sumChannels(batch, out, 1, dy), nil
}
