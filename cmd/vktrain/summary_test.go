package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

func runSummaryCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	rc := run(context.Background(), append([]string{"summary"}, args...), &stdout, &stderr)
	return rc, stdout.String(), stderr.String()
}

func TestSummaryCommand(t *testing.T) {
	rc, out, errOut := runSummaryCmd(t)
	if rc != 0 {
		t.Fatalf("rc %d, stderr:\n%s", rc, errOut)
	}
	for _, golden := range []string{"alexnet.txt", "alexnet_surgery.txt"} {
		b, err := os.ReadFile("../../layers/nn/testdata/" + golden)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, string(b)) {
			t.Errorf("output lacks torch's %s:\n%s", golden, out)
		}
	}
	if strings.Index(out, "out_features=1000") > strings.Index(out, "out_features=1024") {
		t.Error("the model before surgery is not printed first")
	}
	for _, want := range []string{
		"AlexNet at input [4, 3, 224, 224] (batch 4)",
		"features.0    Conv2d             [4, 64, 55, 55]       23,296  yes    140.554M   10.1%",
		"classifier.6  Linear             [4, 10]",
		"Parameters: 44,428,106 total, 44,428,106 trainable, 0 frozen",
		"Forward per image: 1.395 GFLOP (Conv2d 1.311, Linear 0.084)",
		"Forward + backward per image: 4.045 GFLOP",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestSummaryCommandFlags(t *testing.T) {
	rc, out, errOut := runSummaryCmd(t, "--image-size", "64", "--batch", "1", "--surgery=false", "--classes", "7", "--freeze-features")
	if rc != 0 {
		t.Fatalf("rc %d, stderr:\n%s", rc, errOut)
	}
	for _, want := range []string{
		"(6): Linear(in_features=4096, out_features=7, bias=True)",
		"features.12   MaxPool2d          [1, 256, 1, 1]",
		"avgpool       AdaptiveAvgPool2d  [1, 256, 6, 6]",
		"frozen",
		"Parameters: 57,032,519 total, 54,562,823 trainable, 2,469,696 frozen",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "out_features=1000") {
		t.Error("--surgery=false printed the 1000-class model")
	}
	if rc, out, errOut := runSummaryCmd(t, "--image-size", "64"); rc != 0 || !strings.Contains(out, "Forward per image: 0.163 GFLOP") {
		t.Errorf("--image-size 64: rc %d, stderr %q, output:\n%s", rc, errOut, out)
	}

	for _, c := range []struct {
		args []string
		rc   int
		want string
	}{
		{[]string{"--image-size", "16"}, 1, "layer features.5 MaxPool2d"},
		{[]string{"--classes", "0"}, 1, "--classes 0"},
		{[]string{"--batch", "0"}, 1, "--batch 0"},
		{[]string{"extra"}, 1, "unexpected arguments"},
		{[]string{"--nope"}, 1, "flag provided but not defined"},
		{[]string{"-h"}, 0, "-image-size"},
	} {
		rc, _, errOut := runSummaryCmd(t, c.args...)
		if rc != c.rc || !strings.Contains(errOut, c.want) {
			t.Errorf("summary %v: rc %d, stderr %q; want rc %d and %q", c.args, rc, errOut, c.rc, c.want)
		}
	}
}

// TestSummaryResNet: --model resnet18 and resnet50 print torchvision's models
// with the fc surgery and their tables; an unknown model is an error.
func TestSummaryResNet(t *testing.T) {
	rc, out, errOut := runSummaryCmd(t, "--model", "resnet18", "--surgery=false", "--classes", "1000")
	if rc != 0 {
		t.Fatalf("rc %d, stderr:\n%s", rc, errOut)
	}
	b, err := os.ReadFile("../../layers/nn/testdata/resnet18.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, string(b)) {
		t.Errorf("output lacks torch's resnet18.txt:\n%s", out)
	}
	rc, out, errOut = runSummaryCmd(t, "--model", "resnet50")
	if rc != 0 {
		t.Fatalf("rc %d, stderr:\n%s", rc, errOut)
	}
	for _, want := range []string{"after model.fc = nn.Linear(2048, 10)", "layer4.2   Bottleneck", "Parameters: 23,528,522 total"} {
		if !strings.Contains(out, want) {
			t.Errorf("resnet50 output lacks %q:\n%s", want, out)
		}
	}
	if rc, _, errOut := runSummaryCmd(t, "--model", "vgg16"); rc == 0 || !strings.Contains(errOut, "vgg16") {
		t.Errorf("--model vgg16: rc %d, stderr %q", rc, errOut)
	}
}
