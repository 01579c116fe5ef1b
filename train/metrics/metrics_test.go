package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func sampleRecords() (Config, []Step, []Epoch) {
	cfg := Config{
		Schema: SchemaVersion, Model: "alexnet", Pretrained: true, Dataset: "cifar10",
		ImageSize: 224, Batch: 64, Epochs: 2, LR: 0.001, Momentum: 0.9, Seed: 7,
		Device:  "llvmpipe (LLVM 19.1.7, 256 bits)",
		Classes: []string{"a", "b", "c"}, TrainImages: 640, TestImages: 30,
		StepsPerEpoch: 10, LogEvery: 5, Time: t0, Extra: map[string]string{"git": "abc123"},
	}
	steps := []Step{
		{Epoch: 1, Step: 5, Images: 320, RunningLoss: 1.5, TrainAcc: 0.4, LR: 0.001, ImagesPerS: 812.5, Time: t0.Add(time.Second)},
		{Epoch: 1, Step: 10, Images: 640, RunningLoss: 1.2, TrainAcc: 0.5, ImagesPerS: 830, Time: t0.Add(2 * time.Second)},
		{Epoch: 2, Step: 15, Images: 960, RunningLoss: math.NaN(), TrainAcc: 0.55, ImagesPerS: 829, Time: t0.Add(3 * time.Second)},
	}
	epochs := []Epoch{{
		Epoch: 1, Step: 10, TrainLoss: 1.3, TrainAcc: 0.45, TestLoss: 1.1, TestAcc: 0.6,
		PerClassAcc:  []float64{0.5, 0.7, math.NaN()},
		Confusion:    [][]int64{{5, 5, 0}, {3, 7, 0}, {0, 0, 0}},
		EpochSeconds: 2.5, ImagesPerS: 820, Time: t0.Add(2500 * time.Millisecond),
	}}
	return cfg, steps, epochs
}

// eq compares with NaN == NaN.
func eq(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb) && reflect.DeepEqual(nanFree(a), nanFree(b))
}

func nanFree(v any) any {
	switch x := v.(type) {
	case []Step:
		out := make([]Step, len(x))
		copy(out, x)
		for i := range out {
			if math.IsNaN(out[i].RunningLoss) {
				out[i].RunningLoss = -1
			}
		}
		return out
	case []Epoch:
		out := make([]Epoch, len(x))
		copy(out, x)
		for i := range out {
			pc := append([]float64(nil), out[i].PerClassAcc...)
			for j := range pc {
				if math.IsNaN(pc[j]) {
					pc[j] = -1
				}
			}
			out[i].PerClassAcc = pc
		}
		return out
	}
	return v
}

func writeSample(t *testing.T, path string) (Config, []Step, []Epoch) {
	t.Helper()
	cfg, steps, epochs := sampleRecords()
	w, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	for i, s := range steps {
		if err := w.WriteStep(s); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if err := w.WriteEpoch(epochs[0]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg, steps, epochs
}

func TestRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run-a")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, steps, epochs := writeSample(t, filepath.Join(dir, FileName))

	run, err := Read(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Warnings) != 0 {
		t.Errorf("warnings: %v", run.Warnings)
	}
	if run.Name != "run-a" {
		t.Errorf("name %q, want run-a", run.Name)
	}
	if run.Config == nil || !reflect.DeepEqual(*run.Config, cfg) {
		t.Errorf("config\n got %+v\nwant %+v", run.Config, cfg)
	}
	if !eq(run.Steps, steps) {
		t.Errorf("steps\n got %+v\nwant %+v", run.Steps, steps)
	}
	if !math.IsNaN(run.Steps[2].RunningLoss) {
		t.Errorf("NaN loss read back as %v", run.Steps[2].RunningLoss)
	}
	if !eq(run.Epochs, epochs) {
		t.Errorf("epochs\n got %+v\nwant %+v", run.Epochs, epochs)
	}
	if got := run.StepsPerEpoch(); got != 10 {
		t.Errorf("StepsPerEpoch %d, want 10", got)
	}
	if e, ok := run.Epoch(-1); !ok || e.Epoch != 1 {
		t.Errorf("Epoch(-1) = %v, %v", e, ok)
	}
	if _, ok := run.Epoch(2); ok {
		t.Errorf("Epoch(2) found")
	}
	if err := run.Epochs[0].Validate(3); err != nil {
		t.Error(err)
	}
	if err := run.Epochs[0].Validate(4); err == nil {
		t.Error("Validate(4) passed a 3-class epoch")
	}
}

func TestLineFormat(t *testing.T) {
	cfg, steps, epochs := sampleRecords()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteStep(steps[2]); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteEpoch(epochs[0]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteStep(steps[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	for i, kind := range []string{KindConfig, KindStep, KindEpoch} {
		if !strings.HasPrefix(lines[i], `{"kind":"`+kind+`",`) {
			t.Errorf("line %d does not start with kind %q: %s", i+1, kind, lines[i])
		}
	}
	if !strings.Contains(lines[1], `"running_loss":null`) {
		t.Errorf("NaN not written as null: %s", lines[1])
	}
	if !strings.Contains(lines[1], `"time":"2025-03-01T12:00:03Z"`) {
		t.Errorf("time not RFC 3339: %s", lines[1])
	}
	if !strings.Contains(lines[2], `"per_class_acc":[0.5,0.7,null],"confusion":[[5,5,0],[3,7,0],[0,0,0]]`) {
		t.Errorf("epoch line: %s", lines[2])
	}
}

func TestTruncatedLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	writeSample(t, path)
	b, _ := os.ReadFile(path)
	partial := `{"kind":"epoch","epoch":2,"step":20,"train_loss":0.9,"per_cla`
	if err := os.WriteFile(path, append(b, partial...), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	run, err := Read(path, logger)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Steps) != 3 || len(run.Epochs) != 1 {
		t.Errorf("%d steps, %d epochs; want 3, 1", len(run.Steps), len(run.Epochs))
	}
	if len(run.Warnings) != 1 || !errors.Is(run.Warnings[0], ErrTruncated) || run.Warnings[0].Line != 6 {
		t.Errorf("warnings %v, want one truncated at line 6", run.Warnings)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "truncated") {
		t.Errorf("no warning logged: %q", logs.String())
	}

	// Appending after a crash starts a fresh line, and the cut line stays
	// a (non-final) malformed line.
	w, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, _, epochs := sampleRecords()
	e2 := epochs[0]
	e2.Epoch = 2
	if err := w.WriteEpoch(e2); err != nil {
		t.Fatal(err)
	}
	w.Close()
	run, err = Read(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Epochs) != 2 || len(run.Warnings) != 1 || !errors.Is(run.Warnings[0], ErrMalformed) ||
		errors.Is(run.Warnings[0], ErrTruncated) {
		t.Errorf("after append: %d epochs, warnings %v", len(run.Epochs), run.Warnings)
	}
}

func TestGarbageAndUnknown(t *testing.T) {
	in := strings.Join([]string{
		`{"kind":"config","model":"alexnet","classes":["x","y"],"future_field":{"a":[1,2]},"batch":32}`,
		`this is not json`,
		``,
		`{"kind":"step","epoch":1,"step":1,"running_loss":2.3,"train_acc":0.1,"gpu_temp_c":71}`,
		`{"kind":"bench","kernel":"gemm","ms":1.2}`,
		`{"epoch":1}`,
		`[1,2,3]`,
		`{"kind":"step","epoch":"one"}`,
		`{"kind":"epoch","epoch":1,"test_acc":0.5,"new_metric":42,"per_class_acc":[0.5,0.5]}`,
	}, "\n") + "\n"
	var logs bytes.Buffer
	run, err := Parse(strings.NewReader(in), "x", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if run.Config == nil || run.Config.Model != "alexnet" || run.Config.Batch != 32 || len(run.Config.Classes) != 2 {
		t.Errorf("config %+v", run.Config)
	}
	if len(run.Steps) != 1 || run.Steps[0].RunningLoss != 2.3 {
		t.Errorf("steps %+v", run.Steps)
	}
	if len(run.Epochs) != 1 || run.Epochs[0].TestAcc != 0.5 {
		t.Errorf("epochs %+v", run.Epochs)
	}
	want := map[int]error{2: ErrMalformed, 5: ErrUnknownKind, 6: ErrUnknownKind, 7: ErrMalformed, 8: ErrMalformed}
	if len(run.Warnings) != len(want) {
		t.Errorf("warnings %v, want lines 2, 5, 6, 7, 8", run.Warnings)
	}
	for _, w := range run.Warnings {
		if !errors.Is(w, want[w.Line]) {
			t.Errorf("line %d: %v, want %v", w.Line, w.Err, want[w.Line])
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != len(want) {
		t.Errorf("%d warnings logged, want %d:\n%s", n, len(want), logs.String())
	}
}

func TestRestartReplacesLaterRecords(t *testing.T) {
	in := `{"kind":"step","epoch":1,"step":5}
{"kind":"step","epoch":1,"step":10}
{"kind":"epoch","epoch":1,"step":10}
{"kind":"step","epoch":2,"step":15}
{"kind":"epoch","epoch":2,"step":20}
{"kind":"step","epoch":2,"step":15,"running_loss":9}
{"kind":"epoch","epoch":2,"step":20,"test_acc":0.9}
`
	run, err := Parse(strings.NewReader(in), "r", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Steps) != 3 || run.Steps[2].RunningLoss != 9 {
		t.Errorf("steps %+v", run.Steps)
	}
	if len(run.Epochs) != 2 || run.Epochs[1].TestAcc != 0.9 {
		t.Errorf("epochs %+v", run.Epochs)
	}
	if got := run.StepsPerEpoch(); got != 10 {
		t.Errorf("StepsPerEpoch from epoch 1 = %d, want 10", got)
	}
	if got := run.ClassNames(); got != nil {
		t.Errorf("ClassNames = %v, want nil", got)
	}
}

func TestReadMissing(t *testing.T) {
	_, err := Read(filepath.Join(t.TempDir(), "nope", FileName), nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not exist", err)
	}
}

type flushBuf struct {
	bytes.Buffer
	flushes int
}

func (f *flushBuf) Flush() error { f.flushes++; return nil }

func TestWriterFlushes(t *testing.T) {
	var fb flushBuf
	w := NewWriter(&fb)
	for i := range 3 {
		if err := w.WriteStep(Step{Epoch: 1, Step: i + 1}); err != nil {
			t.Fatal(err)
		}
	}
	if fb.flushes != 3 {
		t.Errorf("%d flushes, want 3", fb.flushes)
	}
}
