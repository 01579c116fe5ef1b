package train

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"vktrain/layers/nn"
	"vktrain/train/fetch"
	"vktrain/train/weights"
)

// The --pretrained torchvision path is tested against a local HTTP server with
// small files: torchvision's real AlexNet file is 233 MiB, and InitialParams
// checks a file against the full 1000-class AlexNet, so a file it accepts is
// that big too (TestPretrainedFullShape makes one, outside -short). The small
// tests cover the download (the checksum taken from the URL's file name,
// accepted and refused, the atomic file in the cache, progress, no second
// request once cached) and, through InitialParams, the reading and checking of
// what was downloaded: a real torch.save file of the wrong shapes and a
// safetensors file lacking tensors are refused with errors naming them.

func TestHashPrefixFromName(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"alexnet-owt-7be5be79.pth", "7be5be79"},
		{"resnet18-f37072fd.pth", "f37072fd"},
		{"vgg16-397923af.pth", "397923af"},
		{"x-0123456789abcdef.safetensors", "0123456789abcdef"},
		{"alexnet-owt-7be5be79", "7be5be79"}, // no extension
		{"data-0123abcd.tar.gz", "0123abcd"}, // a double extension
	} {
		got, err := hashPrefixFromName(c.name)
		if err != nil || got != c.want {
			t.Errorf("hashPrefixFromName(%q) = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	for _, name := range []string{
		"alexnet.pth",              // no '-'
		"alexnet-owt.pth",          // not hex
		"alexnet-7be5be7.pth",      // 7 digits: too short to verify
		"alexnet-7BE5BE79.pth",     // torchvision's hashes are lowercase
		"alexnet-7be5be79-owt.pth", // the hex must come last
		"alexnet-.pth",
		"alexnet-" + strings.Repeat("a", 65) + ".pth",
	} {
		if got, err := hashPrefixFromName(name); err == nil {
			t.Errorf("hashPrefixFromName(%q) = %q, want an error", name, got)
		} else if !strings.Contains(err.Error(), name) {
			t.Errorf("hashPrefixFromName(%q): error %q does not name the file", name, err)
		}
	}
	// The official file's name gives the checksum torchvision checks.
	name, err := urlFileName(TorchvisionAlexNetURL)
	mustPT(t, err)
	if got, err := hashPrefixFromName(name); err != nil || name != "alexnet-owt-7be5be79.pth" || got != "7be5be79" {
		t.Errorf("official URL: file %q, prefix %q, %v", name, got, err)
	}
	for _, u := range []string{"http://example.com/", "http://example.com", "http://example.com/dir/.pth", "::"} {
		if name, err := urlFileName(u); err == nil {
			t.Errorf("urlFileName(%q) = %q, want an error", u, name)
		}
	}
	if name, err := urlFileName("http://example.com/models/a-7be5be79.pth?download=1#x"); err != nil || name != "a-7be5be79.pth" {
		t.Errorf("urlFileName with a query: %q, %v", name, err)
	}
}

// weightServer serves files by path from memory and counts the requests.
type weightServer struct {
	*httptest.Server
	files    map[string][]byte
	requests atomic.Int32
}

func newWeightServer(t *testing.T) *weightServer {
	t.Helper()
	s := &weightServer{files: map[string][]byte{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		b, ok := s.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, filepath.Base(r.URL.Path), time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(s.Close)
	return s
}

// namedFor is NAME-HASH.EXT for content under torchvision's rule: the first
// hexDigits of its sha256.
func namedFor(stem, ext string, content []byte) string {
	sum := sha256.Sum256(content)
	return stem + "-" + hex.EncodeToString(sum[:])[:8] + ext
}

func torchvisionConfig(t *testing.T, url string) Config {
	cfg := Defaults()
	cfg.WeightsURL = url
	cfg.CacheDir = t.TempDir()
	return cfg
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestPretrainedDownload(t *testing.T) {
	srv := newWeightServer(t)
	content := []byte(strings.Repeat("not really AlexNet, but verified all the same. ", 2000))
	name := namedFor("alexnet-test", ".pth", content)
	srv.files["/models/"+name] = content
	cfg := torchvisionConfig(t, srv.URL+"/models/"+name)

	var calls, lastDone, lastTotal int64
	progress := func(done, total int64) { calls++; lastDone, lastTotal = done, total }
	path, err := pretrainedFile(context.Background(), cfg, discardLog(), progress)
	mustPT(t, err)
	if want := filepath.Join(cfg.CacheDir, "weights", name); path != want {
		t.Fatalf("downloaded to %s, want %s (the cache, under the URL's file name)", path, want)
	}
	got, err := os.ReadFile(path)
	mustPT(t, err)
	if !bytes.Equal(got, content) {
		t.Fatalf("cached file differs from the served one (%d bytes, want %d)", len(got), len(content))
	}
	if calls == 0 || lastDone != int64(len(content)) || lastTotal != int64(len(content)) {
		t.Errorf("progress: %d calls, last (%d, %d), want the end at (%d, %d)", calls, lastDone, lastTotal, len(content), len(content))
	}
	assertDirHolds(t, filepath.Dir(path), name) // no .part or temporary file left
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("%d requests for one download", n)
	}

	// Cached and verified: no second request.
	again, err := pretrainedFile(context.Background(), cfg, discardLog(), nil)
	mustPT(t, err)
	if again != path || srv.requests.Load() != 1 {
		t.Errorf("second call: %s after %d requests, want %s without a new request", again, srv.requests.Load(), path)
	}

	// A damaged cached copy is fetched again.
	mustPT(t, os.WriteFile(path, []byte("damaged"), 0o644))
	_, err = pretrainedFile(context.Background(), cfg, discardLog(), nil)
	mustPT(t, err)
	if got, _ := os.ReadFile(path); !bytes.Equal(got, content) || srv.requests.Load() != 2 {
		t.Errorf("damaged cache: %d requests, content restored %v", srv.requests.Load(), bytes.Equal(got, content))
	}
}

func TestPretrainedDownloadCorrupted(t *testing.T) {
	srv := newWeightServer(t)
	content := []byte(strings.Repeat("weights ", 4096))
	name := namedFor("alexnet-test", ".pth", content)
	corrupted := append([]byte(nil), content...)
	corrupted[1000] ^= 0x40 // one bit flipped in transit
	srv.files["/"+name] = corrupted
	cfg := torchvisionConfig(t, srv.URL+"/"+name)

	path, err := pretrainedFile(context.Background(), cfg, discardLog(), nil)
	var ce *fetch.ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("corrupted download: path %q, error %v; want a *fetch.ChecksumError", path, err)
	}
	if want := name[strings.LastIndexByte(name, '-')+1 : strings.LastIndexByte(name, '.')]; ce.Expected != fetch.SHA256(want) || !ce.Removed {
		t.Errorf("checksum error expects %v (removed %v), want sha256:%s removed", ce.Expected, ce.Removed, want)
	}
	for _, s := range []string{name, "checksum mismatch"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	assertDirHolds(t, filepath.Join(cfg.CacheDir, "weights")) // nothing kept

	// InitialParams reports the same refusal.
	m, err := BuildModel(ModelAlexNet, false)
	mustPT(t, err)
	if _, err := InitialParams(context.Background(), m, cfg, discardLog(), nil); !errors.As(err, &ce) {
		t.Errorf("InitialParams on a corrupted download: %v, want a *fetch.ChecksumError", err)
	}

	// A URL whose name carries no hash is refused before any request.
	before := srv.requests.Load()
	cfg.WeightsURL = srv.URL + "/alexnet.pth"
	if _, err := pretrainedFile(context.Background(), cfg, discardLog(), nil); err == nil || !strings.Contains(err.Error(), "no sha256 prefix") {
		t.Errorf("URL without a hash in its name: %v", err)
	}
	if srv.requests.Load() != before {
		t.Error("a request was made for a file that cannot be verified")
	}

	// A missing file on the server: a download error naming the URL and the way out.
	cfg.WeightsURL = srv.URL + "/gone/" + name
	_, err = pretrainedFile(context.Background(), cfg, discardLog(), nil)
	var de *fetch.DownloadError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), cfg.WeightsURL) || !strings.Contains(err.Error(), "--pretrained PATH") {
		t.Errorf("404: %v, want a *fetch.DownloadError naming the URL and --pretrained PATH", err)
	}
}

// TestPretrainedWrongFiles downloads files that verify but are not torchvision's
// AlexNet and checks that InitialParams refuses them, naming the tensors: a real
// torch.save file (the narrow AlexNet of the parity fixtures: the names match,
// the shapes do not) and a safetensors file lacking most tensors; a local PATH
// behaves the same.
func TestPretrainedWrongFiles(t *testing.T) {
	narrow, err := os.ReadFile("../layers/testdata/parity_small_weights.pth")
	mustPT(t, err)
	partial := &weights.StateDict{}
	mustPT(t, partial.Add("features.0.weight", &weights.Tensor{Shape: []int{64, 3, 11, 11}, Data: make([]float32, 64*3*11*11)}))
	mustPT(t, partial.Add("features.0.bias", &weights.Tensor{Shape: []int{64}, Data: make([]float32, 64)}))
	mustPT(t, partial.Add("extra.weight", &weights.Tensor{Shape: []int{2}, Data: make([]float32, 2)}))
	stPath := filepath.Join(t.TempDir(), "partial.safetensors")
	mustPT(t, weights.WriteSafetensors(stPath, partial, nil))
	st, err := os.ReadFile(stPath)
	mustPT(t, err)

	// A torchvision ResNet-18's state dict (parameters and BatchNorm buffers).
	resnet := &weights.StateDict{}
	for _, spec := range nn.ResNet18(1000).StateSpecs() {
		n := 1
		for _, d := range spec.Shape {
			n *= d
		}
		mustPT(t, resnet.Add(spec.Name, &weights.Tensor{Shape: spec.Shape, Data: make([]float32, n)}))
	}
	rnPath := filepath.Join(t.TempDir(), "resnet18.safetensors")
	mustPT(t, weights.WriteSafetensors(rnPath, resnet, nil))
	rn, err := os.ReadFile(rnPath)
	mustPT(t, err)

	srv := newWeightServer(t)
	for _, c := range []struct {
		what    string
		name    string
		content []byte
		want    []string
	}{
		{"narrow .pth", namedFor("alexnet-narrow", ".pth", narrow), narrow,
			[]string{"is not torchvision's AlexNet", `tensor "features.0.weight" has shape [8 3 11 11] in the file, want [64 3 11 11]`, `"classifier.6.weight" has shape [10 24]`}},
		{"partial .safetensors", namedFor("alexnet-partial", ".safetensors", st), st,
			[]string{"is not torchvision's AlexNet", "missing: classifier.1.bias, classifier.1.weight", "features.3.weight", "unexpected: extra.weight"}},
		{"ResNet-18 .safetensors", namedFor("resnet18", ".safetensors", rn), rn,
			[]string{"is not torchvision's AlexNet (it looks like ResNet-18 (1000 classes))", "missing: classifier.1.bias", "unexpected: bn1.bias"}},
	} {
		t.Run(c.what, func(t *testing.T) {
			srv.files["/"+c.name] = c.content
			m, err := BuildModel(ModelAlexNet, false)
			mustPT(t, err)
			cfg := torchvisionConfig(t, srv.URL+"/"+c.name)
			sd, err := InitialParams(context.Background(), m, cfg, discardLog(), nil)
			if err == nil {
				t.Fatalf("InitialParams accepted %s (%d tensors)", c.what, sd.Len())
			}
			for _, s := range append(c.want, filepath.Join(cfg.CacheDir, "weights", c.name)) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not mention %q:\n%v", s, err)
				}
			}
			// The same file given as a local PATH.
			local := filepath.Join(t.TempDir(), c.name)
			mustPT(t, os.WriteFile(local, c.content, 0o644))
			cfg.Pretrained = local
			if _, err := InitialParams(context.Background(), m, cfg, discardLog(), nil); err == nil || !strings.Contains(err.Error(), c.want[1]) {
				t.Errorf("local %s: %v", c.what, err)
			}
		})
	}

	m, err := BuildModel(ModelAlexNet, false)
	mustPT(t, err)
	cfg := Defaults()
	cfg.Pretrained = filepath.Join(t.TempDir(), "absent.pth")
	if _, err := InitialParams(context.Background(), m, cfg, discardLog(), nil); err == nil || !strings.Contains(err.Error(), cfg.Pretrained) {
		t.Errorf("absent local file: %v", err)
	}
}

// TestPretrainedFullShape serves a torchvision-shaped AlexNet(1000) state dict
// (every tensor filled with its index, 61M floats: 233 MiB as safetensors) and
// checks that InitialParams keeps it for every layer the surgery kept and a
// fresh initialisation for classifier.4 and classifier.6. Skipped with -short.
func TestPretrainedFullShape(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and downloads a 233 MiB file; run without -short")
	}
	full := indexedState(t, nn.AlexNet(1000).Specs())
	dir := t.TempDir()
	src := filepath.Join(dir, "alexnet.safetensors")
	mustPT(t, weights.WriteSafetensors(src, full, nil))
	sum, err := sha256OfFile(src)
	mustPT(t, err)
	name := "alexnet-full-" + sum[:8] + ".safetensors"
	srv := serveOne(t, "/"+name, src)

	m, err := BuildModel(ModelAlexNet, false)
	mustPT(t, err)
	cfg := torchvisionConfig(t, srv.URL+"/"+name)
	sd, err := InitialParams(context.Background(), m, cfg, discardLog(), nil)
	mustPT(t, err)
	fresh, err := m.InitStateDict(cfg.Seed)
	mustPT(t, err)
	for i, s := range nn.AlexNet(1000).Specs() {
		got, ok := sd.Get(s.Name)
		if !ok {
			t.Fatalf("no %s", s.Name)
		}
		replaced := strings.HasPrefix(s.Name, "classifier.4.") || strings.HasPrefix(s.Name, "classifier.6.")
		last := len(got.Data) - 1
		wantFirst, wantLast := float32(i+1), float32(i+1)
		if replaced {
			f := fresh.Tensors[s.Name].Data
			wantFirst, wantLast = f[0], f[len(f)-1]
		}
		if got.Data[0] != wantFirst || got.Data[last] != wantLast {
			t.Errorf("%s: values %v ... %v, want %v ... %v (replaced by the surgery: %v)", s.Name, got.Data[0], got.Data[last], wantFirst, wantLast, replaced)
		}
	}
}

func sha256OfFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// assertOnly checks that dir holds exactly the named files.
func assertDirHolds(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

func mustPT(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// indexedState is a state dict of specs with every element of the i-th
// tensor i+1: where a value came from shows in it.
func indexedState(t testing.TB, specs []weights.Spec) *weights.StateDict {
	t.Helper()
	sd := &weights.StateDict{}
	for i, s := range specs {
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		data := make([]float32, n)
		for j := range data {
			data[j] = float32(i + 1)
		}
		mustPT(t, sd.Add(s.Name, &weights.Tensor{Shape: s.Shape, Data: data}))
	}
	return sd
}

// checkPretrainedResNet downloads a torchvision-shaped 1000-class state dict
// of cfg's ResNet (indexedState) from a local server and checks that
// InitialParams keeps every entry of it, BatchNorm's buffers included, but
// fc's, which keep their fresh initialisation. It returns the file.
func checkPretrainedResNet(t *testing.T, cfg Config) string {
	t.Helper()
	spec, err := cfg.modelSpec()
	mustPT(t, err)
	base := spec.Torchvision(1000).StateSpecs()
	src := filepath.Join(t.TempDir(), "resnet.safetensors")
	mustPT(t, weights.WriteSafetensors(src, indexedState(t, base), nil))
	sum, err := sha256OfFile(src)
	mustPT(t, err)
	name := cfg.Model + "-" + sum[:8] + ".safetensors"
	srv := serveOne(t, "/models/"+name, src)
	cfg.Pretrained, cfg.WeightsURL, cfg.CacheDir = PretrainedTorchvision, srv.URL+"/models/"+name, t.TempDir()
	mustPT(t, cfg.Validate())
	m, err := BuildModelFor(cfg)
	mustPT(t, err)
	sd, err := InitialParams(context.Background(), m, cfg, discardLog(), nil)
	mustPT(t, err)
	if _, err := os.Stat(filepath.Join(cfg.CacheDir, "weights", name)); err != nil {
		t.Errorf("not downloaded into the cache: %v", err)
	}
	fresh, err := m.InitStateDictScheme(cfg.Seed, nn.InitTorch)
	mustPT(t, err)
	if want := m.StateSpecs(); sd.Len() != len(want) {
		t.Fatalf("%d tensors, want the model's %d", sd.Len(), len(want))
	}
	for i, s := range base {
		got, ok := sd.Get(s.Name)
		if !ok {
			t.Fatalf("no %s", s.Name)
		}
		if strings.HasPrefix(s.Name, "fc.") {
			if !slices.Equal(got.Data, fresh.Tensors[s.Name].Data) {
				t.Errorf("%s: not the fresh initialisation (the surgery replaced fc)", s.Name)
			}
			continue
		}
		if got.Data[0] != float32(i+1) || got.Data[len(got.Data)-1] != float32(i+1) {
			t.Errorf("%s: %v ... %v, want the file's %d", s.Name, got.Data[0], got.Data[len(got.Data)-1], i+1)
		}
	}
	return src
}

// TestPretrainedResNet: --pretrained torchvision for a ResNet (narrow, see
// narrowResNet, against its own 1000-class shape) keeps every state_dict
// entry of the downloaded file but fc's; torchvision has no weights for a
// narrow ResNet, so its default URL is refused.
func TestPretrainedResNet(t *testing.T) {
	cfg := narrowResNet()
	checkPretrainedResNet(t, cfg)
	cfg.Pretrained, cfg.CacheDir = PretrainedTorchvision, t.TempDir()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "no weights for ResNet-18 (width 8)") {
		t.Errorf("a narrow ResNet with torchvision's weights: %v", err)
	}
	if _, err := pretrainedFile(context.Background(), cfg, discardLog(), nil); err == nil || !strings.Contains(err.Error(), "--pretrained none") {
		t.Errorf("pretrainedFile for a narrow ResNet: %v", err)
	}
}

// TestPretrainedResNetWrongFiles: files that are not torchvision's ResNet-18
// are refused for --model resnet18, the error naming the file, what it looks
// like and the tensors: real torch.save files of a narrow ResNet (the layers
// parity fixture: 4 channels wide, stages of 2, 1, 1, 1 blocks) and of the
// narrow AlexNet.
func TestPretrainedResNetWrongFiles(t *testing.T) {
	for _, c := range []struct {
		file string
		want []string
	}{
		{"parity_resnet_weights.pth", []string{"is not torchvision's ResNet-18: ", `tensor "conv1.weight" has shape [4 3 7 7] in the file, want [64 3 7 7]`,
			`tensor "fc.weight" has shape [10 32] in the file, want [1000 512]`, "missing: layer2.1.bn1.bias"}},
		{"parity_small_weights.pth", []string{"is not torchvision's ResNet-18 (it looks like AlexNet (10 classes, classifier.4 24 wide)): ", "missing: bn1.bias", "unexpected: classifier.1.bias"}},
	} {
		cfg := Defaults()
		cfg.Model, cfg.Pretrained = ModelResNet18, filepath.Join("..", "layers", "testdata", c.file)
		m, err := BuildModelFor(cfg)
		mustPT(t, err)
		_, err = InitialParams(context.Background(), m, cfg, discardLog(), nil)
		for _, s := range append(c.want, cfg.Pretrained) {
			if err == nil || !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %v\nwant it to say %q", c.file, err, s)
			}
		}
	}
}

// TestPretrainedResNet18FullShape is TestPretrainedResNet at torchvision's
// ResNet-18 shape (11.7M floats: a 45 MiB file), checked against
// nn.ResNet18(1000).StateSpecs; the same file offered to --model resnet50 is
// refused, saying it looks like ResNet-18 and naming the misfit tensors.
// Skipped with -short.
func TestPretrainedResNet18FullShape(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and downloads a 45 MiB file; run without -short")
	}
	cfg := Defaults()
	cfg.Model, cfg.Seed = ModelResNet18, 3
	src := checkPretrainedResNet(t, cfg)
	if spec, _ := cfg.modelSpec(); !slices.EqualFunc(spec.Torchvision(1000).StateSpecs(), nn.ResNet18(1000).StateSpecs(), func(a, b weights.Spec) bool {
		return a.Name == b.Name && slices.Equal(a.Shape, b.Shape)
	}) {
		t.Error("the file checked against is not nn.ResNet18(1000)'s")
	}

	cfg.Model, cfg.Pretrained = ModelResNet50, src
	m, err := BuildModelFor(cfg)
	mustPT(t, err)
	_, err = InitialParams(context.Background(), m, cfg, discardLog(), nil)
	for _, s := range []string{src, "is not torchvision's ResNet-50 (it looks like ResNet-18 (1000 classes))", `tensor "fc.weight" has shape [1000 512] in the file, want [1000 2048]`, "missing: layer1.0.bn3.bias"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("a ResNet-18 file for resnet50: %v\nwant it to say %q", err, s)
		}
	}
}

// serveOne serves the file src at urlPath (404 elsewhere) until the test ends.
func serveOne(t testing.TB, urlPath, src string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != urlPath {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, src)
	}))
	t.Cleanup(srv.Close)
	return srv
}
