package layers

import (
	"slices"
	"strings"
	"testing"
)

// TestRecordWay records a convolution pass and a linear pass by ways other
// than the network's own: the stream holds that way's kernels, the part's
// choices are as before afterwards, and the part's own way records exactly
// what the step records for it.
func TestRecordWay(t *testing.T) {
	r := openRuntime(t)
	net, err := NewNetwork(r, narrowAlexNet(t), NetworkConfig{
		Batch: 1, Input: imageNetInput(73, 64), Train: true, Seed: 1,
		SGD: SGDConfig{LR: 0.01, Momentum: 0.9}, ConvAlgo: ConvIm2col,
		UnfusedSGD: true, // a linear layer's input gradient as a GEMM pass of its own (fused, it has none)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	parts, err := net.StepParts(TrainStep)
	if err != nil {
		t.Fatal(err)
	}
	find := func(name string) StepPart {
		for _, p := range parts {
			if p.Layer+" "+p.Pass == name {
				return p
			}
		}
		t.Fatalf("no part %q", name)
		return StepPart{}
	}
	labels := func(p StepPart, algo ConvAlgo, v GEMMVariant) []string {
		t.Helper()
		s, err := p.RecordWay(r.Dev, "test", algo, v)
		if err != nil {
			t.Fatalf("%s %s: %v", p.Layer, p.Pass, err)
		}
		defer s.Close()
		if err := s.Run(); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tm := range s.Timings(nil) {
			out = append(out, tm.Label)
		}
		return out
	}
	has := func(ls []string, sub string) bool {
		return slices.ContainsFunc(ls, func(l string) bool { return strings.Contains(l, sub) })
	}
	conv := find("features.10 forward")
	own := labels(conv, ConvIm2col, GEMMAuto)
	if has(own, "winograd") || !has(own, "im2col") {
		t.Errorf("features.10 forward by its own way (im2col): %v", own)
	}
	other := GEMMTiled
	if r.GEMMVariantFor(*conv.GEMM) == GEMMTiled {
		other = GEMMTexel
	}
	wino := labels(conv, ConvWinograd4, other)
	if !has(wino, "winograd") || has(wino, "im2col") || !has(wino, "gemm_"+other.String()) {
		t.Errorf("features.10 forward by winograd4 on %s: %v", other, wino)
	}
	if conv.Conv.Algo[PassForward] != ConvIm2col || *conv.GEMM != GEMMAuto {
		t.Errorf("features.10 after RecordWay: algo %v, GEMM %v; want its own (im2col, auto)", conv.Conv.Algo, *conv.GEMM)
	}
	lin := find("classifier.1 backward-data")
	if got := labels(lin, ConvIm2col, other); !has(got, "gemm_"+other.String()) {
		t.Errorf("classifier.1 backward-data on %s: %v", other, got)
	}
	if *lin.GEMM != GEMMAuto {
		t.Errorf("classifier.1 after RecordWay: GEMM %v; want auto", *lin.GEMM)
	}
	// The own way records the step's commands for the part: recording it
	// again after the other ways gives the same labels.
	if again := labels(conv, ConvIm2col, GEMMAuto); !slices.Equal(again, own) {
		t.Errorf("features.10 forward recorded again: %v, first %v", again, own)
	}
}
