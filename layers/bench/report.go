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
// old and new medians and the speedup old/new (above 1: cur is faster), then the
// same by layer (sums of the kernels both have), for the whole step and for
// inference.
func Compare(w io.Writer, old, cur *Report) error {
	fmt.Fprintf(w, "comparing %s on %s (old) with %s on %s (new); speedup = old time / new time\n\n",
		old.Tool, old.Device.Name, cur.Tool, cur.Device.Name)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kernel\told ms\tnew ms\tspeedup\t\t")
	byName := map[string]Kernel{}
	for _, k := range old.Kernels {
		byName[k.Name] = k
	}
	type pair struct{ old, cur float64 }
	layers := map[string]*pair{}
	var order []string
	matched := 0
	for _, k := range cur.Kernels {
		o, ok := byName[k.Name]
		if !ok {
			continue
		}
		matched++
		x := ratio(o.MedianMS, k.MedianMS)
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.2fx\t%s\t\n", k.Name, o.MedianMS, k.MedianMS, x, verdict(x))
		if !k.Chosen {
			continue
		}
		p := layers[k.Layer]
		if p == nil {
			p = &pair{}
			layers[k.Layer] = p
			order = append(order, k.Layer)
		}
		p.old += o.MedianMS
		p.cur += k.MedianMS
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var missing []string
	for _, k := range cur.Kernels {
		if _, ok := byName[k.Name]; !ok {
			missing = append(missing, k.Name)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(w, "only in the new run: %s\n", strings.Join(missing, ", "))
	}
	if matched == 0 {
		fmt.Fprintln(w, "no kernel names in common")
	}
	if len(order) > 0 {
		fmt.Fprintln(w, "\nby layer (sum of the kernels both runs have):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "layer\told ms\tnew ms\tspeedup\t\t")
		for _, l := range order {
			p := layers[l]
			x := ratio(p.old, p.cur)
			fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.2fx\t%s\t\n", l, p.old, p.cur, x, verdict(x))
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
