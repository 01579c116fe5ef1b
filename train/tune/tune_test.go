package tune_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vktrain/layers"
	"vktrain/layers/nn"
	"vktrain/train"
	"vktrain/train/tune"
	"vktrain/vk"
)

// openRuntime opens the default device with validation, failing the test on
// any message.
func openRuntime(t *testing.T) *layers.Runtime {
	t.Helper()
	dev, err := vk.Open(vk.Options{Validate: true, PipelineCacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rt := layers.NewRuntime(dev)
	t.Cleanup(func() {
		rt.Close()
		if err := dev.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for _, m := range dev.Messages() {
			t.Errorf("validation: %s", m)
		}
	})
	return rt
}

// smallNetwork is the modified AlexNet's training layout at 64x64, batch 1.
func smallNetwork(t *testing.T) layers.NetworkConfig {
	cfg := train.Defaults()
	cfg.ImageSize, cfg.Batch = 64, 2 // batch 2: the linear layers' forward passes are GEMMs (a GEMV at 1)
	ncfg := train.NetworkConfigFor(cfg, true)
	ncfg.ConvAlgo = layers.ConvWinograd4
	return ncfg
}

var quick = tune.Options{Mode: tune.Cached, Budget: time.Millisecond}

// alexNetPasses is how many passes Choose decides for the modified AlexNet's
// training at batch 2, and how many ways it times: features.0 (11x11 stride
// 4, im2col only) forward and backward-weights, on both GEMM kernels (its input
// needs no gradient); the 5x5 (im2col, F(2x2,5x5)) and the three 3x3
// convolutions (im2col and two Winograds) in three passes, each algorithm on
// both kernels; the linear layers' forward on both kernels, and their
// backward-data and backward-weights where not fused with the SGD step
// (fused, those are one kernel of their own).
func alexNetPasses(rt *layers.Runtime) (passes, ways int) {
	passes, ways = 2+4*3+3, 2*2+3*2*2+9*3*2+3*2
	if !rt.LinearFusesUpdate(&layers.Linear{In: 1024, Out: 10}, 2) {
		passes, ways = passes+2*3, ways+2*3*2
	}
	return passes, ways
}

// TestChooseCachesAndReuses: a first Choose times every pass with more than
// one way to compute it (see alexNetPasses) and saves the winners; a second,
// from the file, times nothing and chooses the same; Full times everything
// again.
func TestChooseCachesAndReuses(t *testing.T) {
	rt := openRuntime(t)
	model, err := train.BuildModel(train.ModelAlexNet, false)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cache, err := tune.OpenCache(dir, rt.Dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	ncfg := smallNetwork(t)
	var progress []int
	opts := quick
	opts.Progress = func(done, total int, what string) { progress = append(progress, done) }
	first, err := tune.Choose(context.Background(), rt, model, ncfg, cache, opts)
	if err != nil {
		t.Fatal(err)
	}
	passes, ways := alexNetPasses(rt)
	if len(first.Decisions) != passes {
		t.Fatalf("%d passes decided, want %d: %+v", len(first.Decisions), passes, first.Decisions)
	}
	if n := len(progress); n != ways+1 || progress[n-1] != ways {
		t.Errorf("progress calls %v, want 0..%d", progress, ways)
	}
	linear := 0
	for _, d := range first.Decisions {
		won := d.Entry.WayName()
		if d.Cached || d.Entry.TimesMS[won] <= 0 || len(d.Entry.TimesMS) < 2 {
			t.Errorf("%s %s: %+v", d.Layer, d.Pass, d)
		}
		for w, ms := range d.Entry.TimesMS {
			if ms < d.Entry.TimesMS[won] {
				t.Errorf("%s %s: chose %s (%.3f ms) over %s (%.3f ms)", d.Layer, d.Pass, won, d.Entry.TimesMS[won], w, ms)
			}
		}
		// A way screened out after one run was more than ScreenFactor times
		// slower than the best before it, so than the winner.
		for _, w := range d.Entry.Screened {
			if ms, ok := d.Entry.TimesMS[w]; !ok || w == won || ms < tune.ScreenFactor*d.Entry.TimesMS[won] {
				t.Errorf("%s %s: %s screened out at %.3f ms, the winner %s at %.3f", d.Layer, d.Pass, w, ms, won, d.Entry.TimesMS[won])
			}
		}
		g, err := layers.ParseGEMMVariant(d.Entry.GEMM)
		if err != nil || g == layers.GEMMAuto || first.GEMM[d.Layer][d.Pass] != g {
			t.Errorf("%s %s: GEMM choice %v, entry %q", d.Layer, d.Pass, first.GEMM[d.Layer][d.Pass], d.Entry.GEMM)
		}
		if strings.HasPrefix(d.Layer, "classifier.") {
			linear++
			// The key names the batch (a linear layer's other batches are other shapes).
			if want := tune.LinearKey(&layers.Linear{In: 9216, Out: 4096}, ncfg.Batch, d.Pass); d.Layer == "classifier.1" && d.Key != want {
				t.Errorf("%s %s: key %q, want %q", d.Layer, d.Pass, d.Key, want)
			}
			if d.Entry.Algo != "" || len(d.Entry.TimesMS) != 2 {
				t.Errorf("%s %s: a linear layer's entry %+v, want its two kernels and no algorithm", d.Layer, d.Pass, d.Entry)
			}
		}
	}
	if linear == 0 {
		t.Error("no linear layer's pass decided")
	}
	if got := first.Choices["features.0"]; got != [3]layers.ConvAlgo{} {
		t.Errorf("features.0 (11x11 stride 4): %v, want im2col", got)
	}
	if got := first.GEMM["features.0"]; got[layers.PassBackwardData] != layers.GEMMAuto || got[layers.PassForward] == layers.GEMMAuto {
		t.Errorf("features.0's GEMM kernels %v: want its forward chosen and no backward-data (its input needs no gradient)", got)
	}
	if _, err := os.Stat(cache.Path()); err != nil {
		t.Fatalf("cache not saved: %v", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(cache.Path()), ".*tmp*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	again, err := tune.OpenCache(dir, rt.Dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := tune.Choose(context.Background(), rt, model, ncfg, again, quick)
	if err != nil {
		t.Fatal(err)
	}
	checkFromCache(t, rt, model, ncfg, first, second)

	full := quick
	full.Mode = tune.Full
	third, err := tune.Choose(context.Background(), rt, model, ncfg, again, full)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range third.Decisions {
		if d.Cached {
			t.Errorf("%s %s taken from the cache under Full", d.Layer, d.Pass)
		}
	}
	if off, err := tune.Choose(context.Background(), rt, model, ncfg, again, tune.Options{Mode: tune.Off}); err != nil || off != nil {
		t.Errorf("Off: %v, %v; want nil, nil", off, err)
	}
}

// TestCacheBadFiles: a corrupt file, a stale one (other kernels, an older
// format) and an entry naming an algorithm that does not apply or a kernel
// that does not exist are each ignored with a warning and re-tuned; the file
// is then rewritten whole.
func TestCacheBadFiles(t *testing.T) {
	rt := openRuntime(t)
	model, err := train.BuildModel(train.ModelAlexNet, false)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path, err := tune.CachePath(dir, rt.Dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	ncfg := smallNetwork(t)
	passes, _ := alexNetPasses(rt)
	// A valid file to corrupt in five ways.
	good, err := tune.OpenCache(dir, rt.Dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tune.Choose(context.Background(), rt, model, ncfg, good, quick); err != nil {
		t.Fatal(err)
	}
	valid, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := json.Unmarshal(valid, &file); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(valid, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	fwd3 := tune.Key(&layers.Conv2D{C: 64, K: 192, R: 5, S: 5, StrideH: 1, StrideW: 1, PadH: 2, PadW: 2}, ncfg.Batch, 7, 7, layers.PassForward)
	for _, c := range []struct {
		name, warning string
		data          []byte
		retuned       int // decisions timed again
	}{
		{"corrupt", "corrupt", valid[:len(valid)/2], passes},
		{"stale", "stale", edit(func(m map[string]any) { m["kernels"] = "0123456789abcdef" }), passes},
		{"old format", "stale", edit(func(m map[string]any) { m["version"] = 1 }), passes},
		{"bad entry", "unusable", edit(func(m map[string]any) {
			m["entries"].(map[string]any)[fwd3] = map[string]any{"algo": "winograd4", "gemm": "texel", "times_ms": map[string]any{}}
		}), 1},
		{"bad kernel", "unusable", edit(func(m map[string]any) {
			m["entries"].(map[string]any)[fwd3] = map[string]any{"algo": "im2col", "gemm": "shared", "times_ms": map[string]any{}}
		}), 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			cache, err := tune.OpenCache(dir, rt.Dev, log)
			if err != nil {
				t.Fatal(err)
			}
			res, err := tune.Choose(context.Background(), rt, model, ncfg, cache, tune.Options{Mode: tune.Cached, Budget: time.Millisecond, Log: log})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), c.warning) {
				t.Errorf("no warning saying %q:\n%s", c.warning, logs.String())
			}
			timed := 0
			for _, d := range res.Decisions {
				if !d.Cached {
					timed++
				}
			}
			if timed != c.retuned {
				t.Errorf("%d passes timed again, want %d", timed, c.retuned)
			}
			if res.Choices["features.3"][layers.PassForward] == layers.ConvWinograd4 {
				t.Error("features.3 (5x5) given F(4x4,3x3)")
			}
			b, err := os.ReadFile(path)
			if err != nil || json.Unmarshal(b, &map[string]any{}) != nil {
				t.Errorf("cache not rewritten as valid JSON: %v", err)
			}
		})
	}
	if _, err := tune.ParseMode("sometimes"); err == nil || !strings.Contains(err.Error(), "off, cached or full") {
		t.Errorf("ParseMode(sometimes): %v", err)
	}
}

// TestChooseResNet tunes a ResNet (--model resnet18, 8 channels wide, at
// 32x32, batch 2): the convolutions inside its residual blocks are tuned,
// named as the network names them; equal convolutions at equal shapes (the
// blocks of a stage) are timed once and share the entry; and a second
// Choose answers from the cache alone with the same choices for every one
// of them.
func TestChooseResNet(t *testing.T) {
	rt := openRuntime(t)
	cfg := train.Defaults()
	cfg.Model, cfg.Width, cfg.ImageSize, cfg.Batch = train.ModelResNet18, 8, 32, 2
	model, err := train.BuildModelFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ncfg := train.NetworkConfigFor(cfg, true)
	ncfg.ConvAlgo = layers.ConvWinograd4
	dir := t.TempDir()
	cache, err := tune.OpenCache(dir, rt.Dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	progress := 0
	opts := quick
	opts.Progress = func(done, total int, what string) { progress++ }
	first, err := tune.Choose(context.Background(), rt, model, ncfg, cache, opts)
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string]tune.Entry{}
	timings := 0
	layersTuned := map[string]bool{}
	for _, d := range first.Decisions {
		layersTuned[d.Layer] = true
		if e, seen := entries[d.Key]; seen {
			if e.WayName() != d.Entry.WayName() || len(e.TimesMS) != len(d.Entry.TimesMS) {
				t.Errorf("%s %s: %+v, another pass of the key %+v", d.Layer, d.Pass, d.Entry, e)
			}
			continue
		}
		entries[d.Key] = d.Entry
		timings += len(d.Entry.TimesMS)
	}
	// Every convolution (the stem's 7x7, the blocks' 3x3, the 1x1
	// downsamples) and the fc layer.
	for _, l := range []string{"conv1", "layer1.0.conv1", "layer1.1.conv2", "layer2.0.conv1", "layer2.0.conv2", "layer2.0.downsample.0", "layer2.1.conv1", "layer4.1.conv2", "fc"} {
		if !layersTuned[l] {
			t.Errorf("%s not tuned; tuned %v", l, layersTuned)
		}
	}
	// conv1's forward and backward-weights (its input needs no gradient), the
	// other 19 convolutions' three passes, fc's forward and, unless fused
	// with the SGD step (one kernel of its own), its backward-data and
	// backward-weights.
	want := 2 + 19*3 + 1
	if !rt.LinearFusesUpdate(&layers.Linear{In: 512, Out: 10}, 2) {
		want += 2
	}
	if len(first.Decisions) != want || len(entries) >= len(first.Decisions) {
		t.Errorf("%d passes decided over %d keys, want %d over fewer keys", len(first.Decisions), len(entries), want)
	}
	if progress != timings+1 {
		t.Errorf("%d progress calls, want %d: each key's algorithms timed once, then the end", progress, timings+1)
	}
	again, err := tune.OpenCache(dir, rt.Dev, nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := tune.Choose(context.Background(), rt, model, ncfg, again, quick)
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Decisions) != len(first.Decisions) {
		t.Errorf("%d passes from the cache, %d tuned", len(second.Decisions), len(first.Decisions))
	}
	checkFromCache(t, rt, model, ncfg, first, second)
}

// checkFromCache checks that second, Choose's answer with first's cache, timed
// nothing, chose as first did, and that its choices build a network.
func checkFromCache(t *testing.T, rt *layers.Runtime, model *nn.Model, ncfg layers.NetworkConfig, first, second *tune.Result) {
	t.Helper()
	for _, d := range second.Decisions {
		if !d.Cached {
			t.Errorf("%s %s timed again with a full cache", d.Layer, d.Pass)
		}
	}
	for layer, c := range first.Choices {
		if second.Choices[layer] != c {
			t.Errorf("%s: %v from the cache, %v when tuned", layer, second.Choices[layer], c)
		}
	}
	if len(second.GEMM) != len(first.GEMM) {
		t.Errorf("GEMM kernels of %d layers from the cache, %d tuned", len(second.GEMM), len(first.GEMM))
	}
	for layer, g := range first.GEMM {
		if second.GEMM[layer] != g {
			t.Errorf("%s: GEMM kernels %v from the cache, %v when tuned", layer, second.GEMM[layer], g)
		}
	}
	for i, d := range second.Decisions {
		if i < len(first.Decisions) && (d.Layer != first.Decisions[i].Layer || d.Pass != first.Decisions[i].Pass) {
			t.Errorf("decision %d: %s %s from the cache, %s %s when tuned", i, d.Layer, d.Pass, first.Decisions[i].Layer, first.Decisions[i].Pass)
		}
	}
	ncfg.ConvChoices, ncfg.GEMMChoices = second.Choices, second.GEMM
	net, err := layers.NewNetwork(rt, model, ncfg)
	if err != nil {
		t.Fatal(err)
	}
	net.Close()
}
