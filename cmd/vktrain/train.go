package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"vktrain/train"
)

// trainFlags registers the training flags on fs, with the reference recipe as defaults.
func trainFlags(fs *flag.FlagSet, cfg *train.Config) {
	registerModelFlag(fs, &cfg.Model)
	fs.StringVar(&cfg.Pretrained, "pretrained", cfg.Pretrained, `start from "torchvision" (the model's ImageNet weights, downloaded into the cache), "none" (from scratch) or a .pth/.safetensors file of torchvision's 1000-class model`)
	fs.BoolVar(&cfg.FreezeFeatures, "freeze-features", cfg.FreezeFeatures, "train only the new classifier: AlexNet's classifier (features frozen); a ResNet's fc (every other parameter frozen; BatchNorm still normalises by the batch and updates its running statistics, as PyTorch in train mode)")
	fs.StringVar(&cfg.Data, "data", cfg.Data, `CIFAR-10: a folder of the official binary files (default: the cache, downloading once), or "synthetic" for the built-in set`)
	fs.IntVar(&cfg.ImageSize, "image-size", cfg.ImageSize, "network input side (images are resized to size*8/7, then center-cropped); 64 makes CPU runs practical")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "mini-batch size")
	fs.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "epochs")
	fs.Float64Var(&cfg.LR, "lr", cfg.LR, "learning rate")
	fs.Float64Var(&cfg.Momentum, "momentum", cfg.Momentum, "SGD momentum")
	fs.Float64Var(&cfg.WeightDecay, "weight-decay", cfg.WeightDecay, "weight decay: SGD's and Adam's L2 term, AdamW's decoupled decay")
	fs.StringVar(&cfg.Optimizer, "optimizer", train.OptimizerSGD, `"sgd" (torch.optim.SGD with --momentum), "adam" or "adamw" (torch.optim.Adam, AdamW: --beta1, --beta2, --eps)`)
	fs.Float64Var(&cfg.Beta1, "beta1", 0.9, "Adam's first-moment decay")
	fs.Float64Var(&cfg.Beta2, "beta2", 0.999, "Adam's second-moment decay")
	fs.Float64Var(&cfg.Eps, "eps", 1e-8, "Adam's denominator term")
	fs.StringVar(&cfg.LRSchedule, "lr-schedule", train.ScheduleConstant, `learning-rate schedule: "constant", "step" (times --lr-gamma every --lr-step-epochs) or "cosine" (to 0 over the run, per step)`)
	fs.Float64Var(&cfg.WarmupEpochs, "warmup-epochs", 0, "linear learning-rate warm-up over this many epochs (fractions allowed) before the schedule")
	fs.IntVar(&cfg.LRStepEpochs, "lr-step-epochs", 0, `"step" schedule: epochs between decays (0: a third of the run, at least 1)`)
	fs.Float64Var(&cfg.LRGamma, "lr-gamma", 0.1, `"step" schedule: the decay factor`)
	fs.Func("lr-group", "PREFIX=LR: the parameters whose names start with PREFIX train at learning rate LR (a parameter group; repeatable; the schedule scales it like --lr), e.g. features.=0.0001 for a slower backbone", func(v string) error {
		g, err := train.ParseLRGroup(v)
		if err == nil {
			cfg.LRGroups = append(cfg.LRGroups, g)
		}
		return err
	})
	fs.BoolVar(&cfg.Augment, "augment", cfg.Augment, "random crop (padding) and horizontal flip")
	fs.Func("dropout", "probability of every Dropout layer of the model, in [0, 1) (default: the model's own, 0.5 for AlexNet; 0 turns dropout off, e.g. to follow a PyTorch run step by step; a ResNet has none and takes only 0)", func(v string) error {
		p, err := train.ParseDropout(v)
		if err == nil {
			cfg.Dropout = &p
		}
		return err
	})
	fs.StringVar(&cfg.DataOrder, "data-order", train.OrderShuffled, `order of the training images in every epoch: "shuffled" (a fresh permutation each epoch, from --seed) or "sequential" (the files' order, every epoch, as PyTorch's shuffle=False)`)
	fs.Func("label-smoothing", "label smoothing eps of the training loss, in [0, 1) (torch.nn.CrossEntropyLoss(label_smoothing=eps); default 0: none); the test loss stays plain cross-entropy", func(v string) error {
		eps, err := train.ParseLabelSmoothing(v)
		if err == nil {
			cfg.LabelSmoothing = eps
		}
		return err
	})
	fs.StringVar(&cfg.Init, "init", "torch", `initialisation of the layers not loaded from weights: "torch" (the model as torchvision builds it: PyTorch's defaults for AlexNet; for a ResNet kaiming_normal_ fan_out convolutions, BatchNorm 1 and 0) or "kaiming" (torchvision's VGG scheme: trains AlexNet from scratch much faster; for a ResNet it changes only fc, to N(0, 0.01) and bias 0)`)
	fs.StringVar(&cfg.Conv, "conv", cfg.Conv, convFlagUsage)
	fs.StringVar(&cfg.Tune, "tune", "cached", tuneFlagUsage)
	fs.StringVar(&cfg.InitFrom, "init-from", "", "start every parameter from this .pth or .safetensors state dict of the modified 10-class model (implies --pretrained none)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the data order, initialisation, dropout and augmentation")
	fs.IntVar(&cfg.LogEvery, "log-every", cfg.LogEvery, "print the running loss every N mini-batches")
	fs.IntVar(&cfg.TrainLimit, "train-limit", cfg.TrainLimit, "use only the first N training images (0: all)")
	fs.IntVar(&cfg.TestLimit, "test-limit", cfg.TestLimit, "use only the first N test images (0: all)")
}

func runTrain(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("train", e)
	cfg := train.Defaults()
	trainFlags(fs, &cfg)
	var df deviceFlags
	df.register(fs)
	out := fs.String("out", "", "run directory (default runs/<date-time>)")
	resume := fs.String("resume", "", "continue the run in this directory from its checkpoint")
	quiet := fs.Bool("quiet", false, "no progress bars or progress log lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Device = df.device
	if cfg.InitFrom != "" && !flagSet(fs, "pretrained") {
		cfg.Pretrained = train.PretrainedNone // the file replaces every parameter
	}
	opts := train.Options{Log: e.log, Out: e.stdout, Validate: df.validate}
	if !*quiet {
		if isTerminal(e.stderr) {
			opts.Progress = e.stderr // a bar redrawn in place: only where a terminal shows it
		} else {
			opts.LogProgress = true // a plain log line every 30 s or tenth of an epoch
		}
	}
	switch {
	case *resume != "":
		opts.RunDir, opts.Resume = *resume, true
	case *out != "":
		opts.RunDir = *out
	default:
		opts.RunDir = filepath.Join("runs", time.Now().Format("20060102-150405"))
	}
	if !opts.Resume {
		// The reference prints the network before and after replacing its last layers.
		spec, err := train.LookupModel(cfg.Model)
		if err != nil {
			return err
		}
		model, err := train.BuildModelFor(cfg) // with --dropout's probability
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, spec.Torchvision(1000))
		fmt.Fprintf(e.stdout, "after replacing %s:\n", strings.Join(spec.Replaced, " and "))
		fmt.Fprintln(e.stdout, model)
	}
	res, err := train.Run(ctx, cfg, opts)
	if err != nil {
		if errors.Is(err, train.ErrInterrupted) {
			fmt.Fprintf(e.stderr, "vktrain train: %v; continue with: vktrain train --resume %s\n", err, opts.RunDir)
			os.Exit(130)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "run directory: %s\n", opts.RunDir)
	for _, f := range res.Figures {
		fmt.Fprintf(e.stdout, "  %s\n", f)
	}
	return nil
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// flagSet reports whether the command line set the flag.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
