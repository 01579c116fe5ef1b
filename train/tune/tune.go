// Package tune picks, on the device at hand, the fastest algorithm of every
// convolution pass of a network (im2col, Winograd F(2x2,RxR) or F(4x4,3x3),
// whichever apply), and keeps the winners in a per-device cache beside the
// pipeline cache, so that a network is timed once per device, driver, kernel
// build and shape, and every later run makes the same choice.
//
// Each pass is recorded alone, as vktrain bench records it, run once to compile
// its pipelines and then timed with GPU timestamps until a budget; the
// algorithm with the lowest median wins. Passes only one algorithm computes are
// not timed.
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
const formatVersion = 1

// Entry is the tuner's verdict on one convolution pass at one shape.
type Entry struct {
	Algo    string             `json:"algo"`     // the winner (layers.ConvAlgo's String)
	TimesMS map[string]float64 `json:"times_ms"` // median GPU time of every algorithm tried
	Tuned   time.Time          `json:"tuned"`
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

// MinRuns is the fewest timed runs per algorithm.
const MinRuns = 3

// Choices are a network's algorithms per convolution and pass
// (layers.NetworkConfig.ConvChoices).
type Choices = map[string][3]layers.ConvAlgo

// Decision is how one pass was chosen.
type Decision struct {
	Layer  string
	Pass   layers.ConvPass
	Key    string // the cache's key
	Entry  Entry  // the winner and every algorithm's time
	Cached bool   // from the cache, not timed now
}

// Result is Choose's answer: the choices, and a decision for every pass more
// than one algorithm applies to, in the network's order.
type Result struct {
	Choices   Choices
	Decisions []Decision
}

// Choose returns the algorithm of every convolution pass of model laid out by
// cfg (whose ConvChoices it ignores): from the cache, or timed on a probe
// network with cfg's shapes (closed before it returns) where the cache lacks
// them or opts.Mode is Full; passes of one key (equal convolutions at equal
// shapes, as in a ResNet's repeated blocks) are timed once. Passes the
// network does not run keep
// cfg.ConvAlgo's choice. Mode Off returns nil (cfg.ConvAlgo decides). The
// cache is saved when it gained entries.
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
	cfg.ConvChoices = nil
	if opts.Mode == Cached {
		if res, ok := fromCache(model, cfg, cache); ok {
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
	type trial struct {
		part  layers.StepPart
		pass  layers.ConvPass
		key   string
		algos []layers.ConvAlgo
	}
	choices := Choices{}
	res := &Result{Choices: choices}
	var todo, repeats []trial // repeats: a pass of the same key as one in todo (a ResNet's equal blocks), timed once
	queued := map[string]bool{}
	for _, p := range parts {
		pass, ok := p.ConvPass()
		if !ok {
			continue
		}
		if _, seen := choices[p.Layer]; !seen {
			choices[p.Layer] = p.Conv.Algo
		}
		var algos []layers.ConvAlgo
		for _, a := range layers.ConvAlgos {
			if p.Conv.AlgoApplies(a) {
				algos = append(algos, a)
			}
		}
		if len(algos) < 2 {
			continue
		}
		key := Key(p.Conv, p.Batch, p.ConvIn[0], p.ConvIn[1], pass)
		if opts.Mode == Cached {
			if e, ok := cache.Lookup(key); ok {
				a, err := layers.ParseConvAlgo(e.Algo)
				if err == nil && e.Algo != "" && slices.Contains(algos, a) {
					c := choices[p.Layer]
					c[pass] = a
					choices[p.Layer] = c
					res.Decisions = append(res.Decisions, Decision{Layer: p.Layer, Pass: pass, Key: key, Entry: e, Cached: true})
					continue
				}
				log.Warn("tuning cache entry unusable: re-tuning it", "key", key, "algo", e.Algo)
			}
		}
		t := trial{part: p, pass: pass, key: key, algos: algos}
		if queued[key] {
			repeats = append(repeats, t)
			continue
		}
		queued[key] = true
		todo = append(todo, t)
	}
	total := 0
	for _, t := range todo {
		total += len(t.algos)
	}
	done := 0
	for _, t := range todo {
		e := Entry{TimesMS: map[string]float64{}, Tuned: time.Now().UTC().Truncate(time.Second)}
		best := time.Duration(-1)
		for _, a := range t.algos {
			what := fmt.Sprintf("%s %s %s", t.part.Layer, t.pass, a)
			if opts.Progress != nil {
				opts.Progress(done, total, what)
			}
			med, err := timePass(ctx, rt.Dev, t.part, t.pass, a, opts.Budget)
			done++
			if err != nil {
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					return nil, err
				}
				log.Warn("tuning: an algorithm failed; not choosing it", "pass", what, "err", err)
				continue
			}
			e.TimesMS[a.String()] = float64(med.Microseconds()) / 1e3
			if best < 0 || med < best {
				best, e.Algo = med, a.String()
			}
		}
		if e.Algo == "" {
			return nil, fmt.Errorf("tune: %s %s: no algorithm ran", t.part.Layer, t.pass)
		}
		log.Debug("tuned", "key", t.key, "algo", e.Algo, "times_ms", e.TimesMS)
		cache.Put(t.key, e)
		res.Decisions = append(res.Decisions, Decision{Layer: t.part.Layer, Pass: t.pass, Key: t.key, Entry: e})
		a, _ := layers.ParseConvAlgo(e.Algo)
		c := choices[t.part.Layer]
		c[t.pass] = a
		choices[t.part.Layer] = c
	}
	for _, t := range repeats {
		e, _ := cache.Lookup(t.key) // timed above
		res.Decisions = append(res.Decisions, Decision{Layer: t.part.Layer, Pass: t.pass, Key: t.key, Entry: e})
		a, _ := layers.ParseConvAlgo(e.Algo)
		c := choices[t.part.Layer]
		c[t.pass] = a
		choices[t.part.Layer] = c
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

// fromCache answers Choose from the cache alone, without laying a probe
// network out, where the cache holds every pass of every convolution more
// than one algorithm applies to (all three when training, else the forward),
// in the order Choose decides them (the forwards, then the backward passes
// from the last layer). Otherwise (a pass missing or unusable) ok is false
// and Choose times what it must.
func fromCache(model *nn.Model, cfg layers.NetworkConfig, cache *Cache) (res *Result, ok bool) {
	side := cfg.Input.Crop
	steps, err := leaves(model, side)
	if err != nil {
		return nil, false
	}
	res = &Result{Choices: Choices{}}
	var backward []Decision
	for _, l := range steps {
		m, isConv := l.Module.(*nn.Conv2d)
		if !isConv {
			continue
		}
		c := &layers.Conv2D{C: m.InChannels, K: m.OutChannels, R: m.KernelSize[0], S: m.KernelSize[1],
			StrideH: m.Stride[0], StrideW: m.Stride[1], PadH: m.Padding[0], PadW: m.Padding[1]}
		c.SetAlgo(c.ChooseAlgo(cfg.ConvAlgo, l.Out[1], l.Out[2]))
		applies := 0
		for _, a := range layers.ConvAlgos {
			if c.AlgoApplies(a) {
				applies++
			}
		}
		if applies > 1 {
			passes := []layers.ConvPass{layers.PassForward}
			if cfg.Train {
				passes = append(passes, layers.PassBackwardWeights, layers.PassBackwardData)
			}
			var mine []Decision
			for _, pass := range passes {
				key := Key(c, cfg.Batch, l.In[1], l.In[2], pass)
				e, found := cache.Lookup(key)
				a, err := layers.ParseConvAlgo(e.Algo)
				if !found || e.Algo == "" || err != nil || !c.AlgoApplies(a) {
					return nil, false
				}
				c.Algo[pass] = a
				mine = append(mine, Decision{Layer: l.Path, Pass: pass, Key: key, Entry: e, Cached: true})
			}
			res.Decisions = append(res.Decisions, mine[0])
			backward = append(mine[1:], backward...)
		}
		res.Choices[l.Path] = c.Algo
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
		if pass, ok := p.ConvPass(); ok && p.Layer == d.Layer && pass == d.Pass {
			return i
		}
	}
	return len(parts)
}

// timePass records part's pass by algorithm a alone, runs it once to compile,
// then until budget (at least MinRuns times) and returns the median GPU time.
func timePass(ctx context.Context, dev *vk.Device, part layers.StepPart, pass layers.ConvPass, a layers.ConvAlgo, budget time.Duration) (time.Duration, error) {
	saved := part.Conv.Algo
	part.Conv.Algo[pass] = a
	defer func() { part.Conv.Algo = saved }()
	s, err := dev.NewStream("tune "+part.Layer+" "+part.Pass, vk.StreamOptions{Timestamps: true})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	if err := part.Record(s); err != nil {
		return 0, err
	}
	if err := s.End(); err != nil {
		return 0, err
	}
	if err := s.Run(); err != nil {
		return 0, err
	}
	var times []time.Duration
	start := time.Now()
	for len(times) < MinRuns || time.Since(start) < budget {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := s.Run(); err != nil {
			return 0, err
		}
		times = append(times, s.Total())
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}
