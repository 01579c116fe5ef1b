// Command vktrain trains convolutional networks with Vulkan compute shaders.
//
// Usage:
//
//	vktrain devices                 list Vulkan devices and which one is chosen
//	vktrain smoke                   run a few kernels on the chosen device and check them
//	vktrain summary                 the model as PyTorch prints it, with shapes, parameters and FLOPs
//	vktrain train [flags]           train AlexNet (or --model resnet18|resnet50) on CIFAR-10 (the reference recipe by default)
//	vktrain eval --checkpoint RUN   test accuracy of a run, overall and per class
//	vktrain predict --checkpoint RUN IMAGE...   top-5 classes of PNG or JPEG images
//	vktrain export --checkpoint RUN --out FILE  the trained parameters as safetensors
//	vktrain plot RUN_DIR...         redraw a run's figures; compare runs
//	vktrain bench [flags]           benchmark every kernel, the step and inference
//
// Every command takes --device (index or name substring; default $VKTRAIN_DEVICE or
// the best device) and --validate (the Khronos validation layer; also VKTRAIN_VALIDATE=1).
// The commands that build a network (summary, train, bench, tune) take --model
// alexnet|resnet18|resnet50; eval, predict, export and train --resume rebuild the
// run's own from its config.json.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"

	"vktrain/train"
)

// command is one vktrain subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what every command gets: output streams and the logger.
type env struct {
	stdout, stderr io.Writer
	log            *slog.Logger
}

func commands() map[string]command {
	return map[string]command{
		"devices": {"list Vulkan devices and which one would be chosen", runDevices},
		"smoke":   {"run a few kernels on the chosen device and check their results", runSmoke},
		"summary": {"print the model (AlexNet, --model resnet18|resnet50) as PyTorch does, before and after the surgery, with shapes, parameters and FLOPs", runSummary},
		"train":   {"train AlexNet or a ResNet (--model) on CIFAR-10 (the reference recipe by default)", runTrain},
		"bench":   {"benchmark every kernel, the training step and inference; compare with earlier runs or PyTorch", runBench},
		"tune":    {"time every convolution algorithm of the network on the device and fill its tuning cache", runTune},
		"plot":    {"redraw a run's figures (and compare runs) from metrics.jsonl", runPlot},
		"eval":    {"evaluate a run's checkpoint on the whole test set", runEval},
		"predict": {"classify PNG or JPEG images with a run's checkpoint (top-5 classes)", runPredict},
		"export":  {"write a run's trained parameters as safetensors (PyTorch names)", runExport},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel()}))}
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "vktrain: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	if err := c.run(ctx, e, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "vktrain %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "vktrain trains convolutional networks with Vulkan compute shaders.")
	fmt.Fprintln(w, "\nUsage: vktrain COMMAND [flags]\n\nCommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'vktrain COMMAND -h' for a command's flags.")
}

func logLevel() slog.Level {
	switch strings.ToLower(os.Getenv("VKTRAIN_LOG")) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// deviceFlags are the flags every device-using command shares.
type deviceFlags struct {
	device   string
	validate bool
}

func (f *deviceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.device, "device", "", "Vulkan device: index or name substring (default $VKTRAIN_DEVICE, else the best type: discrete > integrated > virtual > CPU)")
	fs.BoolVar(&f.validate, "validate", false, "enable the Khronos validation layer (also VKTRAIN_VALIDATE=1)")
}

// modelFlagUsage is the --model flag's help, shared by the commands that build a network.
const modelFlagUsage = `the network: "alexnet" (torchvision's, classifier.4 and classifier.6 replaced: the reference), "resnet18" or "resnet50" (torchvision's, fc replaced by Linear(512 or 2048, 10))`

// modelValue is the --model flag's value: a train.ModelNames name, checked as
// the flags are parsed.
type modelValue struct{ name *string }

// String returns the model's name ("" for the zero value flag's help makes).
func (v modelValue) String() string {
	if v.name == nil {
		return ""
	}
	return *v.name
}

// Set takes a model's name, refusing one train.LookupModel does not know.
func (v modelValue) Set(s string) error {
	spec, err := train.LookupModel(s)
	if err == nil && s == "" {
		err = fmt.Errorf("want %s", strings.Join(train.ModelNames(), ", "))
	}
	if err != nil {
		return err
	}
	*v.name = spec.Name
	return nil
}

// registerModelFlag defines --model on fs, storing into name, whose value
// is the default.
func registerModelFlag(fs *flag.FlagSet, name *string) {
	fs.Var(modelValue{name}, "model", modelFlagUsage)
}

// convFlagUsage is the --conv flag's help.
const convFlagUsage = `convolution algorithm: "auto" (per pass, the fastest on the device: see --tune), or for every pass it applies to "winograd4" (F(4x4,3x3); F(2x2,5x5) for 5x5), "winograd" (F(2x2,3x3) and F(2x2,5x5)) or "im2col"`

// tuneFlagUsage is the --tune flag's help, shared by the commands that lay a network out.
const tuneFlagUsage = `how "--conv auto" picks each convolution pass's algorithm: "cached" (the device's tuning cache, timing on first use what it lacks), "full" (time every pass again) or "off" (the built-in choice)`

func newFlagSet(name string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet("vktrain "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}
