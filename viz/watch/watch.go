// Package watch is the live window of vktrain-watch: it shows the figures of
// a run (loss curve, accuracy, per-class accuracy) in a GLFW window presented
// through a Vulkan swapchain, and redraws them as the run's metrics.jsonl
// grows.
//
// GLFW must run on the main OS thread: call Run from the main goroutine of a
// program that locked it with runtime.LockOSThread in an init function.
package watch

import (
	"errors"
	"fmt"
	"image"
	"log/slog"
	"strings"
	"time"
	"unsafe"

	"github.com/go-gl/glfw/v3.3/glfw"

	"vktrain/vk"
)

// DefaultPoll is how often Run looks at the metrics file.
const DefaultPoll = 500 * time.Millisecond

// Options configure Run.
type Options struct {
	// RunDir is the run directory (or its metrics file).
	RunDir string
	// Device selects the Vulkan device, as vk.Options.Device does.
	Device string
	// Validate switches on the Vulkan validation layer.
	Validate bool
	// Width and Height are the window's initial size in screen coordinates
	// (default 1200 by 860).
	Width, Height int
	// Frames makes Run return after that many presented frames (0 = run
	// until the window is closed).
	Frames int
	// Poll is how often the metrics file is checked (default DefaultPoll).
	Poll time.Duration
	// Logger receives progress and debug logs; nil discards them.
	Logger *slog.Logger
	// OnFrame, if set, is called after each presented frame. The frame's
	// image must not be kept beyond the call.
	OnFrame func(Frame)
	// Requests lets another goroutine resize or close the window; call Wake
	// after sending so that an idle loop sees the request at once.
	Requests <-chan Request
}

// Reasons for a redraw, in Frame.Reason.
const (
	ReasonFirst   = "first"   // the first frame
	ReasonMetrics = "metrics" // the metrics file changed
	ReasonResize  = "resize"  // the window changed size
	ReasonRefresh = "refresh" // the window system asked for its contents again
)

// Frame describes one presented frame.
type Frame struct {
	N      int         // 1 for the first frame
	Reason string      // why it was drawn: ReasonFirst, ReasonMetrics, ...
	Image  *image.RGBA // the picture presented, at Extent
	Extent image.Point // the swapchain's size in pixels
	// WindowPos is the position of the window's client area on the screen.
	WindowPos image.Point
	// Epochs and Steps count the records shown.
	Epochs, Steps int
	// Format is the swapchain's pixel format.
	Format string
}

// Request asks the window loop to do something.
type Request struct {
	// Resize, when not zero, resizes the window to that many screen units.
	Resize image.Point
	// Close closes the window.
	Close bool
}

// Result is what a finished Run reports.
type Result struct {
	// Frames is the number of frames presented.
	Frames int
	// Messages are the validation messages (with Options.Validate).
	Messages []vk.Message
	// Device describes the Vulkan device used.
	Device string
}

// Wake wakes a window loop waiting for events, from any goroutine.
func Wake() { glfw.PostEmptyEvent() }

// glfwInstance turns a VkInstance handle into a pointer-typed value, which is
// what glfw's CreateWindowSurface takes.
func glfwInstance(h uintptr) any {
	return (*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&h)))
}

// Run opens the window and shows the run until the window is closed (close
// button, Escape or Q), a Close request arrives or Options.Frames frames have
// been presented. It must be called on the main OS thread. Everything is
// released on return: the presenter, the device, the window and GLFW.
func Run(opts Options) (res *Result, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Width <= 0 {
		opts.Width = 1200
	}
	if opts.Height <= 0 {
		opts.Height = 860
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	res = &Result{}
	if err := glfw.Init(); err != nil {
		return res, fmt.Errorf("watch: glfw init (is DISPLAY set?): %w", err)
	}
	defer glfw.Terminate()
	if !glfw.VulkanSupported() {
		return res, errors.New("watch: glfw finds no Vulkan loader")
	}
	glfw.WindowHint(glfw.ClientAPI, glfw.NoAPI)
	glfw.WindowHint(glfw.Resizable, glfw.True)
	win, err := glfw.CreateWindow(opts.Width, opts.Height, "vktrain-watch: "+opts.RunDir, nil, nil)
	if err != nil {
		return res, fmt.Errorf("watch: create window: %w", err)
	}
	defer win.Destroy()

	exts := win.GetRequiredInstanceExtensions()
	if len(exts) == 0 {
		return res, errors.New("watch: glfw reports no Vulkan surface extensions for this window system")
	}
	log.Debug("glfw surface extensions", "extensions", strings.Join(exts, " "))
	dev, err := vk.Open(vk.Options{
		Device:             opts.Device,
		Validate:           opts.Validate,
		Logger:             log,
		PipelineCacheDir:   "-",
		InstanceExtensions: exts,
		DeviceExtensions:   []string{vk.SwapchainExtension},
	})
	if err != nil {
		return res, fmt.Errorf("watch: %w", err)
	}
	res.Device = dev.String()
	defer func() {
		if cerr := dev.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("watch: closing the device: %w", cerr)
		}
		res.Messages = dev.Messages()
	}()
	surf, err := win.CreateWindowSurface(glfwInstance(dev.InstanceHandle()), nil)
	if err != nil {
		return res, fmt.Errorf("watch: %w", err)
	}
	fbw, fbh := win.GetFramebufferSize()
	pres, err := dev.NewPresenter(vk.SurfaceFromPointer(surf), fbw, fbh)
	if err != nil {
		return res, fmt.Errorf("watch: %w", err)
	}
	defer func() {
		if cerr := pres.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("watch: %w", cerr)
		}
	}()
	pres.Background = Background
	log.Info("watching", "run", opts.RunDir, "device", dev.String(), "format", pres.Format())

	win.SetKeyCallback(func(w *glfw.Window, key glfw.Key, _ int, action glfw.Action, _ glfw.ModifierKey) {
		if action == glfw.Press && (key == glfw.KeyEscape || key == glfw.KeyQ) {
			w.SetShouldClose(true)
		}
	})
	refresh := false
	win.SetRefreshCallback(func(*glfw.Window) { refresh = true })

	snap := Load(opts.RunDir)
	lastPoll := time.Now()
	var size image.Point
	var picture *image.RGBA
	reason := ReasonFirst
	for !win.ShouldClose() {
		for pending := true; pending && opts.Requests != nil; {
			select {
			case req := <-opts.Requests:
				if req.Close {
					win.SetShouldClose(true)
				}
				if req.Resize.X > 0 && req.Resize.Y > 0 {
					win.SetSize(req.Resize.X, req.Resize.Y)
				}
			default:
				pending = false
			}
		}
		if win.ShouldClose() {
			break
		}
		if now := time.Now(); now.Sub(lastPoll) >= opts.Poll {
			lastPoll = now
			if snap.changed() {
				snap = Load(opts.RunDir)
				picture = nil
				if reason == "" {
					reason = ReasonMetrics
				}
				log.Debug("metrics changed", "size", snap.Size)
			}
		}
		if w, h := win.GetFramebufferSize(); image.Pt(w, h) != size {
			size = image.Pt(w, h)
			pres.Resize(w, h)
			picture = nil
			if reason == "" {
				reason = ReasonResize
			}
		}
		if refresh && reason == "" {
			reason = ReasonRefresh
		}
		refresh = false
		if reason != "" && size.X > 0 && size.Y > 0 {
			if picture == nil {
				picture = Compose(snap, size.X, size.Y)
			}
			switch err := pres.Present(picture); {
			case errors.Is(err, vk.ErrZeroExtent):
			case err != nil:
				return res, fmt.Errorf("watch: %w", err)
			default:
				res.Frames++
				if opts.OnFrame != nil {
					x, y := win.GetPos()
					f := Frame{N: res.Frames, Reason: reason, Image: picture, Extent: pres.Extent(), WindowPos: image.Pt(x, y), Format: pres.Format()}
					if snap.Run != nil {
						f.Epochs, f.Steps = len(snap.Run.Epochs), len(snap.Run.Steps)
					}
					opts.OnFrame(f)
				}
				log.Debug("frame presented", "n", res.Frames, "reason", reason, "width", size.X, "height", size.Y)
				reason = ""
				if opts.Frames > 0 && res.Frames >= opts.Frames {
					return res, nil
				}
			}
		}
		wait := opts.Poll - time.Since(lastPoll)
		glfw.WaitEventsTimeout(max(wait, time.Millisecond).Seconds())
	}
	return res, nil
}
