package bench

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"vktrain/layers"
	"vktrain/train/weights"
	"vktrain/vk"
)

// newNetwork lays the model out for batch and loads sd into it.
func (b *bencher) newNetwork(batch int, train bool, sd *weights.StateDict) (*layers.Network, error) {
	ncfg := layers.NetworkConfig{
		Batch: batch, Input: b.input(), Train: train, Seed: b.cfg.Seed,
		SGD: layers.SGDConfig{LR: 0.001, Momentum: 0.9}, ConvAlgo: b.cfg.ConvAlgo,
	}
	if b.cfg.Tune != nil {
		choices, err := b.cfg.Tune(ncfg)
		if err != nil {
			return nil, fmt.Errorf("bench: batch %d: %w", batch, err)
		}
		ncfg.ConvChoices, ncfg.GEMMChoices = choices.Conv, choices.GEMM
		if train {
			b.tuned = choices
		}
	}
	net, err := layers.NewNetwork(b.rt, b.cfg.Model, ncfg)
	if err != nil {
		return nil, fmt.Errorf("bench: batch %d: %w", batch, err)
	}
	if _, _, err := net.LoadState(sd, true); err != nil {
		net.Close()
		return nil, fmt.Errorf("bench: loading parameters: %w", err)
	}
	return net, nil
}

// batches returns two random batches for net.
func (b *bencher) batches(net *layers.Network) [2]layers.Batch {
	rng := rand.New(rand.NewPCG(b.cfg.Seed, 7))
	rb := net.Config().Input.RecordBytes()
	return [2]layers.Batch{
		randomBatch(rng, net.Config().Batch, rb, net.Classes(), 1),
		randomBatch(rng, net.Config().Batch, rb, net.Classes(), 2),
	}
}

// selected reports whether the kernel called name passes the filter.
func (b *bencher) selected(name string) bool {
	if strings.TrimSpace(b.cfg.Filter) == "" {
		return true
	}
	for _, f := range strings.Split(b.cfg.Filter, ",") {
		if f = strings.TrimSpace(f); f != "" && strings.Contains(name, f) {
			return true
		}
	}
	return false
}

// partName is a part's kernel name.
func partName(p layers.StepPart) string { return p.Layer + " " + p.Pass }

// recordPart records p alone, as the network computes it, into a new timed stream.
func (b *bencher) recordPart(p layers.StepPart) (*vk.Stream, error) {
	algo := layers.ConvIm2col
	if pass, ok := p.ConvPass(); ok {
		algo = p.Conv.Algo[pass]
	}
	return p.RecordWay(b.dev, partName(p), algo, layers.GEMMAuto)
}

// training benchmarks the whole training step and each of its parts.
func (b *bencher) training(rep *Report, sd *weights.StateDict) error {
	net, err := b.newNetwork(b.cfg.Batch, true, sd)
	if err != nil {
		return err
	}
	defer net.Close()
	bt := b.batches(net)

	// The whole step, its per-dispatch timings kept for attribution.
	b.logf("training step, batch %d", b.cfg.Batch)
	var stepTimings [][]vk.Timing
	n := 0
	times, err := b.repeat(func() (time.Duration, error) {
		t, total, err := net.RunStepTimed(layers.TrainStep, bt[n%2])
		n++
		stepTimings = append(stepTimings, t)
		return total, err
	})
	if err != nil {
		return fmt.Errorf("bench: training step: %w", err)
	}
	stepTimings = stepTimings[1:] // the warm-up
	st := stats(times)
	batch := b.cfg.Batch
	rep.Step = Step{Batch: batch, Runs: len(times), MedianMS: ms(st.median), MinMS: ms(st.min), MaxMS: ms(st.max),
		ImagesPerS: float64(batch) / st.median.Seconds(), Layers: []Layer{}}
	if len(stepTimings) > 0 {
		rep.Step.Commands = len(stepTimings[0])
	}

	// Host in the loop: steps submitted back to back.
	k := max(len(times), 4)
	start := time.Now()
	for i := range k {
		bb := bt[i%2]
		bb.Step = uint64(10 + i)
		if _, err := net.Submit(layers.TrainStep, bb); err != nil {
			return fmt.Errorf("bench: training step: %w", err)
		}
	}
	for {
		res, err := net.Flush()
		if err != nil {
			return fmt.Errorf("bench: training step: %w", err)
		}
		if res == nil {
			break
		}
	}
	rep.Step.WallImagesPerS = float64(k*batch) / time.Since(start).Seconds()

	parts, err := net.StepParts(layers.TrainStep)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return b.parts(rep, parts, stepTimings)
}

// parts times each part alone (those the filter selects, with their variants)
// and attributes the step's timings to them.
func (b *bencher) parts(rep *Report, parts []layers.StepPart, stepTimings [][]vk.Timing) error {
	// Where the step's commands come from: each in-step part's label run.
	var labels []string
	first := make([]int, len(parts))
	count := make([]int, len(parts))
	for i, p := range parts {
		if !p.InStep {
			continue
		}
		s, err := b.recordPart(p)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", partName(p), err)
		}
		first[i] = len(labels)
		for _, t := range s.Timings(nil) {
			labels = append(labels, t.Label)
		}
		count[i] = len(labels) - first[i]
		s.Close()
	}
	attributed := len(stepTimings) > 0
	for _, t := range stepTimings {
		if len(t) != len(labels) || !slices.EqualFunc(t, labels, func(a vk.Timing, l string) bool { return a.Label == l }) {
			attributed = false
		}
	}
	if !attributed {
		b.logf("the step's commands do not match its parts: no attribution to layers")
	}
	stepMS := make([]float64, len(parts))
	if attributed {
		for i, p := range parts {
			if !p.InStep {
				continue
			}
			per := make([]time.Duration, len(stepTimings))
			for r, t := range stepTimings {
				for _, x := range t[first[i] : first[i]+count[i]] {
					per[r] += x.Time
				}
			}
			stepMS[i] = ms(stats(per).median)
		}
		rep.Step.Layers = layerTable(parts, stepMS, rep.Step.MedianMS)
	}
	for i, p := range parts {
		if p.GEMMLike && p.InStep {
			rep.Step.FLOPs += p.FLOPs
		}
		if p.InStep {
			rep.Step.TrafficBytes += p.Traffic
		}
		if !b.selected(partName(p)) {
			continue
		}
		// The chosen way first, then (with --variants) the other GEMM variants
		// and, for a convolution, every other algorithm that applies to it.
		type way struct {
			gemm layers.GEMMVariant
			algo layers.ConvAlgo
		}
		chosen := way{gemm: b.rt.Variant}
		if p.GEMM != nil {
			chosen.gemm = b.rt.GEMMVariantFor(*p.GEMM)
		}
		gemms, algos := []layers.GEMMVariant{chosen.gemm}, []layers.ConvAlgo{}
		pass, isConv := p.ConvPass()
		if isConv {
			chosen.algo = p.Conv.Algo[pass]
			algos = append(algos, chosen.algo)
		}
		tuned := false // the tuner decided this pass
		if isConv {
			_, tuned = b.tuned.Conv[p.Layer]
		} else if pass, err := layers.ParseConvPass(p.Pass); err == nil && p.GEMM != nil {
			tuned = b.tuned.GEMM[p.Layer][pass] != layers.GEMMAuto
		}
		if b.cfg.Variants && p.Variant {
			for _, v := range layers.GEMMVariants {
				if v != chosen.gemm {
					gemms = append(gemms, v)
				}
			}
		}
		if b.cfg.Variants && isConv {
			for _, a := range layers.ConvAlgos {
				if a != chosen.algo && p.Conv.AlgoApplies(a) {
					algos = append(algos, a)
				}
			}
		}
		ways := []way{}
		for _, g := range gemms {
			if len(algos) == 0 {
				ways = append(ways, way{gemm: g})
			}
			for _, a := range algos {
				ways = append(ways, way{gemm: g, algo: a})
			}
		}
		for j, w := range ways {
			kr := Kernel{Name: partName(p), Layer: p.Layer, Type: p.Type, Pass: p.Pass, Chosen: j == 0, Shape: p.Shape, InStep: p.InStep && j == 0}
			if p.Variant {
				kr.Variant = w.gemm.String()
			}
			if isConv {
				kr.Algo = w.algo.String()
			}
			kr.Tuned = tuned && w == chosen
			var tags []string
			if w.gemm != chosen.gemm {
				tags = append(tags, w.gemm.String())
			}
			if isConv && w.algo != chosen.algo {
				tags = append(tags, w.algo.String())
			}
			if len(tags) > 0 {
				kr.Name += " [" + strings.Join(tags, ", ") + "]"
			}
			b.logf("%s", kr.Name)
			times, err := b.timePart(p, w.gemm, w.algo)
			if err != nil {
				if j == 0 {
					return fmt.Errorf("bench: %s: %w", kr.Name, err)
				}
				rep.Skipped = append(rep.Skipped, Skip{Name: kr.Name, Reason: err.Error()})
				continue
			}
			st := stats(times)
			kr.Runs, kr.MedianMS, kr.MinMS, kr.MaxMS = len(times), ms(st.median), ms(st.min), ms(st.max)
			sec := st.median.Seconds()
			if p.GEMMLike {
				kr.FLOPs, kr.GFLOPS = p.FLOPs, p.FLOPs/sec/1e9
				kr.PctPeak = 100 * kr.GFLOPS / rep.Peaks.FMAGFLOPS
			} else {
				kr.Bytes, kr.GBS = p.Bytes, p.Bytes/sec/1e9
				kr.PctPeak = 100 * kr.GBS / rep.Peaks.CopyGBS
			}
			if kr.InStep && attributed {
				kr.StepMS = stepMS[i]
				kr.Share = 100 * stepMS[i] / rep.Step.MedianMS
			}
			rep.Kernels = append(rep.Kernels, kr)
		}
	}
	if rep.Step.MedianMS > 0 {
		rep.Step.GFLOPS = rep.Step.FLOPs / (rep.Step.MedianMS / 1e3) / 1e9
		if rep.Peaks.CopyGBS > 0 {
			rep.Step.TrafficMS = rep.Step.TrafficBytes / (rep.Peaks.CopyGBS * 1e9) * 1e3
		}
	}
	return nil
}

// timePart records p under GEMM variant v (the part's own choice where it
// has one, else the runtime's: the SGD pass) and, for a convolution,
// algorithm algo, and times it.
func (b *bencher) timePart(p layers.StepPart, v layers.GEMMVariant, algo layers.ConvAlgo) ([]time.Duration, error) {
	if p.GEMM == nil { // the SGD update follows the runtime's variant
		defer func(chosen layers.GEMMVariant) { b.rt.Variant = chosen }(b.rt.Variant)
		b.rt.Variant = v
	}
	s, err := p.RecordWay(b.dev, partName(p), algo, v)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return b.repeat(func() (time.Duration, error) {
		err := s.Run()
		return s.Total(), err
	})
}

// layerTable sums the step's time by layer, in order of first appearance.
func layerTable(parts []layers.StepPart, stepMS []float64, total float64) []Layer {
	out := []Layer{}
	at := map[string]int{}
	for i, p := range parts {
		if !p.InStep {
			continue
		}
		j, ok := at[p.Layer]
		if !ok {
			j = len(out)
			at[p.Layer] = j
			out = append(out, Layer{Layer: p.Layer, Type: p.Type})
		}
		l := &out[j]
		if l.Type == "Fill" {
			l.Type = p.Type
		}
		if strings.HasPrefix(p.Pass, "forward") || p.Pass == "reset" {
			l.ForwardMS += stepMS[i]
		} else {
			l.BackwardMS += stepMS[i]
		}
		l.TotalMS += stepMS[i]
	}
	for i := range out {
		if total > 0 {
			out[i].Share = 100 * out[i].TotalMS / total
		}
	}
	return out
}

// inference times the evaluation step at batch 1 and at the configured batch.
func (b *bencher) inference(rep *Report, sd *weights.StateDict) error {
	rep.Inference.Batch = b.cfg.Batch
	sizes := []int{1}
	if b.cfg.Batch > 1 {
		sizes = append(sizes, b.cfg.Batch)
	}
	for _, batch := range sizes {
		b.logf("inference, batch %d", batch)
		net, err := b.newNetwork(batch, false, sd)
		if err != nil {
			return err
		}
		bt := b.batches(net)
		n := 0
		times, err := b.repeat(func() (time.Duration, error) {
			_, total, err := net.RunStepTimed(layers.EvalStep, bt[n%2])
			n++
			return total, err
		})
		net.Close()
		if err != nil {
			return fmt.Errorf("bench: inference at batch %d: %w", batch, err)
		}
		med := stats(times).median
		if batch == 1 {
			rep.Inference.Batch1MS, rep.Inference.Batch1ImagesPerS = ms(med), 1/med.Seconds()
		}
		if batch == b.cfg.Batch {
			rep.Inference.BatchMS, rep.Inference.BatchImagesPerS = ms(med), float64(batch)/med.Seconds()
		}
	}
	return nil
}
