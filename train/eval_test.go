package train

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"vktrain/layers"
	"vktrain/train/weights"
)

// evalRunConfig is a run that takes a few seconds on lavapipe: two steps of 4
// synthetic images at 64x64 (32 does not fit AlexNet's last pooling: see the
// report), then 32 test images. A step of the full AlexNet costs about half a
// second there, most of it in the classifier's 40M parameters.
func evalRunConfig() Config {
	cfg := Defaults()
	cfg.Pretrained, cfg.Data, cfg.ImageSize, cfg.Epochs = PretrainedNone, DataSynthetic, 64, 1
	cfg.TrainLimit, cfg.TestLimit, cfg.LogEvery, cfg.LR, cfg.Seed = 8, 32, 1, 0.01, 7
	return cfg
}

// evalRun trains evalRunConfig into a temporary run directory and returns it
// with what Run printed.
func evalRun(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	var out bytes.Buffer
	start := time.Now()
	if _, err := Run(context.Background(), evalRunConfig(), Options{RunDir: dir, Out: &out}); err != nil {
		t.Fatalf("tiny run: %v\n%s", err, out.String())
	}
	t.Logf("tiny run: %v", time.Since(start))
	return dir, out.String()
}

// TestEvalPredictExport trains once, then checks evaluation, prediction and
// export of that run.
func TestEvalPredictExport(t *testing.T) {
	dir, printed := evalRun(t)

	t.Run("LoadRun", func(t *testing.T) {
		cfg, ck, err := LoadRun(filepath.Join(dir, CheckpointFile))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ImageSize != 64 || cfg.Data != DataSynthetic || cfg.TestLimit != 32 {
			t.Errorf("config %+v", cfg)
		}
		if ck.State.Epoch != 1 || ck.Params.Len() != 16 {
			t.Errorf("state %+v, %d params", ck.State, ck.Params.Len())
		}
		for _, bad := range []string{filepath.Join(dir, "nope"), t.TempDir()} {
			if _, _, err := LoadRun(bad); err == nil || !strings.Contains(err.Error(), bad) {
				t.Errorf("LoadRun(%s): %v, want an error naming it", bad, err)
			}
		}
		lone := filepath.Join(t.TempDir(), "ck.safetensors")
		if err := ck.Save(lone); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadRun(lone); err == nil || !strings.Contains(err.Error(), "config.json") {
			t.Errorf("checkpoint without config: %v", err)
		}
	})

	cfg, ck, err := LoadRun(dir)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Eval", func(t *testing.T) {
		test, classes, err := LoadTestSet(context.Background(), cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if test.Len() != 32 || !slices.Equal(classes, ClassesFor(cfg)) {
			t.Fatalf("%d test images, classes %v", test.Len(), classes)
		}
		for _, batch := range []int{0, 5} { // the run's batch, and one that pads
			m, err := OpenForEval(cfg, ck, EvalOptions{Batch: batch})
			if err != nil {
				t.Fatal(err)
			}
			ev, err := m.Evaluate(test)
			m.Close()
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			ev.Print(&got, classes)
			if !strings.Contains(printed, got.String()) {
				t.Errorf("batch %d: eval printed\n%s\nwhich is not what Run printed:\n%s", batch, got.String(), printed)
			}
			j, err := json.Marshal(ev.JSON(dir, cfg, ck.State, classes))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(j, []byte(`"confusion":[[`)) || !bytes.Contains(j, []byte(`"images":32`)) {
				t.Errorf("JSON: %s", j)
			}
		}
	})

	t.Run("Predict", func(t *testing.T) {
		test, classes, err := LoadTestSet(context.Background(), cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		m, err := OpenForEval(cfg, ck, EvalOptions{Batch: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		img := t.TempDir()
		var paths []string
		var records [][]byte
		for i := 0; i < 4; i++ {
			rec := test.Image(i)
			p := filepath.Join(img, "img"+string(rune('0'+i))+".png")
			var buf bytes.Buffer
			if err := png.Encode(&buf, RecordImage(rec)); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadImageRecord(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, rec) {
				t.Fatalf("%s: the PNG round trip changed the record", p)
			}
			paths, records = append(paths, p), append(records, got)
		}
		jp := filepath.Join(img, "big.jpg")
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, upscaleRecordImage(RecordImage(test.Image(0)), 3, 32), &jpeg.Options{Quality: 95}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(jp, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		jrec, err := ReadImageRecord(jp)
		if err != nil {
			t.Fatal(err)
		}
		if d := recordMeanAbsDiff(jrec, test.Image(0)); d > 12 {
			t.Errorf("JPEG at 160x96 converts %v grey levels away on average from the image it shows", d)
		}
		records = append(records, jrec)
		probs, err := m.Predict(records)
		if err != nil {
			t.Fatal(err)
		}
		again, err := m.Predict(records[:1])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(again[0], probs[0]) {
			t.Errorf("predicting image 0 alone: %v, with others: %v", again[0], probs[0])
		}
		for i, p := range probs {
			top := TopK(p, classes, 5)
			sum := 0.0
			for k, c := range top {
				sum += c.Prob
				if k > 0 && c.Prob > top[k-1].Prob || c.Name != classes[c.Label] {
					t.Errorf("image %d: top-5 %+v not sorted or misnamed", i, top)
				}
			}
			if len(top) != 5 || sum > 1+1e-9 || sum <= 0 {
				t.Errorf("image %d: top-5 %+v sums to %v", i, top, sum)
			}
			all := 0.0
			for _, v := range p {
				all += v
			}
			if math.Abs(all-1) > 1e-6 {
				t.Errorf("image %d: probabilities sum to %v", i, all)
			}
		}
		// The top-1 class is the device's argmax of the same image.
		m2, err := OpenForEval(cfg, ck, EvalOptions{Batch: 4})
		if err != nil {
			t.Fatal(err)
		}
		defer m2.Close()
		sub, err := test.Subset([]int{0, 1, 2, 3})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m2.Network().Submit(layers.EvalStep, layers.Batch{Records: sub.Images, Labels: sub.Labels}); err != nil {
			t.Fatal(err)
		}
		res, err := m2.Network().Flush()
		if err != nil {
			t.Fatal(err)
		}
		pred := res.Predicted
		for i := 0; i < 4; i++ {
			if top := TopK(probs[i], classes, 1)[0]; uint32(top.Label) != pred[i] {
				t.Errorf("%s: top-1 %v, the network's argmax %d", paths[i], top, pred[i])
			}
		}
	})

	t.Run("ReadImageErrors", func(t *testing.T) {
		d := t.TempDir()
		bad := filepath.Join(d, "corrupt.png")
		os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\nnot really"), 0o644)
		text := filepath.Join(d, "notes.jpg")
		os.WriteFile(text, []byte("hello"), 0o644)
		for _, p := range []string{bad, text, filepath.Join(d, "missing.png")} {
			if _, err := ReadImageRecord(p); err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("%s: %v, want an error naming the file", p, err)
			}
		}
	})

	t.Run("Export", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "sub", "model.safetensors")
		if err := Export(cfg, ck, out); err != nil {
			t.Fatal(err)
		}
		sd, meta, err := weights.ReadSafetensors(out)
		if err != nil {
			t.Fatal(err)
		}
		model, _ := BuildModel(cfg.Model, cfg.FreezeFeatures)
		if _, _, err := sd.Check(model.Specs(), true); err != nil || sd.Len() != 16 {
			t.Fatalf("exported %d tensors: %v", sd.Len(), err)
		}
		for _, name := range ck.Params.Names {
			if !slices.Equal(sd.Tensors[name].Data, ck.Params.Tensors[name].Data) {
				t.Errorf("%s differs from the checkpoint", name)
			}
		}
		if meta["model"] != "alexnet" || meta["image_size"] != "64" || !strings.HasPrefix(meta["classes"], "hstripes,vstripes") {
			t.Errorf("metadata %v", meta)
		}
		if err := Export(cfg, ck, filepath.Join(dir, CheckpointFile)); err == nil {
			t.Error("export over the checkpoint itself was allowed")
		}
	})
}

// upscaleRecordImage enlarges img k times (nearest neighbour) and pads it with pad grey
// columns on the left and right: its centered square is the enlarged image.
func upscaleRecordImage(img *image.RGBA, k, pad int) *image.RGBA {
	b := img.Bounds()
	side := b.Dx() * k
	out := image.NewRGBA(image.Rect(0, 0, side+2*pad, side))
	for y := 0; y < side; y++ {
		for x := 0; x < side+2*pad; x++ {
			if x < pad || x >= pad+side {
				out.Set(x, y, color.Gray{Y: 128})
				continue
			}
			out.Set(x, y, img.At((x-pad)/k, y/k))
		}
	}
	return out
}

func recordMeanAbsDiff(a, b []byte) float64 {
	sum := 0.0
	for i := range a {
		sum += math.Abs(float64(a[i]) - float64(b[i]))
	}
	return sum / float64(len(a))
}
