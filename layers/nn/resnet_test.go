package nn

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"vktrain/train/weights"
)

// resnetGolden is testdata/resnet.json (gen_resnet_golden.py).
type resnetGolden struct {
	StateDict []namedShape `json:"state_dict"`
	Params    int64        `json:"params"`
	Shapes224 []namedShape `json:"shapes_224"`
}

func readResNetGolden(t *testing.T) (r18, r50 resnetGolden, surgery []namedShape) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "resnet.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		ResNet18 resnetGolden `json:"resnet18"`
		ResNet50 resnetGolden `json:"resnet50"`
		Surgery  []namedShape `json:"resnet18_surgery_state_dict"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g.ResNet18, g.ResNet50, g.Surgery
}

// TestResNetMatchesTorch: ResNet-18 and ResNet-50 print as torchvision's, hold
// the same state_dict entries (parameters and BatchNorm buffers, in order, with
// their shapes) and parameter count, and give each top-level module's output
// shape at 224x224 as torch does; the fc surgery to 10 classes too.
func TestResNetMatchesTorch(t *testing.T) {
	r18, r50, surgery := readResNetGolden(t)
	for _, c := range []struct {
		name  string
		model *Model
		want  resnetGolden
	}{{"resnet18", ResNet18(1000), r18}, {"resnet50", ResNet50(1000), r50}} {
		t.Run(c.name, func(t *testing.T) {
			if got, want := c.model.String()+"\n", readText(t, c.name+".txt"); got != want {
				t.Errorf("String():\n%s\nwant (torch):\n%s", got, want)
			}
			checkState(t, c.model, c.want.StateDict)
			var n int64
			for _, p := range c.model.Params() {
				n += p.Numel()
			}
			if n != c.want.Params {
				t.Errorf("%d parameters, torch %d", n, c.want.Params)
			}
			for _, b := range c.model.Buffers() {
				if !strings.Contains(b.Name, ".running_") && !strings.HasSuffix(b.Name, ".num_batches_tracked") {
					t.Errorf("buffer %s is not a BatchNorm statistic", b.Name)
				}
			}
			steps, err := c.model.walk(3, 224, 224)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]int{}
			for _, s := range steps {
				top, _, _ := strings.Cut(s.path, ".")
				got[top] = s.out // the last step under each top-level module
			}
			for _, w := range c.want.Shapes224 {
				if !slices.Equal(got[w.Name], w.Shape) {
					t.Errorf("%s: output %v, torch %v", w.Name, got[w.Name], w.Shape)
				}
			}
		})
	}
	m := ResNet18(1000)
	if err := m.Replace("fc", NewLinear(512, 10)); err != nil {
		t.Fatal(err)
	}
	checkState(t, m, surgery)
}

// checkState compares the model's state_dict entries with torch's.
func checkState(t *testing.T, m *Model, want []namedShape) {
	t.Helper()
	specs := m.StateSpecs()
	if len(specs) != len(want) {
		t.Fatalf("%d state_dict entries, torch has %d", len(specs), len(want))
	}
	for i, s := range specs {
		if s.Name != want[i].Name || !slices.Equal(s.Shape, want[i].Shape) {
			t.Errorf("entry %d is %s %v, torch has %s %v", i, s.Name, s.Shape, want[i].Name, want[i].Shape)
		}
	}
}

// TestBlockShapeErrors: a block whose shortcut cannot meet its main path, or
// an input of the wrong width, is an error naming the layer.
func TestBlockShapeErrors(t *testing.T) {
	if _, err := NewBasicBlock(64, 64, 1).OutShape([]int{32, 8, 8}); err == nil || !strings.Contains(err.Error(), "Conv2d") {
		t.Errorf("a 32-channel input to a 64-channel block: %v", err)
	}
	b := NewBasicBlock(64, 128, 2)
	b.downsample = nil // the identity cannot carry 64 channels to 128
	if _, err := b.OutShape([]int{64, 8, 8}); err == nil || !strings.Contains(err.Error(), "shortcut") {
		t.Errorf("a block without its downsample: %v", err)
	}
	if err := ResNet18(10).Validate(3, 224, 224); err != nil {
		t.Errorf("ResNet18 at 224: %v", err)
	}
	if err := ResNet50(10).Validate(3, 32, 32); err != nil {
		t.Errorf("ResNet50 at 32 (CIFAR's own size): %v", err)
	}
}

// TestRecognize: a state dict names the model it is, by its entries.
func TestRecognize(t *testing.T) {
	sdOf := func(m *Model) *weights.StateDict {
		sd := &weights.StateDict{}
		for _, s := range m.StateSpecs() {
			if err := sd.Add(s.Name, &weights.Tensor{Shape: s.Shape, Data: make([]float32, numel(s.Shape))}); err != nil {
				t.Fatal(err)
			}
		}
		return sd
	}
	surgery := AlexNet(1000)
	if err := surgery.ReferenceSurgery(10); err != nil {
		t.Fatal(err)
	}
	for want, m := range map[string]*Model{
		"AlexNet (1000 classes, classifier.4 4096 wide)": AlexNet(1000),
		"AlexNet (10 classes, classifier.4 1024 wide)":   surgery,
		"ResNet-18 (10 classes)":                         ResNet18(10),
		"ResNet-50 (1000 classes)":                       ResNet50(1000),
	} {
		if got := Recognize(sdOf(m)); got != want {
			t.Errorf("Recognize = %q, want %q", got, want)
		}
	}
	partial := sdOf(ResNet18(10))
	partial.Names = partial.Names[:len(partial.Names)-1]
	if got := Recognize(partial); got != "" {
		t.Errorf("a ResNet-18 without fc.bias recognized as %q", got)
	}
}
