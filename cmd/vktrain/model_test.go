package main

import (
	"path/filepath"
	"strings"
	"testing"

	"vktrain/layers/nn"
	"vktrain/train"
	"vktrain/train/weights"
)

// TestTrainResNet18: vktrain train --model resnet18 (one step of 2 synthetic
// images at 32x32) prints torchvision's ResNet-18 and the model after fc's
// replacement, records the model in config.json, and eval and export rebuild
// it from there: export writes every state_dict entry of the modified
// ResNet-18, BatchNorm's buffers included.
func TestTrainResNet18(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	out, stderr, code := runCmd(t, "train", "--model", "resnet18", "--data", "synthetic", "--pretrained", "none", "--image-size", "32",
		"--batch", "2", "--epochs", "1", "--train-limit", "2", "--test-limit", "2", "--log-every", "1", "--tune", "off", "--quiet", "--out", dir)
	if code != 0 {
		t.Fatalf("train: code %d\n%s", code, stderr)
	}
	for _, want := range []string{"(fc): Linear(in_features=512, out_features=1000, bias=True)", "after replacing fc:\nResNet(",
		"(fc): Linear(in_features=512, out_features=10, bias=True)", "(layer4): Sequential", "[1,     1] loss: "} {
		if !strings.Contains(out, want) {
			t.Errorf("train output lacks %q:\n%s", want, out)
		}
	}
	cfg, err := train.ReadConfig(dir)
	if err != nil || cfg.Model != train.ModelResNet18 {
		t.Fatalf("config.json: model %q, %v", cfg.Model, err)
	}
	out, stderr, code = runCmd(t, "eval", dir, "--test-limit", "2", "--tune", "off")
	if code != 0 || !strings.Contains(out, "Accuracy of the network on the 2 test images") {
		t.Errorf("eval: code %d\n%s%s", code, out, stderr)
	}
	file := filepath.Join(t.TempDir(), "model.safetensors")
	out, stderr, code = runCmd(t, "export", dir, "--out", file)
	if code != 0 || !strings.Contains(out, "ResNet-18 at 32x32") {
		t.Fatalf("export: code %d\n%s%s", code, out, stderr)
	}
	sd, meta, err := weights.ReadSafetensors(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := sd.Check(nn.ResNet18(10).StateSpecs(), true); err != nil || meta["model"] != "resnet18" || meta["surgery"] != "fc=Linear(512,10)" {
		t.Errorf("exported file (metadata %v): %v", meta, err)
	}
}

// TestModelFlag: every command that builds a network refuses an unknown
// --model while parsing its flags, naming the choices; tune checks the
// model's smallest image size; bench times a ResNet's BatchNorms and
// residual sums among its kernels.
func TestModelFlag(t *testing.T) {
	for _, cmd := range []string{"train", "bench", "tune", "summary"} {
		_, stderr, code := runCmd(t, cmd, "--model", "vgg16")
		if code != 1 || !strings.Contains(stderr, `invalid value "vgg16" for flag -model`) || !strings.Contains(stderr, "want alexnet, resnet18, resnet50") {
			t.Errorf("%s --model vgg16: code %d, stderr:\n%s", cmd, code, stderr)
		}
	}
	if _, stderr, code := runCmd(t, "tune", "--model", "resnet50", "--image-size", "31"); code != 1 || !strings.Contains(stderr, "at least 32 for ResNet-50") {
		t.Errorf("tune --model resnet50 --image-size 31: code %d, %s", code, stderr)
	}
	stdout, stderr, code := runCmd(t, "bench", "--model", "resnet18", "--image-size", "32", "--batch", "2", "--count", "1", "--kernels", "layer4.1.bn", "--tune", "off")
	for _, want := range []string{"layer4.1.bn1", "BatchNorm2d+ReLU", "layer4.1.bn2", "Add+ReLU", "training step, batch 2"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("bench --model resnet18: code %d, no %q in\n%s\n%s", code, want, stdout, stderr)
			break
		}
	}
	_, stderr, _ = runCmd(t, "train", "-h")
	if !strings.Contains(stderr, "-model value") || !strings.Contains(stderr, `(default alexnet)`) {
		t.Errorf("train -h does not show --model and its default:\n%s", stderr)
	}
}
