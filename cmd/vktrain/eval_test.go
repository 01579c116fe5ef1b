package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"vktrain/train"
	"vktrain/train/cifar10"
	"vktrain/train/weights"
)

// evalCmdRun trains two steps of 4 synthetic images at 64x64 (a few seconds on
// lavapipe) into a temporary run directory and returns it with what the run
// printed.
func evalCmdRun(t *testing.T) (string, string) {
	t.Helper()
	cfg := train.Defaults()
	cfg.Pretrained, cfg.Data, cfg.ImageSize, cfg.Epochs = train.PretrainedNone, train.DataSynthetic, 64, 1
	cfg.TrainLimit, cfg.TestLimit, cfg.LogEvery, cfg.LR, cfg.Seed = 8, 32, 1, 0.01, 3
	dir := t.TempDir()
	var out bytes.Buffer
	if _, err := train.Run(context.Background(), cfg, train.Options{RunDir: dir, Out: &out}); err != nil {
		t.Fatalf("tiny run: %v\n%s", err, out.String())
	}
	return dir, out.String()
}

func writeRecordImage(t *testing.T, path string, rec []byte, jpg bool) {
	t.Helper()
	var buf bytes.Buffer
	var err error
	if jpg {
		err = jpeg.Encode(&buf, train.RecordImage(rec), &jpeg.Options{Quality: 90})
	} else {
		err = png.Encode(&buf, train.RecordImage(rec))
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

var predictLineRE = regexp.MustCompile(`^  (\d)\. (\S+) +([0-9.]+) %$`)

// parsePredictions reads predict's output: image -> its classes and percentages.
func parsePredictions(t *testing.T, out string) (map[string][]string, map[string][]float64) {
	t.Helper()
	names, probs := map[string][]string{}, map[string][]float64{}
	cur := ""
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if m := predictLineRE.FindStringSubmatch(line); m != nil && cur != "" {
			p, _ := strconv.ParseFloat(m[3], 64)
			names[cur], probs[cur] = append(names[cur], m[2]), append(probs[cur], p)
			continue
		}
		if !strings.HasSuffix(line, ":") {
			t.Fatalf("unexpected line %q in\n%s", line, out)
		}
		cur = strings.TrimSuffix(line, ":")
	}
	return names, probs
}

func TestEvalPredictExportCommands(t *testing.T) {
	dir, printed := evalCmdRun(t)

	t.Run("eval", func(t *testing.T) {
		js := filepath.Join(t.TempDir(), "eval.json")
		// The run directory as the argument, flags after it, another batch.
		out, stderr, code := runCmd(t, "eval", dir, "--test-limit", "32", "--batch", "5", "--json", js)
		if code != 0 {
			t.Fatalf("eval: code %d\n%s", code, stderr)
		}
		start := strings.Index(printed, "Accuracy of the network")
		end := strings.Index(printed, "Finished Training")
		if start < 0 || end < 0 || !strings.Contains(out, printed[start:end]) {
			t.Fatalf("eval printed\n%s\nthe run printed\n%s", out, printed)
		}
		var j train.EvalJSON
		b, err := os.ReadFile(js)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &j); err != nil {
			t.Fatalf("%s: %v\n%s", js, err, b)
		}
		m := regexp.MustCompile(`on the 32 test images: (\d+) %`).FindStringSubmatch(printed)
		if j.Images != 32 || len(j.Confusion) != 10 || m == nil || strconv.Itoa(int(100*j.Accuracy)) != m[1] {
			t.Errorf("JSON: %d images, accuracy %v, run printed %v", j.Images, j.Accuracy, m)
		}
	})

	t.Run("predict", func(t *testing.T) {
		imgs := t.TempDir()
		data := cifar10.Synthetic(4, 11)
		a, b, c := filepath.Join(imgs, "a.png"), filepath.Join(imgs, "b.jpg"), filepath.Join(imgs, "c.png")
		writeRecordImage(t, a, data.Image(0), false)
		writeRecordImage(t, b, data.Image(1), true)
		writeRecordImage(t, c, data.Image(0), false)
		out, stderr, code := runCmd(t, "predict", "--checkpoint", filepath.Join(dir, train.CheckpointFile), a, b, c)
		if code != 0 {
			t.Fatalf("predict: code %d\n%s", code, stderr)
		}
		names, probs := parsePredictions(t, out)
		for _, img := range []string{a, b, c} {
			p := probs[img]
			if len(p) != 5 || len(names[img]) != 5 {
				t.Fatalf("%s: %v %v\n%s", img, names[img], p, out)
			}
			sum := 0.0
			for k, v := range p {
				sum += v
				if k > 0 && v > p[k-1] {
					t.Errorf("%s: not sorted: %v", img, p)
				}
				if !slices.Contains(train.ClassesFor(train.Config{Data: train.DataSynthetic}), names[img][k]) {
					t.Errorf("%s: class %q", img, names[img][k])
				}
			}
			if sum > 100.05 || sum <= 0 {
				t.Errorf("%s: top-5 sums to %v %%", img, sum)
			}
		}
		// The same image as a.png and c.png in one batch of 3, then alone.
		alone, stderr, code := runCmd(t, "predict", "--checkpoint", dir, a)
		if code != 0 {
			t.Fatalf("predict: code %d\n%s", code, stderr)
		}
		n2, p2 := parsePredictions(t, alone)
		if !slices.Equal(names[a], names[c]) || !slices.Equal(probs[a], probs[c]) || !slices.Equal(names[a], n2[a]) || !slices.Equal(probs[a], p2[a]) {
			t.Errorf("predictions of one image differ:\n%s\n%s", out, alone)
		}
		bad := filepath.Join(imgs, "corrupt.png")
		os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\ntruncated"), 0o644)
		if _, stderr, code := runCmd(t, "predict", "--checkpoint", dir, a, bad); code != 1 || !strings.Contains(stderr, bad) {
			t.Errorf("corrupt image: code %d, stderr %q", code, stderr)
		}
	})

	t.Run("export", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "model.safetensors")
		stdout, stderr, code := runCmd(t, "export", "--checkpoint", dir, "--out", out)
		if code != 0 || !strings.Contains(stdout, out) {
			t.Fatalf("export: code %d\n%s%s", code, stdout, stderr)
		}
		sd, meta, err := weights.ReadSafetensors(out)
		if err != nil {
			t.Fatal(err)
		}
		ck, err := train.LoadCheckpoint(filepath.Join(dir, train.CheckpointFile))
		if err != nil {
			t.Fatal(err)
		}
		model, err := train.BuildModel(train.ModelAlexNet, false)
		if err != nil {
			t.Fatal(err)
		}
		specs := model.Specs()
		if len(specs) != 16 || !slices.Equal(sd.Names, ck.Params.Names) {
			t.Fatalf("exported %v, want the checkpoint's %v", sd.Names, ck.Params.Names)
		}
		for _, s := range specs {
			got, ok := sd.Get(s.Name)
			if !ok || !slices.Equal(got.Shape, s.Shape) || !slices.Equal(got.Data, ck.Params.Tensors[s.Name].Data) {
				t.Errorf("%s: missing, misshapen or not the checkpoint's values", s.Name)
			}
		}
		if meta["model"] != "alexnet" || meta["image_size"] != "64" || meta["num_classes"] != "10" {
			t.Errorf("metadata %v", meta)
		}
	})

	t.Run("missing checkpoint", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "no-such-run")
		for _, args := range [][]string{
			{"eval", "--checkpoint", missing},
			{"predict", "--checkpoint", missing, "x.png"},
			{"export", "--checkpoint", missing, "--out", filepath.Join(t.TempDir(), "m.safetensors")},
		} {
			if _, stderr, code := runCmd(t, args...); code != 1 || !strings.Contains(stderr, missing) || !strings.Contains(stderr, "no such file or run directory") {
				t.Errorf("%v: code %d, stderr %q", args, code, stderr)
			}
		}
		for _, args := range [][]string{{"eval"}, {"predict", "x.png"}, {"export"}} {
			if _, stderr, code := runCmd(t, args...); code != 1 || !strings.Contains(stderr, "no checkpoint") {
				t.Errorf("%v: code %d, stderr %q", args, code, stderr)
			}
		}
	})
}
