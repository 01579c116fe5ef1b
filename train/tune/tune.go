// Package tune picks, on the device at hand, the fastest way to compute every
// GEMM-based pass of a network: for a convolution's passes the algorithm (im2col,
// Winograd F(2x2,RxR) or F(4x4,3x3), whichever apply) and the GEMM kernel
// (texel or tiled), for a linear layer's the GEMM kernel. It keeps the winners
// in a per-device cache beside the pipeline cache, so that a network is timed
// once per device, driver, kernel build and shape, and every later run makes
// the same choice.
//
// Each pass is recorded alone, as vktrain bench records it, run once to compile
// its pipelines and then timed with GPU timestamps until a budget; the way
// with the lowest median wins. Passes with one way to compute them (a GEMV
// forward at batch 1, a weight gradient fused with its SGD step) are not timed.
package tune

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"vktrain/layers"
	"vktrain/layers/nn"
	"vktrain/shaders"
	"vktrain/train/fetch"
	"vktrain/vk"
)

// Mode says how far a network's choices come from measurement.
type Mode string

// The modes.
const (
	// Off times nothing: the network's ConvAlgo decides every pass (the
	// built-in choice by algorithm family).
	Off Mode = "off"
	// Cached uses the cache's winners and times only the passes it lacks (the
	// first run of a shape on a device), adding them to the cache.
	Cached Mode = "cached"
	// Full times every pass again and rewrites its entries.
	Full Mode = "full"
)

// ParseMode reads "off", "cached" or "full" ("" is Cached).
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Off, Cached, Full:
		return m, nil
	case "":
		return Cached, nil
	}
	return "", fmt.Errorf("tune %q: want off, cached or full", s)
}

// formatVersion is the cache file's format; a file of another is stale.
// Version 2 added the GEMM kernel and the linear layers.
const formatVersion = 2

// Entry is the tuner's verdict on one pass at one shape.
type Entry struct {
	Algo string `json:"algo,omitempty"` // a convolution's winning algorithm (layers.ConvAlgo's String); "" for a linear layer
	GEMM string `json:"gemm"`           // the winning GEMM kernel (layers.GEMMVariant's String)
	// TimesMS is the median GPU time of every way tried, by way's name
	// ("winograd4/tiled"; a linear layer's "texel").
	TimesMS map[string]float64 `json:"times_ms"`
	// Screened are the ways stopped after one run, more than ScreenFactor
	// times slower than the best before them: their time is that run's.
	Screened []string  `json:"screened,omitempty"`
	Tuned    time.Time `json:"tuned"`
}

// WayName names the winner as TimesMS does ("winograd4/texel", a linear
// layer's "tiled").
func (e Entry) WayName() string {
	if e.Algo == "" {
		return e.GEMM
	}
	return e.Algo + "/" + e.GEMM
}

// Way is how a pass computes: a convolution's algorithm (zero for a linear
// layer's pass) and the GEMM kernel.
type Way struct {
	Algo layers.ConvAlgo
	GEMM layers.GEMMVariant
	conv bool
}

// String names w as TimesMS does.
func (w Way) String() string {
	if !w.conv {
		return w.GEMM.String()
	}
	return w.Algo.String() + "/" + w.GEMM.String()
}

// Way is the winner e records for a convolution's pass (conv) or a linear
// layer's, and whether it parses.
func (e Entry) Way(conv bool) (Way, bool) {
	g, err := layers.ParseGEMMVariant(e.GEMM)
	if err != nil || g == layers.GEMMAuto {
		return Way{}, false
	}
	w := Way{GEMM: g, conv: conv}
	if conv {
		a, err := layers.ParseConvAlgo(e.Algo)
		if err != nil || e.Algo == "" {
			return Way{}, false
		}
		w.Algo = a
	} else if e.Algo != "" {
		return Way{}, false
	}
	return w, true
}

// cacheFile is the JSON on disk.
type cacheFile struct {
	Version int    `json:"version"`
	Device  string `json:"device"`
	Driver  string `json:"driver"`
	// Kernels is a hash of every compiled kernel: timings of another build are
	// stale (a kernel may have changed speed).
	Kernels string           `json:"kernels"`
	Entries map[string]Entry `json:"entries"`
}

// Cache is the tuner's per-device cache: one JSON file per device UUID and
// driver version under the cache directory's tune/ folder.
type Cache struct {
	path  string // "" when not persisted
	file  cacheFile
	dirty bool
	log   *slog.Logger
}

// kernelsHash identifies the compiled kernels.
func kernelsHash() string {
	h := sha256.New()
	for _, name := range shaders.Names() {
		b, _ := shaders.SPIRV(name)
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// CachePath is where dev's tuning cache lives under dir ("" for the default
// cache directory, $VKTRAIN_CACHE or the user cache directory).
func CachePath(dir string, dev *vk.Device) (string, error) {
	if dir == "" {
		var err error
		if dir, err = vk.DefaultCacheDir(); err != nil {
			return "", err
		}
	}
	info := dev.Info
	return filepath.Join(dir, "tune", fmt.Sprintf("%s-%08x.json", hex.EncodeToString(info.DeviceUUID[:]), info.DriverVersion)), nil
}

// OpenCache reads dev's cache from dir (see CachePath; "-" keeps it in memory
// only). A missing file is an empty cache; an unreadable, corrupt or stale one
// (another format, device, driver or kernel build) is ignored with a warning
// and replaced when the cache is next saved.
func OpenCache(dir string, dev *vk.Device, log *slog.Logger) (*Cache, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	info := dev.Info
	c := &Cache{log: log, file: cacheFile{Version: formatVersion, Device: info.Name,
		Driver: fmt.Sprintf("%s %08x", info.DriverName, info.DriverVersion), Kernels: kernelsHash(), Entries: map[string]Entry{}}}
	if dir == "-" {
		return c, nil
	}
	path, err := CachePath(dir, dev)
	if err != nil {
		return nil, fmt.Errorf("tune: %w", err)
	}
	c.path = path
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		log.Warn("tuning cache unreadable: re-tuning", "path", path, "err", err)
		return c, nil
	}
	var f cacheFile
	switch err := json.Unmarshal(b, &f); {
	case err != nil:
		log.Warn("tuning cache corrupt: ignoring it and re-tuning", "path", path, "err", err)
	case f.Version != formatVersion || f.Device != c.file.Device || f.Driver != c.file.Driver:
		log.Warn("tuning cache stale (another format, device or driver): re-tuning", "path", path,
			"version", f.Version, "device", f.Device, "driver", f.Driver)
	case f.Kernels != c.file.Kernels:
		log.Warn("tuning cache stale (made with another build of the kernels): re-tuning", "path", path)
	default:
		if f.Entries != nil {
			c.file.Entries = f.Entries
		}
	}
	return c, nil
}

// Path is the cache's file ("" when it is not persisted).
func (c *Cache) Path() string { return c.path }

// Len is the number of entries.
func (c *Cache) Len() int { return len(c.file.Entries) }

// Lookup returns the entry of key and whether the cache holds a usable one.
func (c *Cache) Lookup(key string) (Entry, bool) {
	e, ok := c.file.Entries[key]
	return e, ok
}

// Put records e under key.
func (c *Cache) Put(key string, e Entry) {
	c.file.Entries[key] = e
	c.dirty = true
}

// Save writes the cache if it changed, atomically (a temporary file renamed
// over the old one).
func (c *Cache) Save() error {
	if c.path == "" || !c.dirty {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return fmt.Errorf("tune: saving the cache: %w", err)
	}
	err := fetch.WriteFileAtomic(c.path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(c.file)
	})
	if err != nil {
		return fmt.Errorf("tune: saving the cache: %w", err)
	}
	c.dirty = false
	return nil
}

// Key names a convolution pass at a shape: the convolution's geometry, its
// input (channels x batch x height x width) and the pass.
func Key(c *layers.Conv2D, batch, h, w int, pass layers.ConvPass) string {
	return fmt.Sprintf("conv %d->%d %dx%d/%d pad %d, in %dx%dx%dx%d, %s", c.C, c.K, c.R, c.S, c.StrideH, c.PadH, c.C, batch, h, w, pass)
}

// LinearKey names a linear layer's pass at a batch.
func LinearKey(l *layers.Linear, batch int, pass layers.ConvPass) string {
	return fmt.Sprintf("linear %d->%d, batch %d, %s", l.In, l.Out, batch, pass)
}

// Options are how Choose times.
type Options struct {
	Mode Mode
	// Budget is the time spent repeating each algorithm of a pass after its
	// warm-up (at least MinRuns runs); 0 means DefaultBudget.
	Budget time.Duration
	// Progress, when set, is told of each pass timed (done of total).
	Progress func(done, total int, what string)
	Log      *slog.Logger
}

// DefaultBudget is the default time spent timing one algorithm of one pass.
const DefaultBudget = 150 * time.Millisecond

// MinRuns is the fewest timed runs per way not screened out.
const MinRuns = 3

// ScreenFactor screens slow ways out: a way whose first run (the warm-up)
// takes more than ScreenFactor times the best median before it is not
// repeated. The ways are tried the network's built-in choice first, so the
// bar is set early. (On lavapipe the tiled GEMM runs 10-20x slower than the
// texel one for most passes; repeating it took most of the tuning time.)
const ScreenFactor = 2

// Choices are a network's algorithms per convolution and pass
// (layers.NetworkConfig.ConvChoices).
type Choices = map[string][3]layers.ConvAlgo

// GEMMChoices are a network's GEMM kernels per convolution or linear layer
// and pass (layers.NetworkConfig.GEMMChoices).
type GEMMChoices = map[string][3]layers.GEMMVariant

// Decision is how one pass was chosen.
type Decision struct {
	Layer  string
	Pass   layers.ConvPass
	Key    string // the cache's key
	Entry  Entry  // the winner and every algorithm's time
	Cached bool   // from the cache, not timed now
}

// Result is Choose's answer: the choices, and a decision for every pass with
// more than one way to compute it, in the network's order.
type Result struct {
	Choices   Choices     // every convolution's algorithms
	GEMM      GEMMChoices // the GEMM kernel of every pass decided (GEMMAuto elsewhere)
	Decisions []Decision
}

// Choose returns the algorithm of every convolution pass of model laid out by
// cfg (whose ConvChoices and GEMMChoices it ignores) and the GEMM kernel of
// every GEMM-based pass: from the cache, or timed on a probe network with
// cfg's shapes (closed before it returns) where the cache lacks them or
// opts.Mode is Full; passes of one key (equal layers at equal shapes, as in a
// ResNet's repeated blocks) are timed once. Passes the network does not run
// keep cfg.ConvAlgo's choice and the runtime's kernel. Mode Off returns nil
// (cfg.ConvAlgo and the runtime's Variant decide). The cache is saved when it
// gained entries.
func Choose(ctx context.Context, rt *layers.Runtime, model *nn.Model, cfg layers.NetworkConfig, cache *Cache, opts Options) (*Result, error) {
	if opts.Mode == Off {
		return nil, nil
	}
	if opts.Budget <= 0 {
		opts.Budget = DefaultBudget
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.ConvChoices, cfg.GEMMChoices = nil, nil
	if opts.Mode == Cached {
		if res, ok := fromCache(rt, model, cfg, cache); ok {
			return res, nil
		}
	}
	probe, err := layers.NewNetwork(rt, model, cfg)
	if err != nil {
		return nil, fmt.Errorf("tune: %w", err)
	}
	defer probe.Close()
	kind := layers.EvalStep
	if cfg.Train {
		kind = layers.TrainStep
	}
	parts, err := probe.StepParts(kind)
	if err != nil {
		return nil, fmt.Errorf("tune: %w", err)
	}
	res := &Result{Choices: Choices{}, GEMM: GEMMChoices{}}
	decide := func(layer string, pass layers.ConvPass, w Way) {
		if w.conv {
			c := res.Choices[layer]
			c[pass] = w.Algo
			res.Choices[layer] = c
		}
		g := res.GEMM[layer]
		g[pass] = w.GEMM
		res.GEMM[layer] = g
	}
	var todo, repeats []trial // repeats: a pass of the same key as one in todo (a ResNet's equal blocks), timed once
	queued := map[string]bool{}
	for _, p := range parts {
		if p.Conv != nil {
			if _, seen := res.Choices[p.Layer]; !seen {
				res.Choices[p.Layer] = p.Conv.Algo
			}
		}
		t, ok := trialOf(p, rt.GEMMVariantFor(layers.GEMMAuto))
		if !ok {
			continue
		}
		if opts.Mode == Cached {
			if e, ok := cache.Lookup(t.key); ok {
				if w, ok := e.Way(p.Conv != nil); ok && slices.Contains(t.ways, w) {
					decide(p.Layer, t.pass, w)
					res.Decisions = append(res.Decisions, Decision{Layer: p.Layer, Pass: t.pass, Key: t.key, Entry: e, Cached: true})
					continue
				}
				log.Warn("tuning cache entry unusable: re-tuning it", "key", t.key, "algo", e.Algo, "gemm", e.GEMM)
			}
		}
		if queued[t.key] {
			repeats = append(repeats, t)
			continue
		}
		queued[t.key] = true
		todo = append(todo, t)
	}
	total := 0
	for _, t := range todo {
		total += len(t.ways)
	}
	done := 0
	for _, t := range todo {
		e := Entry{TimesMS: map[string]float64{}, Tuned: time.Now().UTC().Truncate(time.Second)}
		best, bestWay := time.Duration(-1), Way{}
		for _, w := range t.ways {
			what := fmt.Sprintf("%s %s %s", t.part.Layer, t.pass, w)
			if opts.Progress != nil {
				opts.Progress(done, total, what)
			}
			med, screened, err := timePass(ctx, rt.Dev, t.part, w, opts.Budget, best)
			done++
			if err != nil {
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					return nil, err
				}
				log.Warn("tuning: a way failed; not choosing it", "pass", what, "err", err)
				continue
			}
			e.TimesMS[w.String()] = float64(med.Microseconds()) / 1e3
			if screened {
				e.Screened = append(e.Screened, w.String())
				continue
			}
			if best < 0 || med < best {
				best, bestWay = med, w
			}
		}
		if best < 0 {
			return nil, fmt.Errorf("tune: %s %s: no way ran", t.part.Layer, t.pass)
		}
		e.GEMM = bestWay.GEMM.String()
		if bestWay.conv {
			e.Algo = bestWay.Algo.String()
		}
		log.Debug("tuned", "key", t.key, "way", bestWay, "times_ms", e.TimesMS)
		cache.Put(t.key, e)
		res.Decisions = append(res.Decisions, Decision{Layer: t.part.Layer, Pass: t.pass, Key: t.key, Entry: e})
		decide(t.part.Layer, t.pass, bestWay)
	}
	for _, t := range repeats {
		e, _ := cache.Lookup(t.key) // timed above
		w, _ := e.Way(t.part.Conv != nil)
		res.Decisions = append(res.Decisions, Decision{Layer: t.part.Layer, Pass: t.pass, Key: t.key, Entry: e})
		decide(t.part.Layer, t.pass, w)
	}
	if opts.Progress != nil && total > 0 {
		opts.Progress(total, total, "")
	}
	if err := cache.Save(); err != nil {
		return nil, err
	}
	slices.SortStableFunc(res.Decisions, func(a, b Decision) int { return order(parts, a) - order(parts, b) })
	return res, nil
}

// trial is one pass to decide.
type trial struct {
	part layers.StepPart
	pass layers.ConvPass
	key  string // the cache's
	ways []Way  // to time
}

// trialOf is what tuning part p means: its pass, its cache key and the ways
// to time (every convolution algorithm that applies, each on every GEMM
// kernel; a linear layer's pass on every kernel), the part's own algorithm on
// kernel first first, then its other algorithms on first, then the other
// kernels; ok is false for a part without a choice of GEMM kernel (see
// layers.StepPart.GEMM).
func trialOf(p layers.StepPart, first layers.GEMMVariant) (t trial, ok bool) {
	t.part = p
	if p.GEMM == nil {
		return t, false
	}
	pass, err := layers.ParseConvPass(p.Pass)
	if err != nil {
		return t, false
	}
	t.pass = pass
	kernels := []layers.GEMMVariant{first}
	for _, g := range layers.GEMMVariants {
		if g != first {
			kernels = append(kernels, g)
		}
	}
	switch {
	case p.Conv != nil:
		t.key = Key(p.Conv, p.Batch, p.ConvIn[0], p.ConvIn[1], pass)
		algos := []layers.ConvAlgo{p.Conv.Algo[pass]}
		for _, a := range layers.ConvAlgos {
			if a != algos[0] && p.Conv.AlgoApplies(a) {
				algos = append(algos, a)
			}
		}
		for _, g := range kernels {
			for _, a := range algos {
				t.ways = append(t.ways, Way{Algo: a, GEMM: g, conv: true})
			}
		}
	case p.Linear != nil:
		t.key = LinearKey(p.Linear, p.Batch, pass)
		for _, g := range kernels {
			t.ways = append(t.ways, Way{GEMM: g})
		}
	default:
		return t, false
	}
	return t, len(t.ways) > 1
}

// fromCache answers Choose from the cache alone, without laying a probe
// network out, where the cache holds every pass Choose would decide: each
// convolution's and linear layer's forward and, when training, its
// backward-weights and backward-data (but for the first layer with
// parameters, whose input needs no gradient, and a linear weight fused with
// its SGD step, whose one kernel computes both), in the order Choose decides
// them (the forwards, then the backward passes from the last layer). Otherwise (a pass missing or
// unusable, or a network laid out otherwise, e.g. with frozen layers) ok is
// false and Choose lays the probe out, timing only what the cache lacks.
func fromCache(rt *layers.Runtime, model *nn.Model, cfg layers.NetworkConfig, cache *Cache) (res *Result, ok bool) {
	side := cfg.Input.Crop
	steps, err := leaves(model, side)
	if err != nil {
		return nil, false
	}
	res = &Result{Choices: Choices{}, GEMM: GEMMChoices{}}
	var backward []Decision
	upstreamParams := false // a layer before this one has parameters: its input needs a gradient
	for _, l := range steps {
		type passKey struct {
			pass layers.ConvPass
			key  string
		}
		var passes []passKey
		var conv *layers.Conv2D
		switch m := l.Module.(type) {
		case *nn.Conv2d:
			conv = &layers.Conv2D{C: m.InChannels, K: m.OutChannels, R: m.KernelSize[0], S: m.KernelSize[1],
				StrideH: m.Stride[0], StrideW: m.Stride[1], PadH: m.Padding[0], PadW: m.Padding[1]}
			conv.SetAlgo(conv.ChooseAlgo(cfg.ConvAlgo, l.Out[1], l.Out[2]))
			passes = append(passes, passKey{layers.PassForward, Key(conv, cfg.Batch, l.In[1], l.In[2], layers.PassForward)})
			if cfg.Train {
				passes = append(passes, passKey{layers.PassBackwardWeights, Key(conv, cfg.Batch, l.In[1], l.In[2], layers.PassBackwardWeights)})
				if upstreamParams {
					passes = append(passes, passKey{layers.PassBackwardData, Key(conv, cfg.Batch, l.In[1], l.In[2], layers.PassBackwardData)})
				}
			}
		case *nn.Linear:
			lin := &layers.Linear{In: m.InFeatures, Out: m.OutFeatures}
			if !layers.LinearGEMVForward(lin, cfg.Batch) {
				passes = append(passes, passKey{layers.PassForward, LinearKey(lin, cfg.Batch, layers.PassForward)})
			}
			// A weight fused with its SGD step has one backward kernel, its
			// input gradient included (layers.Runtime.LinearBackwardUpdate).
			if cfg.Train && (cfg.Adam != nil || cfg.UnfusedSGD || !rt.LinearFusesUpdate(lin, cfg.Batch)) {
				passes = append(passes, passKey{layers.PassBackwardWeights, LinearKey(lin, cfg.Batch, layers.PassBackwardWeights)})
				if upstreamParams {
					passes = append(passes, passKey{layers.PassBackwardData, LinearKey(lin, cfg.Batch, layers.PassBackwardData)})
				}
			}
		case *nn.BatchNorm2d:
			upstreamParams = true
			continue
		default:
			continue
		}
		upstreamParams = true
		var mine []Decision
		var gemm [3]layers.GEMMVariant
		for _, pk := range passes {
			e, found := cache.Lookup(pk.key)
			w, usable := e.Way(conv != nil)
			if !found || !usable || (conv != nil && !conv.AlgoApplies(w.Algo)) {
				return nil, false
			}
			if conv != nil {
				conv.Algo[pk.pass] = w.Algo
			}
			gemm[pk.pass] = w.GEMM
			mine = append(mine, Decision{Layer: l.Path, Pass: pk.pass, Key: pk.key, Entry: e, Cached: true})
		}
		if len(mine) > 0 {
			if mine[0].Pass == layers.PassForward {
				res.Decisions = append(res.Decisions, mine[0])
				mine = mine[1:]
			}
			backward = append(mine, backward...)
			res.GEMM[l.Path] = gemm
		}
		if conv != nil {
			res.Choices[l.Path] = conv.Algo
		}
	}
	res.Decisions = append(res.Decisions, backward...)
	return res, true
}

// leaves are model's leaf layers at a side x side input in the order a
// layers.Network lays them out: a residual block (nn.Block) opened into its
// main path, then its shortcut, named as the network names them
// ("layer1.0.conv1", "layer2.0.downsample.0").
func leaves(model *nn.Model, side int) ([]nn.Layer, error) {
	steps, err := model.Layers(3, side, side)
	if err != nil {
		return nil, err
	}
	var out []nn.Layer
	for _, l := range steps {
		b, ok := l.Module.(*nn.Block)
		if !ok {
			out = append(out, l)
			continue
		}
		main, shortcut, err := b.Layers(l.Path, l.In)
		if err != nil {
			return nil, err
		}
		out = append(append(out, main...), shortcut...)
	}
	return out, nil
}

// order is the index of d's pass among parts.
func order(parts []layers.StepPart, d Decision) int {
	for i, p := range parts {
		if p.GEMM != nil && p.Layer == d.Layer && p.Pass == d.Pass.String() {
			return i
		}
	}
	return len(parts)
}

// timePass records part computed way w alone, runs it once to
// compile and warm up, then until budget (at least MinRuns times) and returns
// the median GPU time; but where the first run took more than ScreenFactor
// times bar (the best median so far; none where negative), it returns that
// run's time with screened set.
func timePass(ctx context.Context, dev *vk.Device, part layers.StepPart, w Way, budget, bar time.Duration) (med time.Duration, screened bool, err error) {
	s, err := part.RecordWay(dev, "tune "+part.Layer+" "+part.Pass, w.Algo, w.GEMM)
	if err != nil {
		return 0, false, err
	}
	defer s.Close()
	if err := s.Run(); err != nil {
		return 0, false, err
	}
	if first := s.Total(); bar >= 0 && first > ScreenFactor*bar {
		return first, true, nil
	}
	var times []time.Duration
	start := time.Now()
	for len(times) < MinRuns || time.Since(start) < budget {
		if err := ctx.Err(); err != nil {
			return 0, false, err
		}
		if err := s.Run(); err != nil {
			return 0, false, err
		}
		times = append(times, s.Total())
	}
	slices.Sort(times)
	return times[len(times)/2], false, nil
}
