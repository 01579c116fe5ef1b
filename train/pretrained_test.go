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
	m, err := BuildModel(false)
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
			m, err := BuildModel(false)
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

	m, err := BuildModel(false)
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
	full := &weights.StateDict{}
	for i, s := range nn.AlexNet(1000).Specs() {
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		data := make([]float32, n)
		for j := range data {
			data[j] = float32(i + 1)
		}
		mustPT(t, full.Add(s.Name, &weights.Tensor{Shape: s.Shape, Data: data}))
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "alexnet.safetensors")
	mustPT(t, weights.WriteSafetensors(src, full, nil))
	sum, err := sha256OfFile(src)
	mustPT(t, err)
	name := "alexnet-full-" + sum[:8] + ".safetensors"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/"+name {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, src)
	}))
	defer srv.Close()

	m, err := BuildModel(false)
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
