package bench

import (
	"encoding/json"
	"fmt"
	"os"
)

// SchemaID names the JSON format that Report marshals to (documented by
// testdata/schema.json); torch_bench.py writes the same.
const SchemaID = "vktrain-bench/1"

// Report is the result of a benchmark run, as written by `vktrain bench --json`
// and by torch_bench.py. Times are in milliseconds of GPU time (device time for
// PyTorch: wall time on the CPU, CUDA events on a GPU).
type Report struct {
	Schema    string   `json:"schema"`    // SchemaID
	Tool      string   `json:"tool"`      // "vktrain" or "pytorch"
	Version   string   `json:"version"`   // the tool's version
	Revision  string   `json:"revision"`  // git revision of vktrain, "unknown" if not known
	Time      string   `json:"time"`      // when it ran, RFC 3339
	Device    Device   `json:"device"`    // what it ran on
	Config    RunSpec  `json:"config"`    // what was measured
	Peaks     Peaks    `json:"peaks"`     // the device's measured peaks
	Kernels   []Kernel `json:"kernels"`   // one record per kernel (and variant)
	Skipped   []Skip   `json:"skipped"`   // kernels or variants that could not run here
	Step      Step     `json:"step"`      // the whole training step
	Inference Infer    `json:"inference"` // the forward pass alone
}

// Device describes the device.
type Device struct {
	Name       string `json:"name"`
	Type       string `json:"type"`        // "CPU", "discrete GPU", ... ("CUDA" for PyTorch on a GPU)
	Driver     string `json:"driver"`      // driver name and info (for PyTorch: the BLAS and backends)
	APIVersion string `json:"api_version"` // Vulkan version (for PyTorch: the torch version)
}

// RunSpec is the configuration of the run.
type RunSpec struct {
	ImageSize   int     `json:"image_size"`
	Batch       int     `json:"batch"`
	BudgetS     float64 `json:"budget_s"`            // time budget per kernel, seconds
	Count       int     `json:"count"`               // runs per kernel (0: until the budget)
	Variants    bool    `json:"variants"`            // every variant timed
	Filter      string  `json:"filter"`              // kernel name filter ("" for all)
	GEMMVariant string  `json:"gemm_variant"`        // the variant the runtime chose ("" for PyTorch)
	ConvAlgo    string  `json:"conv_algo,omitempty"` // the algorithm of the convolution passes not tuned (vktrain only)
	Threads     int     `json:"threads"`             // CPU threads (PyTorch; 0 where not applicable)
}

// Peaks are the device's measured reference figures.
type Peaks struct {
	FMAGFLOPS  float64 `json:"fma_gflops"` // fp32 multiply-add throughput, GFLOP/s
	CopyGBS    float64 `json:"copy_gbs"`   // copy bandwidth, GB/s (bytes read plus written)
	FMAKernel  string  `json:"fma_kernel"` // how each was measured
	CopyKernel string  `json:"copy_kernel"`
}

// Kernel is one benchmarked kernel: a pass of a layer at the model's shapes.
type Kernel struct {
	Name    string `json:"name"`            // "<layer> <pass>", plus " [variant]" for a variant the device does not use
	Layer   string `json:"layer"`           // layer path (as in the model's state_dict), or input/loss/sgd/flatten
	Type    string `json:"type"`            // module type, e.g. "Conv2d"
	Pass    string `json:"pass"`            // forward, backward-data, backward-weights, ...
	Variant string `json:"variant"`         // GEMM variant timed ("" where the kernel has none)
	Algo    string `json:"algo,omitempty"`  // convolution algorithm timed ("im2col", "winograd"; convolutions only)
	Chosen  bool   `json:"chosen"`          // the variant the device uses (true where there is none)
	Tuned   bool   `json:"tuned,omitempty"` // the way (Algo, Variant) the tuner picked for this pass (vktrain train's --tune)
	Shape   string `json:"shape"`           // the shapes, for people
	InStep  bool   `json:"in_step"`         // part of the recorded training step
	Runs    int    `json:"runs"`            // timed runs

	MedianMS float64 `json:"median_ms"`
	MinMS    float64 `json:"min_ms"`
	MaxMS    float64 `json:"max_ms"`
	FLOPs    float64 `json:"flops"`             // per run (0 for memory-bound kernels)
	Bytes    float64 `json:"bytes"`             // read plus written per run (0 for GEMM-like kernels)
	GFLOPS   float64 `json:"gflops,omitempty"`  // FLOPs / median, for GEMM-like kernels
	GBS      float64 `json:"gbs,omitempty"`     // bytes / median, for memory-bound kernels
	PctPeak  float64 `json:"pct_peak"`          // GFLOPS of the FMA peak, or GBS of the copy peak, in percent
	StepMS   float64 `json:"step_ms,omitempty"` // its time inside the recorded step (median over steps)
	Share    float64 `json:"share,omitempty"`   // StepMS over the step's median, in percent
}

// Skip is a kernel or variant that could not be timed, with why.
type Skip struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Step is the whole training step: preprocessing, forward, loss, backward, SGD.
type Step struct {
	Batch      int     `json:"batch"`
	Runs       int     `json:"runs"`
	MedianMS   float64 `json:"median_ms"`
	MinMS      float64 `json:"min_ms"`
	MaxMS      float64 `json:"max_ms"`
	ImagesPerS float64 `json:"images_per_s"` // Batch over the median step
	// WallImagesPerS is measured with the host in the loop: steps submitted
	// back to back (double-buffered) over wall-clock time.
	WallImagesPerS float64 `json:"wall_images_per_s"`
	FLOPs          float64 `json:"flops"`  // forward and backward FLOPs per step
	GFLOPS         float64 `json:"gflops"` // FLOPs over the median step
	Layers         []Layer `json:"layers"` // the step's time by layer (empty where not attributed)
	// Commands is the number of commands the recorded step holds (dispatches,
	// fills and copies, each timestamped): each costs a fixed overhead on the
	// device besides its work.
	Commands int `json:"commands,omitempty"`
	// TrafficBytes is the fewest bytes the step must move (every part's
	// operands read once and results written once), and TrafficMS that at the
	// device's copy peak: the step's floor where it is memory-bound.
	TrafficBytes float64 `json:"traffic_bytes,omitempty"`
	TrafficMS    float64 `json:"traffic_ms,omitempty"`
}

// Layer is the step's time spent in one layer, from per-dispatch timestamps.
type Layer struct {
	Layer      string  `json:"layer"`
	Type       string  `json:"type"`
	ForwardMS  float64 `json:"forward_ms"`
	BackwardMS float64 `json:"backward_ms"`
	TotalMS    float64 `json:"total_ms"`
	Share      float64 `json:"share"` // percent of the step
}

// Infer is the forward pass alone (evaluation: no dropout, with the loss).
type Infer struct {
	Batch1MS         float64 `json:"batch1_ms"` // latency at batch 1, median
	Batch1ImagesPerS float64 `json:"batch1_images_per_s"`
	Batch            int     `json:"batch"` // the batch of the throughput figure
	BatchMS          float64 `json:"batch_ms"`
	BatchImagesPerS  float64 `json:"batch_images_per_s"`
}

// ReadReport reads a report written by WriteJSON or torch_bench.py.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", path, err)
	}
	if r.Schema != SchemaID {
		return nil, fmt.Errorf("bench: %s: schema %q, want %q", path, r.Schema, SchemaID)
	}
	return &r, nil
}

// WriteJSON writes the report to path, indented.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: encoding the report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}
