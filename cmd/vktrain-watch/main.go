// Command vktrain-watch shows the figures of a vktrain run in a window and
// redraws them as the run's metrics.jsonl grows, while training runs in
// another process or after it has finished.
//
// Usage:
//
//	vktrain-watch [flags] RUN_DIR
//
// Flags:
//
//	--device SEL     Vulkan device: index or name substring (default $VKTRAIN_DEVICE or the best)
//	--validate       switch on the Khronos validation layer (also VKTRAIN_VALIDATE=1)
//	--width, --height  initial window size (default 1200 by 860)
//	--once PNG       draw one frame at --width by --height into a PNG file and exit (no window)
//	--frames N       exit after N presented frames (for tests)
//	--poll DURATION  how often to look at metrics.jsonl (default 500ms)
//	-v               debug logs
//
// Escape, Q or the close button end it. The window is a GLFW window presented
// through a Vulkan swapchain; this is a separate binary so that vktrain itself
// needs no X11 libraries.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"vktrain/viz"
	"vktrain/viz/watch"
)

func init() {
	// GLFW must be called from the main OS thread.
	runtime.LockOSThread()
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is the parsed command line.
type config struct {
	runDir        string
	device        string
	validate      bool
	width, height int
	once          string
	frames        int
	opts          watch.Options
	verbose       bool
}

func parse(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("vktrain-watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vktrain-watch [flags] RUN_DIR")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.device, "device", "", "Vulkan device: index or name substring (default $VKTRAIN_DEVICE or the best)")
	fs.BoolVar(&c.validate, "validate", false, "switch on the Khronos validation layer")
	fs.IntVar(&c.width, "width", 1200, "initial window width")
	fs.IntVar(&c.height, "height", 860, "initial window height")
	fs.StringVar(&c.once, "once", "", "draw one frame at --width x --height into this PNG file and exit")
	fs.IntVar(&c.frames, "frames", 0, "exit after this many presented frames (0 = until closed)")
	poll := fs.Duration("poll", watch.DefaultPoll, "how often to look at metrics.jsonl")
	fs.BoolVar(&c.verbose, "v", false, "debug logs")
	// Flags may come before or after RUN_DIR.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fs.Usage()
		return nil, errors.New("need exactly one RUN_DIR")
	}
	if c.width <= 0 || c.height <= 0 || c.frames < 0 || *poll <= 0 {
		return nil, errors.New("--width, --height and --poll must be positive, --frames not negative")
	}
	c.runDir = pos[0]
	c.opts = watch.Options{RunDir: c.runDir, Device: c.device, Validate: c.validate || os.Getenv("VKTRAIN_VALIDATE") == "1",
		Width: c.width, Height: c.height, Frames: c.frames, Poll: *poll}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "vktrain-watch:", err)
		return 2
	}
	level := slog.LevelInfo
	if c.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if c.once != "" {
		img := watch.Compose(watch.Load(c.runDir), c.width, c.height)
		if err := viz.SavePNG(img, c.once); err != nil {
			fmt.Fprintln(stderr, "vktrain-watch:", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s (%dx%d)\n", c.once, c.width, c.height)
		return 0
	}

	reqs := make(chan watch.Request, 1)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		for range sigs {
			select {
			case reqs <- watch.Request{Close: true}:
			default:
			}
			watch.Wake()
		}
	}()
	c.opts.Requests = reqs
	c.opts.Logger = log
	res, err := watch.Run(c.opts)
	code := 0
	if err != nil {
		fmt.Fprintln(stderr, "vktrain-watch:", err)
		code = 1
	}
	if res != nil {
		for _, m := range res.Messages {
			fmt.Fprintln(stderr, "vktrain-watch: validation:", m)
		}
		if len(res.Messages) > 0 && code == 0 {
			code = 1
		}
		fmt.Fprintf(stdout, "vktrain-watch: %d frames presented, %d validation messages\n", res.Frames, len(res.Messages))
	}
	return code
}
