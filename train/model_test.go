package train

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"vktrain/layers/nn"
	"vktrain/train/weights"
)

// TestBuildModelResNet: --model resnet18 and resnet50 are torchvision's
// ResNets with fc replaced by Linear(512*expansion, 10): the same state_dict
// entries, names and shapes, as the ResNet built for 10 classes, buffers
// included; an unknown name is an error listing the choices; freezing leaves
// only fc trainable (AlexNet's classifier, as before).
func TestBuildModelResNet(t *testing.T) {
	for _, c := range []struct {
		name string
		want *nn.Model
		fcIn int
	}{{ModelResNet18, nn.ResNet18(NumClasses), 512}, {ModelResNet50, nn.ResNet50(NumClasses), 2048}} {
		m, err := BuildModel(c.name, false)
		mustPT(t, err)
		if got, want := m.StateSpecs(), c.want.StateSpecs(); len(got) != len(want) || len(m.Buffers()) == 0 {
			t.Fatalf("%s: %d state_dict entries (%d buffers), want %d", c.name, len(got), len(m.Buffers()), len(want))
		}
		for i, s := range c.want.StateSpecs() {
			if got := m.StateSpecs()[i]; got.Name != s.Name || !slices.Equal(got.Shape, s.Shape) {
				t.Errorf("%s: entry %d is %s %v, want %s %v", c.name, i, got.Name, got.Shape, s.Name, s.Shape)
			}
		}
		fc, err := m.Module("fc")
		mustPT(t, err)
		if lin, ok := fc.(*nn.Linear); !ok || lin.InFeatures != c.fcIn || lin.OutFeatures != NumClasses {
			t.Errorf("%s: fc is %v, want Linear(%d, %d)", c.name, fc, c.fcIn, NumClasses)
		}

		frozen, err := BuildModel(c.name, true)
		mustPT(t, err)
		var trainable []string
		for _, p := range frozen.Params() {
			if p.Trainable {
				trainable = append(trainable, p.Name)
			}
		}
		if !slices.Equal(trainable, []string{"fc.weight", "fc.bias"}) {
			t.Errorf("%s --freeze-features: trainable %v, want fc's only", c.name, trainable)
		}
	}
	a, err := BuildModel(ModelAlexNet, true)
	mustPT(t, err)
	for _, p := range a.Params() {
		if p.Trainable != strings.HasPrefix(p.Name, "classifier.") {
			t.Errorf("alexnet --freeze-features: %s trainable %v", p.Name, p.Trainable)
		}
	}
	if _, err := BuildModel("vgg16", false); err == nil || !strings.Contains(err.Error(), `"vgg16"`) || !strings.Contains(err.Error(), "alexnet, resnet18, resnet50") {
		t.Errorf("unknown model: %v", err)
	}
	for _, c := range []struct{ name, url, file, prefix string }{
		{ModelAlexNet, TorchvisionAlexNetURL, "alexnet-owt-7be5be79.pth", "7be5be79"},
		{ModelResNet18, TorchvisionResNet18URL, "resnet18-f37072fd.pth", "f37072fd"},
		{ModelResNet50, TorchvisionResNet50URL, "resnet50-0676ba61.pth", "0676ba61"},
	} {
		spec, err := LookupModel(c.name)
		mustPT(t, err)
		name, err := urlFileName(spec.WeightsURL)
		mustPT(t, err)
		prefix, err := hashPrefixFromName(name)
		if spec.WeightsURL != c.url || name != c.file || err != nil || prefix != c.prefix {
			t.Errorf("%s: weights %s (%s, prefix %q, %v), want %s", c.name, spec.WeightsURL, name, prefix, err, c.url)
		}
	}
}

// TestResNetInit checks the ResNet's initial state against torchvision's
// ResNet.__init__: every state_dict entry in order; convolutions (a
// block's and a shortcut's included) N(0, sqrt(2/fan_out)) with fan_out =
// out_channels*kh*kw; BatchNorm weight 1, bias 0, running_mean 0, running_var
// 1, num_batches_tracked 0; fc PyTorch's default (nn.InitParam, its fan-in
// 512); the same seed gives the same values, another seed others. "kaiming"
// changes fc only. AlexNet's initial state is what it was.
func TestResNetInit(t *testing.T) {
	spec, err := LookupModel(ModelResNet18)
	mustPT(t, err)
	m, err := spec.build(false)
	mustPT(t, err)
	sd, err := m.InitStateDictScheme(5, nn.InitTorch)
	mustPT(t, err)
	var names []string
	for _, s := range m.StateSpecs() {
		names = append(names, s.Name)
	}
	if !slices.Equal(sd.Names, names) {
		t.Fatalf("initial state has %d entries, want the %d of StateSpecs in order", sd.Len(), len(names))
	}
	for name, fanOut := range map[string]int{"conv1.weight": 64 * 49, "layer1.0.conv1.weight": 64 * 9, "layer2.0.downsample.0.weight": 128, "layer4.1.conv2.weight": 512 * 9} {
		v := sd.Tensors[name].Data
		mean, std := meanStd(v)
		want := math.Sqrt(2 / float64(fanOut))
		if math.Abs(mean) > 4*want/math.Sqrt(float64(len(v))) || math.Abs(std/want-1) > 0.03 {
			t.Errorf("%s: mean %.4g, std %.4g; want N(0, %.4g)", name, mean, std, want)
		}
	}
	for _, s := range m.StateSpecs() {
		v := sd.Tensors[s.Name].Data
		var want float32 = -1
		switch {
		case strings.HasSuffix(s.Name, ".running_var"):
			want = 1
		case strings.HasSuffix(s.Name, ".running_mean"), strings.HasSuffix(s.Name, ".num_batches_tracked"):
			want = 0
		case len(s.Shape) == 1 && strings.HasSuffix(s.Name, ".weight"):
			want = 1 // a BatchNorm's
		case len(s.Shape) == 1 && s.Name != "fc.bias":
			want = 0
		}
		if want < 0 {
			continue
		}
		for _, x := range v {
			if x != want {
				t.Errorf("%s: %v, want all %v", s.Name, x, want)
				break
			}
		}
	}
	if nbt := sd.Tensors["layer3.1.bn2.num_batches_tracked"]; len(nbt.Shape) != 0 || len(nbt.Data) != 1 {
		t.Errorf("num_batches_tracked: shape %v, want a scalar", nbt.Shape)
	}
	var fc nn.Param
	for _, p := range m.Params() {
		if p.Name == "fc.weight" {
			fc = p
		}
	}
	if want := nn.InitParam(fc, 5); !slices.Equal(sd.Tensors["fc.weight"].Data, want) || fc.FanIn() != 512 {
		t.Error("fc.weight is not PyTorch's default initialisation (nn.InitParam, fan-in 512)")
	}
	bound := float32(1 / math.Sqrt(512))
	for _, x := range sd.Tensors["fc.bias"].Data {
		if x < -bound || x > bound || x == 0 {
			t.Errorf("fc.bias %v outside U(-1/sqrt(512), 1/sqrt(512))", x)
			break
		}
	}

	again, err := m.InitStateDictScheme(5, "")
	mustPT(t, err)
	other, err := m.InitStateDictScheme(6, nn.InitTorch)
	mustPT(t, err)
	for _, name := range []string{"conv1.weight", "layer3.0.conv2.weight", "fc.weight"} {
		if !slices.Equal(again.Tensors[name].Data, sd.Tensors[name].Data) || slices.Equal(other.Tensors[name].Data, sd.Tensors[name].Data) {
			t.Errorf("%s: not deterministic from the seed", name)
		}
	}
	k, err := m.InitStateDictScheme(5, nn.InitKaiming)
	mustPT(t, err)
	if _, std := meanStd(k.Tensors["fc.weight"].Data); math.Abs(std/0.01-1) > 0.05 || slices.ContainsFunc(k.Tensors["fc.bias"].Data, func(x float32) bool { return x != 0 }) {
		t.Errorf("kaiming: fc.weight std %v (want 0.01), bias %v (want 0)", std, k.Tensors["fc.bias"].Data[:3])
	}
	if !slices.Equal(k.Tensors["layer2.1.conv1.weight"].Data, sd.Tensors["layer2.1.conv1.weight"].Data) {
		t.Error("kaiming changed a convolution")
	}
	if _, err := m.InitStateDictScheme(5, "xavier"); err == nil || !strings.Contains(err.Error(), "xavier") {
		t.Errorf("unknown scheme: %v", err)
	}

	// A block's parameters belong to its own layers (their fan-in included).
	for _, p := range m.Params() {
		if p.Name == "layer2.0.conv1.weight" {
			if p.FanIn() != 64*9 || p.Path != "layer2.0.conv1" || p.Local != "weight" {
				t.Errorf("%s: path %s local %s, fan-in %d; want layer2.0.conv1, weight, 576", p.Name, p.Path, p.Local, p.FanIn())
			}
		}
	}

	// AlexNet's initial state is PyTorch's default (nn.InitParam) or the
	// VGG scheme (nn.InitParamKaiming), parameter by parameter, as before.
	alex, err := BuildModel(ModelAlexNet, false)
	mustPT(t, err)
	for _, scheme := range []nn.InitScheme{nn.InitTorch, nn.InitKaiming} {
		got, err := alex.InitStateDictScheme(3, scheme)
		mustPT(t, err)
		if got.Len() != len(alex.Params()) {
			t.Errorf("alexnet %s: %d entries, want its %d parameters", scheme, got.Len(), len(alex.Params()))
		}
		for _, p := range alex.Params() {
			want := nn.InitParam(p, 3)
			if scheme == nn.InitKaiming {
				want = nn.InitParamKaiming(p, 3)
			}
			if !slices.Equal(got.Tensors[p.Name].Data, want) {
				t.Errorf("alexnet %s: %s changed", scheme, p.Name)
			}
		}
	}
}

func meanStd(v []float32) (float64, float64) {
	var s, ss float64
	for _, x := range v {
		s += float64(x)
		ss += float64(x) * float64(x)
	}
	n := float64(len(v))
	mean := s / n
	return mean, math.Sqrt(ss/n - mean*mean)
}

// TestConfigModel: Config.Model is checked (naming the choices), saved in
// config.json and read back; a config.json without it (older runs) means
// alexnet, one with an unknown model is an error naming the file. Image
// sizes: 32 and up for a ResNet, 64 for AlexNet; batch 1 at 32 (layer4 at
// 1x1) is refused as PyTorch refuses it. A width is a ResNet's only and has
// no torchvision weights.
func TestConfigModel(t *testing.T) {
	c := Defaults()
	if c.Model != ModelAlexNet {
		t.Errorf("default model %q", c.Model)
	}
	for _, bad := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Model = "vgg16" }, `model "vgg16": want alexnet, resnet18, resnet50`},
		{func(c *Config) { c.ImageSize = 32 }, "at least 64"},
		{func(c *Config) { c.Model, c.ImageSize = ModelResNet18, 31 }, "at least 32 for ResNet-18"},
		{func(c *Config) { c.Model, c.ImageSize, c.Batch = ModelResNet18, 32, 1 }, "layer4.0 gives 1x1 maps"},
		{func(c *Config) { c.Width = 8 }, "only a ResNet's width"},
		{func(c *Config) { c.Model, c.Width = ModelResNet18, 8 }, "no weights for ResNet-18 (width 8)"},
	} {
		c := Defaults()
		bad.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want an error saying %q", c, err, bad.want)
		}
	}
	for _, good := range []func(*Config){
		func(c *Config) { c.Model, c.ImageSize, c.Batch = ModelResNet18, 32, 2 },
		func(c *Config) { c.Model, c.ImageSize, c.Batch = ModelResNet50, 64, 1 },
		func(c *Config) { c.Model, c.Width, c.Pretrained = ModelResNet18, 8, PretrainedNone },
		func(c *Config) { c.Model = "" }, // AlexNet, as runs written before the field
	} {
		c := Defaults()
		good(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}

	dir := t.TempDir()
	c.Model = ModelResNet50
	mustPT(t, writeConfig(dir, c))
	rc, err := ReadConfig(dir)
	if err != nil || rc.Model != ModelResNet50 {
		t.Errorf("config.json round trip: model %q, %v", rc.Model, err)
	}
	path := filepath.Join(dir, configFile)
	b, err := os.ReadFile(path)
	mustPT(t, err)
	old := strings.Replace(string(b), `"model": "resnet50",`, "", 1)
	if old == string(b) {
		t.Fatalf("config.json does not hold the model:\n%s", b)
	}
	mustPT(t, os.WriteFile(path, []byte(old), 0o644))
	if rc, err := ReadConfig(dir); err != nil || rc.Model != ModelAlexNet {
		t.Errorf("config.json without a model: %q, %v; want alexnet", rc.Model, err)
	}
	mustPT(t, os.WriteFile(path, []byte(strings.Replace(string(b), `"resnet50"`, `"resnet34"`, 1)), 0o644))
	if _, err := ReadConfig(dir); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "resnet34") {
		t.Errorf("config.json with an unknown model: %v", err)
	}
}

// narrowResNet is a run of a ResNet-18 8 channels wide at the stem (the
// stages 8, 16, 32, 64; 0.18M parameters instead of 11.7M), from scratch, on
// the synthetic set at 32x32, batch 2: --model resnet18's code path at a
// size tests can afford on lavapipe. TrainLimit 12 makes 6 steps per epoch.
func narrowResNet() Config {
	c := tinyConfig()
	c.Model, c.Width = ModelResNet18, 8
	c.ImageSize, c.Batch, c.TrainLimit, c.TestLimit = 32, 2, 12, 5
	return c
}

// TestInitFromResNet: --init-from for a ResNet checks the file against the
// modified 10-class model's state_dict, BatchNorm's buffers included, and
// takes every entry from it (the buffers too); a file with torchvision's
// 1000-class fc, or one without the buffers, is refused naming the file and
// the tensors.
func TestInitFromResNet(t *testing.T) {
	cfg := narrowResNet()
	m, err := BuildModelFor(cfg)
	mustPT(t, err)
	spec, err := cfg.modelSpec()
	mustPT(t, err)
	want, err := m.InitStateDictScheme(99, nn.InitTorch)
	mustPT(t, err)
	for i, name := range want.Names { // buffers that are not a fresh BatchNorm's
		if strings.HasSuffix(name, ".running_var") || strings.HasSuffix(name, ".num_batches_tracked") {
			for j := range want.Tensors[name].Data {
				want.Tensors[name].Data[j] = float32(i + 2)
			}
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "start.safetensors")
	mustPT(t, weights.WriteSafetensors(file, want, nil))
	cfg.InitFrom = file
	mustPT(t, cfg.Validate())
	got, err := InitialParams(t.Context(), m, cfg, nil, nil)
	mustPT(t, err)
	if !slices.Equal(got.Names, want.Names) {
		t.Fatalf("names %v, want %v", got.Names, want.Names)
	}
	for _, name := range want.Names {
		if !slices.Equal(got.Tensors[name].Data, want.Tensors[name].Data) {
			t.Errorf("%s differs from the file's", name)
		}
	}

	thousand, err := spec.Torchvision(1000).InitStateDictScheme(1, nn.InitTorch)
	mustPT(t, err)
	paramsOnly := &weights.StateDict{}
	for _, p := range m.Specs() {
		mustPT(t, paramsOnly.Add(p.Name, want.Tensors[p.Name]))
	}
	for _, c := range []struct {
		what string
		sd   *weights.StateDict
		want []string
	}{
		{"1000 classes", thousand, []string{"is not the modified 10-class ResNet-18 (width 8) (--init-from)", `tensor "fc.weight" has shape [1000 64] in the file, want [10 64]`}},
		{"no buffers", paramsOnly, []string{"missing: bn1.num_batches_tracked, bn1.running_mean, bn1.running_var"}},
	} {
		cfg.InitFrom = filepath.Join(dir, strings.ReplaceAll(c.what, " ", "_")+".safetensors")
		mustPT(t, weights.WriteSafetensors(cfg.InitFrom, c.sd, nil))
		_, err := InitialParams(t.Context(), m, cfg, nil, nil)
		for _, s := range append(c.want, cfg.InitFrom) {
			if err == nil || !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %v; want it to say %q", c.what, err, s)
			}
		}
	}
}
