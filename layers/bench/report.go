package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"vktrain/viz"
)

// WriteTable prints the report as tables: the peaks, every kernel, the step by
// layer, the whole step and inference.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "%s %s (%s) on %s (%s; %s)\n", r.Tool, r.Version, short(r.Revision), r.Device.Name, r.Device.Type, r.Device.Driver)
	fmt.Fprintf(w, "image size %d, batch %d", r.Config.ImageSize, r.Config.Batch)
	if r.Config.GEMMVariant != "" {
		fmt.Fprintf(w, ", GEMM variant %s", r.Config.GEMMVariant)
	}
	fmt.Fprintf(w, "\npeaks: FMA %.1f GFLOP/s (%s); copy %.1f GB/s (%s)\n\n", r.Peaks.FMAGFLOPS, r.Peaks.FMAKernel, r.Peaks.CopyGBS, r.Peaks.CopyKernel)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kernel\ttype\truns\tmedian ms\tmin ms\tmax ms\trate\t% peak\tin step ms\t% step\tshape\t")
	for _, k := range r.Kernels {
		rate := fmt.Sprintf("%.2f GB/s", k.GBS)
		if k.GFLOPS > 0 {
			rate = fmt.Sprintf("%.2f GFLOP/s", k.GFLOPS)
		}
		step, share := "-", "-"
		if k.StepMS > 0 {
			step, share = fmt.Sprintf("%.3f", k.StepMS), fmt.Sprintf("%.1f", k.Share)
		}
		name := k.Name
		if k.Tuned {
			name += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.3f\t%.3f\t%.3f\t%s\t%.1f\t%s\t%s\t%s\t\n",
			name, k.Type, k.Runs, k.MedianMS, k.MinMS, k.MaxMS, rate, k.PctPeak, step, share, k.Shape)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, k := range r.Kernels {
		if k.Tuned {
			fmt.Fprintln(w, "* the algorithm the tuner picked for this pass on this device")
			break
		}
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "skipped %s: %s\n", s.Name, s.Reason)
	}
	if len(r.Step.Layers) > 0 {
		fmt.Fprintf(w, "\ntraining step by layer (GPU timestamps inside the recorded step):\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "layer\ttype\tforward ms\tbackward ms\ttotal ms\t% step\t")
		for _, l := range r.Step.Layers {
			fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3f\t%.3f\t%.1f\t\n", l.Layer, l.Type, l.ForwardMS, l.BackwardMS, l.TotalMS, l.Share)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	s := r.Step
	commands := ""
	if s.Commands > 0 {
		commands = fmt.Sprintf("; %d commands", s.Commands)
	}
	fmt.Fprintf(w, "\ntraining step, batch %d: median %.2f ms (min %.2f, max %.2f, %d runs): %.1f images/s, %.1f GFLOP/s; host in the loop %.1f images/s%s\n",
		s.Batch, s.MedianMS, s.MinMS, s.MaxMS, s.Runs, s.ImagesPerS, s.GFLOPS, s.WallImagesPerS, commands)
	if s.TrafficBytes > 0 && s.MedianMS > 0 {
		fmt.Fprintf(w, "the step moves at least %.0f MB (each operand read once, each result written once): %.1f ms at the copy peak, %.0f%% of the step\n",
			s.TrafficBytes/1e6, s.TrafficMS, 100*s.TrafficMS/s.MedianMS)
	}
	in := r.Inference
	_, err := fmt.Fprintf(w, "inference: batch 1 %.2f ms (%.1f images/s); batch %d %.2f ms (%.1f images/s)\n",
		in.Batch1MS, in.Batch1ImagesPerS, in.Batch, in.BatchMS, in.BatchImagesPerS)
	return err
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// ratio is old over new: above 1 the new run is faster.
func ratio(old, cur float64) float64 {
	if old <= 0 || cur <= 0 {
		return math.NaN()
	}
	return old / cur
}

func verdict(x float64) string {
	switch {
	case math.IsNaN(x):
		return ""
	case x >= 1.05:
		return "faster"
	case x <= 1/1.05:
		return "SLOWER"
	}
	return "same"
}

// Compare prints, for each kernel of cur that old also has (matched by name),
// old and new medians and the speedup old/new (above 1: cur is faster), and
// the kernels only one run has (a fused or split pass); then the same by layer:
// the step's GPU time inside the recorded step where both reports attribute
// it, otherwise each run's sum of its own chosen kernels of the layer (so a
// pass fused away counts in the old run's time and not the new one's); then
// the whole step and inference.
func Compare(w io.Writer, old, cur *Report) error {
	fmt.Fprintf(w, "comparing %s on %s (old) with %s on %s (new); speedup = old time / new time\n\n",
		old.Tool, old.Device.Name, cur.Tool, cur.Device.Name)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kernel\told ms\tnew ms\tspeedup\t\t")
	oldNames, curNames := map[string]Kernel{}, map[string]bool{}
	for _, k := range old.Kernels {
		oldNames[k.Name] = k
	}
	for _, k := range cur.Kernels {
		curNames[k.Name] = true
	}
	matched := 0
	for _, k := range cur.Kernels {
		o, ok := oldNames[k.Name]
		if !ok {
			continue
		}
		matched++
		x := ratio(o.MedianMS, k.MedianMS)
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.2fx\t%s\t\n", k.Name, o.MedianMS, k.MedianMS, x, verdict(x))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var onlyOld, onlyNew []string
	for _, k := range old.Kernels {
		if !curNames[k.Name] {
			onlyOld = append(onlyOld, k.Name)
		}
	}
	for _, k := range cur.Kernels {
		if _, ok := oldNames[k.Name]; !ok {
			onlyNew = append(onlyNew, k.Name)
		}
	}
	if len(onlyOld) > 0 {
		fmt.Fprintf(w, "only in the old run: %s\n", strings.Join(onlyOld, ", "))
	}
	if len(onlyNew) > 0 {
		fmt.Fprintf(w, "only in the new run: %s\n", strings.Join(onlyNew, ", "))
	}
	if matched == 0 {
		fmt.Fprintln(w, "no kernel names in common")
	}
	title, order, times := layerTimes(old, cur)
	if len(order) > 0 {
		fmt.Fprintf(w, "\nby layer (%s):\n", title)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "layer\told ms\tnew ms\tspeedup\t\t")
		for _, l := range order {
			p := times[l]
			x := ratio(p[0], p[1])
			fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.2fx\t%s\t\n", l, p[0], p[1], x, verdict(x))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "whole\told\tnew\tspeedup\t\t")
	row := func(name string, o, c float64, unit string, higherBetter bool) {
		x := ratio(o, c)
		if higherBetter {
			x = ratio(c, o)
		}
		fmt.Fprintf(tw, "%s\t%.2f %s\t%.2f %s\t%.2fx\t%s\t\n", name, o, unit, c, unit, x, verdict(x))
	}
	row(fmt.Sprintf("training step (batch %d/%d)", old.Step.Batch, cur.Step.Batch), old.Step.MedianMS, cur.Step.MedianMS, "ms", false)
	row("training images/s", old.Step.ImagesPerS, cur.Step.ImagesPerS, "img/s", true)
	row("inference batch 1", old.Inference.Batch1MS, cur.Inference.Batch1MS, "ms", false)
	row(fmt.Sprintf("inference batch %d/%d", old.Inference.Batch, cur.Inference.Batch), old.Inference.BatchMS, cur.Inference.BatchMS, "ms", false)
	if old.Step.Batch != cur.Step.Batch || old.Config.ImageSize != cur.Config.ImageSize {
		fmt.Fprintf(tw, "note: the runs differ in batch or image size (%d/%d, %d/%d)\t\t\t\t\t\n", old.Step.Batch, cur.Step.Batch, old.Config.ImageSize, cur.Config.ImageSize)
	}
	return tw.Flush()
}

// layerTimes is each layer's old and new time, in cur's order, for the layers
// both runs have: the step's attribution to layers where both reports have
// one, otherwise each run's sum of its chosen kernels of the layer. title
// says which.
func layerTimes(old, cur *Report) (title string, order []string, times map[string][2]float64) {
	byStep := len(old.Step.Layers) > 0 && len(cur.Step.Layers) > 0
	sums := func(r *Report) (map[string]float64, []string) {
		t, seen := map[string]float64{}, []string{}
		add := func(layer string, ms float64) {
			if _, ok := t[layer]; !ok {
				seen = append(seen, layer)
			}
			t[layer] += ms
		}
		if byStep {
			for _, l := range r.Step.Layers {
				add(l.Layer, l.TotalMS)
			}
		} else {
			for _, k := range r.Kernels {
				if k.Chosen {
					add(k.Layer, k.MedianMS)
				}
			}
		}
		return t, seen
	}
	title = "each run's chosen kernels of the layer"
	if byStep {
		title = "GPU time inside the recorded step"
	}
	o, _ := sums(old)
	c, seen := sums(cur)
	times = map[string][2]float64{}
	for _, l := range seen {
		if ov, ok := o[l]; ok {
			order = append(order, l)
			times[l] = [2]float64{ov, c[l]}
		}
	}
	return title, order, times
}

// Series returns the report's kernels as a chart series of median
// milliseconds (the chosen variants only).
func (r *Report) Series(name string) viz.BenchSeries {
	s := viz.BenchSeries{Name: name, Unit: "ms"}
	for _, k := range r.Kernels {
		if k.Chosen {
			s.Kernels = append(s.Kernels, k.Name)
			s.Values = append(s.Values, k.MedianMS)
		}
	}
	return s
}

// SaveChart draws the reports' kernels (the first report's order) as one series
// each into a PNG at path.
func SaveChart(path string, reports ...*Report) error {
	var series []viz.BenchSeries
	for _, r := range reports {
		series = append(series, r.Series(fmt.Sprintf("%s, %s", r.Tool, r.Device.Name)))
	}
	p, err := viz.BenchChart(series)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	w, h := viz.BenchChartSize(series)
	if err := viz.Save(p, path, w, h); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}
