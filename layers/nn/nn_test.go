package nn

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// golden is testdata/alexnet.json, written by testdata/gen_golden.py.
type golden struct {
	Torch            string              `json:"torch"`
	StateDict        []namedShape        `json:"state_dict"`
	StateDictSurgery []namedShape        `json:"state_dict_surgery"`
	TrainableSurgery int64               `json:"trainable_surgery"`
	Shapes224        []namedShape        `json:"shapes_224"`
	Shapes64         []namedShape        `json:"shapes_64"`
	Modules          [][]json.RawMessage `json:"modules"`
}

// namedShape is a JSON pair ["name", [shape]].
type namedShape struct {
	Name  string
	Shape []int
}

func (n *namedShape) UnmarshalJSON(b []byte) error {
	var pair []json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	if len(pair) != 2 {
		return fmt.Errorf("want [name, shape], got %s", b)
	}
	if err := json.Unmarshal(pair[0], &n.Name); err != nil {
		return err
	}
	return json.Unmarshal(pair[1], &n.Shape)
}

func readGolden(t *testing.T) *golden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "alexnet.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(g.Torch, "1.13") {
		t.Fatalf("golden from torch %s, want 1.13", g.Torch)
	}
	return &g
}

func readText(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// surgeryModel is the reference experiment's model.
func surgeryModel(t *testing.T) *Model {
	t.Helper()
	m := AlexNet(1000)
	if err := m.ReferenceSurgery(10); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestStringMatchesTorch(t *testing.T) {
	m := AlexNet(1000)
	if got, want := m.String()+"\n", readText(t, "alexnet.txt"); got != want {
		t.Errorf("AlexNet(1000).String():\n%s\nwant (torch):\n%s", got, want)
	}
	// The reference's surgery, done by hand.
	if err := m.Replace("classifier.4", NewLinear(4096, 1024)); err != nil {
		t.Fatal(err)
	}
	if err := m.Replace("classifier.6", NewLinear(1024, 10)); err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(3, 224, 224); err != nil {
		t.Fatal(err)
	}
	want := readText(t, "alexnet_surgery.txt")
	if got := m.String() + "\n"; got != want {
		t.Errorf("after surgery:\n%s\nwant (torch):\n%s", got, want)
	}
	if got := surgeryModel(t).String() + "\n"; got != want {
		t.Errorf("ReferenceSurgery:\n%s\nwant (torch):\n%s", got, want)
	}
}

func TestStateDictMatchesTorch(t *testing.T) {
	g := readGolden(t)
	check := func(name string, m *Model, want []namedShape) {
		t.Helper()
		specs := m.Specs()
		if len(specs) != len(want) {
			t.Fatalf("%s: %d params, torch has %d", name, len(specs), len(want))
		}
		for i, s := range specs {
			if s.Name != want[i].Name || !slices.Equal(s.Shape, want[i].Shape) {
				t.Errorf("%s: param %d is %s %v, torch has %s %v", name, i, s.Name, s.Shape, want[i].Name, want[i].Shape)
			}
		}
	}
	check("alexnet", AlexNet(1000), g.StateDict)
	m := surgeryModel(t)
	check("surgery", m, g.StateDictSurgery)
	var n int64
	for _, p := range m.Params() {
		if !p.Trainable {
			t.Errorf("%s not trainable", p.Name)
		}
		n += p.Numel()
	}
	if n != g.TrainableSurgery || n != 44_428_106 {
		t.Errorf("trainable %d, torch %d, want 44,428,106", n, g.TrainableSurgery)
	}
}

func TestShapesMatchTorch(t *testing.T) {
	g := readGolden(t)
	m := surgeryModel(t)
	for size, want := range map[int][]namedShape{224: g.Shapes224, 64: g.Shapes64} {
		s, err := m.Summary(1, 3, size, size)
		if err != nil {
			t.Fatal(err)
		}
		var got []namedShape
		for _, r := range s.Rows {
			if r.Module != nil {
				got = append(got, namedShape{r.Path, r.Output})
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%d: %d layers, torch %d", size, len(got), len(want))
		}
		for i := range got {
			if got[i].Name != want[i].Name || !slices.Equal(got[i].Shape, want[i].Shape) {
				t.Errorf("%d: %s %v, torch %s %v", size, got[i].Name, got[i].Shape, want[i].Name, want[i].Shape)
			}
		}
	}
}

func TestModulesMatchTorch(t *testing.T) {
	g := readGolden(t)
	mods := []Module{
		&Conv2d{InChannels: 3, OutChannels: 8, KernelSize: [2]int{3, 3}, Stride: [2]int{1, 1}, Dilation: [2]int{1, 1}, Groups: 1, Bias: true},
		&Conv2d{InChannels: 4, OutChannels: 8, KernelSize: [2]int{3, 5}, Stride: [2]int{2, 1}, Padding: [2]int{1, 2}, Dilation: [2]int{2, 1}, Groups: 2},
		NewConv2d(6, 6, 7, 3, 0),
		NewMaxPool2d(3, 2),
		&MaxPool2d{KernelSize: 3, Stride: 2, Dilation: 1, CeilMode: true},
		&MaxPool2d{KernelSize: 3, Stride: 2, Padding: 1, Dilation: 1, CeilMode: true},
		&MaxPool2d{KernelSize: 2, Stride: 3, Padding: 1, Dilation: 2, CeilMode: true},
		&MaxPool2d{KernelSize: 4, Stride: 1, Padding: 2, Dilation: 1},
		NewAdaptiveAvgPool2d(3, 4),
		NewReLU(false),
		NewDropout(0.25),
		NewDropout(0.5),
		&Linear{InFeatures: 7, OutFeatures: 3},
	}
	if len(mods) != len(g.Modules) {
		t.Fatalf("%d modules here, %d in the golden", len(mods), len(g.Modules))
	}
	for i, m := range mods {
		var repr string
		var in, out []int
		if err := errors.Join(json.Unmarshal(g.Modules[i][0], &repr), json.Unmarshal(g.Modules[i][1], &in),
			json.Unmarshal(g.Modules[i][2], &out)); err != nil {
			t.Fatal(err)
		}
		if m.String() != repr {
			t.Errorf("module %d: %s, torch %s", i, m, repr)
		}
		got, err := m.OutShape(in)
		if err != nil || !slices.Equal(got, out) {
			t.Errorf("%s on %v: %v, %v; torch %v", m, in, got, err, out)
		}
	}
}

func TestFLOPsAndParams(t *testing.T) {
	m := surgeryModel(t)
	s, err := m.Summary(4, 3, 224, 224)
	if err != nil {
		t.Fatal(err)
	}
	by := s.FLOPsByType()
	for _, c := range []struct {
		what string
		got  int64
		want string
	}{
		{"forward", s.Forward, "1.395"},
		{"conv", by["Conv2d"], "1.311"},
		{"linear", by["Linear"], "0.084"},
		{"train", s.TrainFLOPs(), "4.045"},
	} {
		if got := fmt.Sprintf("%.3f", gflop(c.got)); got != c.want {
			t.Errorf("%s: %s GFLOP, want %s", c.what, got, c.want)
		}
	}
	// Exact: conv multiply-adds 70,276,800 + 223,948,800 + 112,140,288 +
	// 149,520,384 + 99,680,256; linear 9216*4096 + 4096*1024 + 1024*10.
	if s.Forward != 1_395_039_616 {
		t.Errorf("forward %d FLOP, want 1,395,039,616", s.Forward)
	}
	if want := 3*s.Forward - 2*70_276_800; s.TrainFLOPs() != want {
		t.Errorf("train %d FLOP, want %d (3x forward less conv1's input gradient)", s.TrainFLOPs(), want)
	}
	macs := map[string]int64{"features.0": 70_276_800, "features.3": 223_948_800, "features.6": 112_140_288,
		"features.8": 149_520_384, "features.10": 99_680_256}
	for _, r := range s.Rows {
		if want, ok := macs[r.Path]; ok && r.Forward != 2*want {
			t.Errorf("%s: %d FLOP, want %d", r.Path, r.Forward, 2*want)
		}
	}
	if s.Params != 44_428_106 || s.Trainable != 44_428_106 {
		t.Errorf("params %d, trainable %d, want 44,428,106", s.Params, s.Trainable)
	}

	s64, err := m.Summary(1, 3, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%.3f", gflop(s64.Forward)); got != "0.163" {
		t.Errorf("forward at 64: %s GFLOP, want 0.163", got)
	}
	if r := s64.Rows[12]; r.Path != "features.12" || !slices.Equal(r.Out, []int{256, 1, 1}) {
		t.Errorf("at 64, %s ends at %v, want features.12 [256 1 1]", r.Path, r.Out)
	}
	// Unmodified AlexNet: torchvision's 61,100,840 parameters.
	if s, err := AlexNet(1000).Summary(1, 3, 224, 224); err != nil || s.Params != 61_100_840 {
		t.Errorf("AlexNet(1000): %v params, %v; want 61,100,840", s.Params, err)
	}
}

func TestTable(t *testing.T) {
	s, err := surgeryModel(t).Summary(4, 3, 224, 224)
	if err != nil {
		t.Fatal(err)
	}
	table := s.Table()
	for _, want := range []string{
		"features.0    Conv2d             [4, 64, 55, 55]       23,296  yes    140.554M   10.1%",
		"(flatten)     flatten            [4, 9216]",
		"classifier.6  Linear             [4, 10]               10,250  yes     20.480K    0.0%",
		"Total                                              44,428,106           1.395G  100.0%",
		"Parameters: 44,428,106 total, 44,428,106 trainable, 0 frozen",
		"Forward per image: 1.395 GFLOP (Conv2d 1.311, Linear 0.084)",
		"Forward + backward per image: 4.045 GFLOP",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

func TestReplaceMisfit(t *testing.T) {
	m := AlexNet(1000)
	before := m.String()
	err := m.Replace("classifier.4", NewLinear(1000, 1024))
	var se *ShapeError
	if !errors.As(err, &se) || se.Path != "classifier.4" || se.From != "classifier.3" || !slices.Equal(se.In, []int{4096}) {
		t.Fatalf("misfit Linear(1000, 1024) at classifier.4: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "input has 4096 features, want 1000") {
		t.Errorf("error %q does not say what misfits", msg)
	}
	t.Log(err)
	if m.String() != before {
		t.Error("a failed Replace changed the model")
	}
	err = m.Replace("features.0", NewConv2d(1, 64, 11, 4, 2))
	if !errors.As(err, &se) || se.Path != "features.0" || se.From != "input" || !strings.Contains(err.Error(), "input has 3 channels, want 1") {
		t.Errorf("Conv2d(1, 64) at features.0: %v", err)
	}

	// A fitting replacement leaves the next layer misfit until it is replaced too.
	if err := m.Replace("classifier.4", NewLinear(4096, 1024)); err != nil {
		t.Fatal(err)
	}
	err = m.Validate(3, 224, 224)
	if !errors.As(err, &se) || se.Path != "classifier.6" || se.From != "classifier.5" {
		t.Fatalf("Validate with classifier.6 misfit: %v", err)
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "layer classifier.6 Linear(in_features=4096, out_features=1000, bias=True)") ||
		!strings.Contains(err.Error(), "input has 1024 features, want 4096") {
		t.Errorf("Validate error %q", err)
	}
	if _, err := m.Summary(1, 3, 224, 224); !errors.As(err, &se) {
		t.Errorf("Summary of a misfit model: %v", err)
	}
	if err := m.Replace("classifier.6", NewLinear(1024, 10)); err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(3, 224, 224); err != nil {
		t.Fatal(err)
	}

	for _, path := range []string{"", "classifier.7", "classifier.04", "classifier.-1", "features.0.weight", "head", "avgpool.0"} {
		if err := m.Replace(path, NewReLU(true)); err == nil {
			t.Errorf("Replace(%q) succeeded", path)
		} else {
			t.Logf("Replace(%q): %v", path, err)
		}
	}
	if err := m.Replace("classifier.2", nil); err == nil {
		t.Error("Replace with nil succeeded")
	}
	// A whole container can be replaced; it is checked against the flattened input.
	if err := m.Replace("classifier", NewSequential(NewLinear(9216, 10))); err != nil {
		t.Fatal(err)
	}
	if err := m.Replace("classifier", NewSequential(NewLinear(256, 10))); err == nil {
		t.Error("Sequential(Linear(256, 10)) as classifier accepted")
	} else if !errors.As(err, &se) || se.Path != "classifier.0" || se.From != flattenPath {
		t.Errorf("classifier misfit: %v", err)
	}
}

func TestValidateInputs(t *testing.T) {
	m := surgeryModel(t)
	var se *ShapeError
	err := m.Validate(3, 16, 16)
	if !errors.As(err, &se) || se.Path != "features.5" {
		t.Errorf("16x16: %v, want features.5 too small", err)
	}
	if err := m.Validate(1, 224, 224); !errors.As(err, &se) || se.Path != "features.0" {
		t.Errorf("1 channel: %v", err)
	}
	if err := m.Validate(3, 0, 224); err == nil {
		t.Error("0 height accepted")
	}
	if _, err := m.Summary(0, 3, 224, 224); err == nil {
		t.Error("batch 0 accepted")
	}
	// The smallest input that works: 63 gives 15 -> 7 -> 3 -> 1 like 64.
	if err := m.Validate(3, 63, 63); err != nil {
		t.Error(err)
	}
	if err := AlexNet(0).Validate(3, 224, 224); !errors.As(err, &se) || se.Path != "classifier.6" {
		t.Errorf("AlexNet(0): %v", err)
	}
}

func TestFreeze(t *testing.T) {
	m := surgeryModel(t)
	if n := m.Freeze("features"); n != 10 {
		t.Errorf("Freeze(features) matched %d, want 10", n)
	}
	if n := m.Freeze("feat"); n != 0 {
		t.Errorf("Freeze(feat) matched %d, want 0", n)
	}
	var convParams int64
	for _, p := range m.Params() {
		if p.Trainable == strings.HasPrefix(p.Name, "features.") {
			t.Errorf("%s trainable %v", p.Name, p.Trainable)
		}
		if !p.Trainable {
			convParams += p.Numel()
		}
	}
	s, err := m.Summary(1, 3, 224, 224)
	if err != nil {
		t.Fatal(err)
	}
	if s.Trainable != 44_428_106-convParams || s.Params != 44_428_106 || convParams != 2_469_696 {
		t.Errorf("trainable %d of %d (frozen %d)", s.Trainable, s.Params, convParams)
	}
	// Frozen features: no weight gradients there, and no input gradients up to
	// classifier.1, whose input gradient nobody needs either.
	lin := s.FLOPsByType()["Linear"]
	if want := 2*lin - 2*9216*4096; s.Backward != want {
		t.Errorf("backward with frozen features %d, want %d", s.Backward, want)
	}
	if !strings.Contains(s.Table(), "frozen") {
		t.Error("table does not mark frozen layers")
	}
	if n := m.Freeze("classifier.1.bias"); n != 1 {
		t.Errorf("Freeze of one tensor matched %d", n)
	}
	if s, _ := m.Summary(1, 3, 224, 224); !strings.Contains(s.Table(), "part") {
		t.Error("table does not mark a partly frozen layer")
	}
	// Replacing a frozen layer gives a trainable one, as in PyTorch.
	m.Freeze("classifier.4")
	if err := m.Replace("classifier.4", NewLinear(4096, 1024)); err != nil {
		t.Fatal(err)
	}
	if n := m.Unfreeze(""); n != 16 {
		t.Errorf("Unfreeze all matched %d", n)
	}
	for _, p := range m.Params() {
		if !p.Trainable {
			t.Errorf("%s still frozen", p.Name)
		}
	}
	m.Freeze("classifier.4")
	if err := m.Replace("classifier.4", NewLinear(4096, 1024)); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		if !p.Trainable {
			t.Errorf("%s frozen after its layer was replaced", p.Name)
		}
	}
}

// initValues is m.InitStateDict(seed) by name.
func initValues(t *testing.T, m *Model, seed uint64) map[string][]float32 {
	t.Helper()
	sd, err := m.InitStateDict(seed)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for _, name := range sd.Names {
		v, _ := sd.Get(name)
		out[name] = v.Data
	}
	return out
}

func TestInit(t *testing.T) {
	m := surgeryModel(t)
	a, b := initValues(t, m, 1), initValues(t, m, 1)
	c := initValues(t, m, 2)
	for _, p := range m.Params() {
		va := a[p.Name]
		if int64(len(va)) != p.Numel() {
			t.Fatalf("%s: %d values, want %d", p.Name, len(va), p.Numel())
		}
		if !slices.Equal(va, b[p.Name]) {
			t.Errorf("%s: same seed, different values", p.Name)
		}
		if slices.Equal(va, c[p.Name]) {
			t.Errorf("%s: different seeds, same values", p.Name)
		}
		fanIn := p.Shape[len(p.Shape)-1]
		if len(p.Shape) == 4 {
			fanIn = p.Shape[1] * p.Shape[2] * p.Shape[3]
		} else if p.Local == "bias" {
			fanIn = p.Module.ParamSpecs()[0].Shape[1]
			if len(p.Module.ParamSpecs()[0].Shape) == 4 {
				fanIn *= p.Module.ParamSpecs()[0].Shape[2] * p.Module.ParamSpecs()[0].Shape[3]
			}
		}
		if p.FanIn() != fanIn {
			t.Errorf("%s: fan_in %d, want %d", p.Name, p.FanIn(), fanIn)
		}
		bound := 1 / math.Sqrt(float64(fanIn))
		if math.Abs(InitBound(fanIn)-bound) > 1e-12*bound {
			t.Errorf("bound %v, want %v", InitBound(fanIn), bound)
		}
		var sum, sq, hi float64
		for _, v := range va {
			x := float64(v)
			if math.Abs(x) > float64(float32(bound)) {
				t.Fatalf("%s: %v outside +-%v", p.Name, x, bound)
			}
			sum, sq, hi = sum+x, sq+x*x, max(hi, math.Abs(x))
		}
		n := float64(len(va))
		if n >= 10000 {
			// U(-b, b): mean 0, variance b^2/3; the extremes come close to b.
			if mean := sum / n; math.Abs(mean) > 5*bound/math.Sqrt(3*n) {
				t.Errorf("%s: mean %v", p.Name, mean)
			}
			if v := sq / n; math.Abs(v/(bound*bound/3)-1) > 0.05 {
				t.Errorf("%s: variance %v, want %v", p.Name, v, bound*bound/3)
			}
			if hi < 0.99*bound {
				t.Errorf("%s: largest |value| %v, bound %v", p.Name, hi, bound)
			}
		}
	}
	// Values depend on the seed and the name, not on the rest of the model.
	orig := initValues(t, AlexNet(1000), 1)
	for _, name := range []string{"features.0.weight", "classifier.1.bias"} {
		if !slices.Equal(orig[name], a[name]) {
			t.Errorf("%s differs between the original and the modified model", name)
		}
	}
	sd, err := m.InitStateDict(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := sd.Check(m.Specs(), true); err != nil {
		t.Error(err)
	}
	if !slices.Equal(sd.Names, namesOf(m.Params())) || !slices.Equal(sd.Tensors["classifier.6.weight"].Data, a["classifier.6.weight"]) {
		t.Error("InitStateDict differs from Init")
	}
}

func namesOf(ps []Param) []string {
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	return names
}

func TestModuleLookupAndErrors(t *testing.T) {
	m := surgeryModel(t)
	mod, err := m.Module("classifier.4")
	if err != nil || mod.String() != "Linear(in_features=4096, out_features=1024, bias=True)" {
		t.Errorf("Module(classifier.4) = %v, %v", mod, err)
	}
	if _, err := m.Module("features.13"); err == nil {
		t.Error("Module(features.13) found")
	}
	if got := NewSequential().String(); got != "Sequential()" {
		t.Errorf("empty Sequential prints %q", got)
	}
	if got := m.Children()[1].Name; got != "avgpool" {
		t.Errorf("second child %q", got)
	}
	for _, mod := range []Module{
		NewConv2d(3, 8, 0, 1, 0), &Conv2d{InChannels: 3, OutChannels: 8, KernelSize: [2]int{3, 3}, Stride: [2]int{1, 1}, Dilation: [2]int{1, 1}, Groups: 2},
		&MaxPool2d{KernelSize: 2, Stride: 2, Padding: 2, Dilation: 1}, NewMaxPool2d(3, 0), NewDropout(1.5),
		NewAdaptiveAvgPool2d(0, 6), NewLinear(3, 0),
	} {
		if _, err := mod.OutShape([]int{3, 8, 8}); err == nil {
			t.Errorf("%s accepted [3 8 8]", mod)
		}
	}
	if got := pyFloat(1); got != "1.0" {
		t.Errorf("pyFloat(1) = %q", got)
	}
	if got := commas(1234567); got != "1,234,567" {
		t.Errorf("commas = %q", got)
	}
	if floorDiv(-1, 2) != -1 || floorDiv(3, 2) != 1 {
		t.Error("floorDiv")
	}
}

func TestLayersOrder(t *testing.T) {
	m := AlexNet(10)
	layers, err := m.Layers(3, 224, 224)
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 22 || layers[0].Path != "features.0" || layers[14].Module != nil || layers[21].Path != "classifier.6" {
		t.Fatalf("unexpected layer list: %d layers, first %q, 15th %v, last %q", len(layers), layers[0].Path, layers[14].Module, layers[len(layers)-1].Path)
	}
	if got := layers[13].Out; len(got) != 3 || got[0] != 256 || got[1] != 6 || got[2] != 6 {
		t.Errorf("avgpool output %v", got)
	}
}

func TestInitKaiming(t *testing.T) {
	m := AlexNet(10)
	sd, err := m.InitStateDictScheme(3, InitKaiming)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := sd.Get("features.3.weight") // 192 x 64 x 5 x 5: std sqrt(2/(192*25))
	var sum, sq float64
	for _, v := range w.Data {
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	n := float64(len(w.Data))
	std, want := math.Sqrt(sq/n-(sum/n)*(sum/n)), math.Sqrt(2.0/(192*25))
	if math.Abs(std-want) > 0.01*want {
		t.Errorf("features.3.weight std %.5f, want %.5f", std, want)
	}
	b, _ := sd.Get("classifier.1.bias")
	for _, v := range b.Data {
		if v != 0 {
			t.Fatal("kaiming biases are not zero")
		}
	}
	if _, err := m.InitStateDictScheme(3, "bogus"); err == nil {
		t.Error("unknown scheme accepted")
	}
}
