package main

import (
	"context"
	"fmt"

	"vktrain/layers/nn"
	"vktrain/train"
)

// runSummary prints torchvision's AlexNet as PyTorch prints it, before and after
// the reference experiment's surgery (classifier.4 = Linear(4096, 1024),
// classifier.6 = Linear(1024, classes)), then a table of output shapes,
// parameters and FLOPs at the chosen input size. It needs no device.
func runSummary(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("summary", e)
	classes := fs.Int("classes", 10, "number of classes the last layer predicts")
	size := fs.Int("image-size", 224, "input height and width in pixels")
	batch := fs.Int("batch", 4, "batch size for the output shapes and per-batch FLOPs")
	surgery := fs.Bool("surgery", true, "start from torchvision's 1000-class AlexNet and replace classifier.4 with Linear(4096, 1024) and classifier.6 with Linear(1024, classes), printing the model before and after; with --surgery=false, print alexnet(num_classes=classes)")
	freeze := fs.Bool("freeze-features", false, "count all but the new classifier as frozen, as train --freeze-features (AlexNet's features; every ResNet layer but fc)")
	model := train.ModelAlexNet
	registerModelFlag(fs, &model)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	case *classes < 1:
		return fmt.Errorf("--classes %d: must be positive", *classes)
	case *size < 1:
		return fmt.Errorf("--image-size %d: must be positive", *size)
	case *batch < 1:
		return fmt.Errorf("--batch %d: must be positive", *batch)
	}

	spec, err := train.LookupModel(model)
	if err != nil {
		return err
	}
	var m *nn.Model
	if spec.IsResNet() {
		return resnetSummary(e, spec, *classes, *size, *batch, *surgery, *freeze)
	}
	if *surgery {
		m = nn.AlexNet(1000)
		fmt.Fprintf(e.stdout, "torchvision.models.alexnet():\n%s\n\n", m)
		if err := m.ReferenceSurgery(*classes); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "After model.classifier[4] = nn.Linear(4096, 1024) and model.classifier[6] = nn.Linear(1024, %d):\n%s\n\n", *classes, m)
	} else {
		m = nn.AlexNet(*classes)
		fmt.Fprintf(e.stdout, "torchvision.models.alexnet(num_classes=%d):\n%s\n\n", *classes, m)
	}
	if *freeze {
		m.Freeze("features")
	}
	s, err := m.Summary(*batch, 3, *size, *size)
	if err != nil {
		return fmt.Errorf("--image-size %d: %w", *size, err)
	}
	fmt.Fprint(e.stdout, s.Table())
	return nil
}

// resnetSummary is runSummary for torchvision's ResNets: the model as PyTorch
// prints it, with the classifier surgery (fc -> Linear(in, classes)) or built
// for classes, and its table.
func resnetSummary(e *env, spec train.ModelSpec, classes, size, batch int, surgery, freeze bool) error {
	name := spec.Name
	var m *nn.Model
	if surgery {
		m = spec.Torchvision(1000)
		fc, err := m.Module("fc")
		if err != nil {
			return err
		}
		in := fc.(*nn.Linear).InFeatures
		if err := m.Replace("fc", nn.NewLinear(in, classes)); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "torchvision.models.%s() after model.fc = nn.Linear(%d, %d):\n%s\n\n", name, in, classes, m)
	} else {
		m = spec.Torchvision(classes)
		fmt.Fprintf(e.stdout, "torchvision.models.%s(num_classes=%d):\n%s\n\n", name, classes, m)
	}
	if freeze {
		spec.FreezeFeatures(m)
	}
	s, err := m.Summary(batch, 3, size, size)
	if err != nil {
		return fmt.Errorf("--image-size %d: %w", size, err)
	}
	fmt.Fprint(e.stdout, s.Table())
	return nil
}
