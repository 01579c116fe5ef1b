package nn

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Summary is a model walked at one input size: every layer's output shape,
// parameters and FLOPs. FLOPs are per image; multiply by Batch for a batch.
type Summary struct {
	Model     string // the model's class name
	Batch     int
	Input     []int // [batch, C, H, W]
	Rows      []Row // one per layer, in forward order, the flatten included
	Params    int64 // all parameter elements
	Trainable int64 // parameter elements that are trainable
	Forward   int64 // forward FLOPs per image
	Backward  int64 // backward FLOPs per image (see the package doc)
}

// Row is one layer of a Summary.
type Row struct {
	Path      string // "features.0"; "(flatten)" for torch.flatten(x, 1)
	Type      string // "Conv2d"; "flatten" for the flatten
	Module    Module // nil for the flatten
	In, Out   []int  // per-sample input and output shapes
	Output    []int  // output shape with the batch: [batch, Out...]
	Params    int64  // parameter elements
	Trainable int64  // trainable parameter elements
	Forward   int64  // forward FLOPs per image
	Backward  int64  // backward FLOPs per image
}

// Summary walks the model at a batch x c x h x w input.
func (m *Model) Summary(batch, c, h, w int) (*Summary, error) {
	if batch < 1 {
		return nil, fmt.Errorf("batch %d: must be positive", batch)
	}
	steps, err := m.walk(c, h, w)
	if err != nil {
		return nil, err
	}
	params := map[string][2]int64{} // step path -> total, trainable
	for _, st := range steps {
		params[st.path] = [2]int64{}
	}
	for _, p := range m.Params() {
		// The step holding it: its layer, or the residual block its layer is in.
		path := p.Path
		for _, ok := params[path]; !ok && strings.Contains(path, "."); _, ok = params[path] {
			path = path[:strings.LastIndexByte(path, '.')]
		}
		v := params[path]
		v[0] += p.Numel()
		if p.Trainable {
			v[1] += p.Numel()
		}
		params[path] = v
	}
	s := &Summary{Model: m.name, Batch: batch, Input: []int{batch, c, h, w}}
	upstreamTrainable := false // whether a layer before this one has trainable parameters
	for _, st := range steps {
		r := Row{Path: st.path, Type: "flatten", Module: st.mod, In: st.in, Out: st.out,
			Output: append([]int{batch}, st.out...)}
		if st.mod != nil {
			r.Type = st.mod.Type()
			r.Forward = st.mod.FLOPs(st.in)
			p := params[st.path]
			r.Params, r.Trainable = p[0], p[1]
			if r.Trainable > 0 {
				r.Backward += r.Forward // weight gradient
			}
			if upstreamTrainable {
				r.Backward += r.Forward // input gradient
			}
			upstreamTrainable = upstreamTrainable || r.Trainable > 0
		}
		s.Params += r.Params
		s.Trainable += r.Trainable
		s.Forward += r.Forward
		s.Backward += r.Backward
		s.Rows = append(s.Rows, r)
	}
	return s, nil
}

// TrainFLOPs returns forward plus backward FLOPs per image for one training
// step (4.045 GFLOP for the reference experiment's AlexNet at 224x224).
func (s *Summary) TrainFLOPs() int64 { return s.Forward + s.Backward }

// FLOPsByType returns forward FLOPs per image by layer type ("Conv2d",
// "Linear"), leaving out types that count none.
func (s *Summary) FLOPsByType() map[string]int64 {
	by := map[string]int64{}
	for _, r := range s.Rows {
		if r.Forward > 0 {
			by[r.Type] += r.Forward
		}
	}
	return by
}

// Table returns the summary as a text table: one line per layer with its path,
// type, output shape (batch included), parameters, trainable mark, forward FLOPs
// per image and share of the total, then the totals.
func (s *Summary) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s at input %s (batch %d); FLOPs per image, a multiply-add counts 2\n\n",
		s.Model, fmtShape(s.Input), s.Batch)
	cells := [][]string{{"Layer", "Type", "Output shape", "Params", "Train", "FLOPs", "%"}}
	for _, r := range s.Rows {
		train := ""
		switch {
		case r.Params == 0:
		case r.Trainable == r.Params:
			train = "yes"
		case r.Trainable == 0:
			train = "frozen"
		default:
			train = "part"
		}
		cells = append(cells, []string{r.Path, r.Type, fmtShape(r.Output),
			dash(r.Params, commas(r.Params)), train, dash(r.Forward, human(r.Forward)), dash(r.Forward, pct(r.Forward, s.Forward))})
	}
	cells = append(cells, []string{"Total", "", "", commas(s.Params), "", human(s.Forward), pct(s.Forward, s.Forward)})
	writeTable(&b, cells, []bool{false, false, false, true, false, true, true})
	by := s.FLOPsByType()
	types := make([]string, 0, len(by))
	for t := range by {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool { return by[types[i]] > by[types[j]] })
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = fmt.Sprintf("%s %.3f", t, gflop(by[t]))
	}
	fmt.Fprintf(&b, "\nParameters: %s total, %s trainable, %s frozen\n",
		commas(s.Params), commas(s.Trainable), commas(s.Params-s.Trainable))
	fmt.Fprintf(&b, "Forward per image: %.3f GFLOP (%s)\n", gflop(s.Forward), strings.Join(parts, ", "))
	fmt.Fprintf(&b, "Forward + backward per image: %.3f GFLOP (backward %.3f)\n", gflop(s.TrainFLOPs()), gflop(s.Backward))
	fmt.Fprintf(&b, "Per batch of %d: forward %.3f GFLOP, forward + backward %.3f GFLOP\n",
		s.Batch, gflop(s.Forward*int64(s.Batch)), gflop(s.TrainFLOPs()*int64(s.Batch)))
	return b.String()
}

// writeTable writes rows of cells in columns two spaces apart, right-aligning
// the columns marked in right, with a rule under the header and above the last row.
func writeTable(b *strings.Builder, cells [][]string, right []bool) {
	wd := make([]int, len(right))
	for _, row := range cells {
		for i, c := range row {
			wd[i] = max(wd[i], len(c))
		}
	}
	total := 2 * (len(wd) - 1)
	for _, w := range wd {
		total += w
	}
	for n, row := range cells {
		if n == len(cells)-1 {
			b.WriteString(strings.Repeat("-", total) + "\n")
		}
		var line strings.Builder
		for i, c := range row {
			if i > 0 {
				line.WriteString("  ")
			}
			if right[i] {
				fmt.Fprintf(&line, "%*s", wd[i], c)
			} else {
				fmt.Fprintf(&line, "%-*s", wd[i], c)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
		if n == 0 {
			b.WriteString(strings.Repeat("-", total) + "\n")
		}
	}
}

func gflop(n int64) float64 { return float64(n) / 1e9 }

// human prints FLOPs with an SI prefix and three decimals: "140.554M".
func human(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.3fG", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.3fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.3fK", float64(n)/1e3)
	}
	return strconv.FormatInt(n, 10)
}

func pct(n, total int64) string {
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(total))
}

// dash returns s, or "-" when n is 0.
func dash(n int64, s string) string {
	if n == 0 {
		return "-"
	}
	return s
}

// commas prints an integer with thousands separators: 44,428,106.
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
