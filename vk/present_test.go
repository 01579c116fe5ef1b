package vk

import (
	"errors"
	"image"
	"image/color"
	"runtime"
	"testing"
	"unsafe"
)

// The window path itself (surface, swapchain, present) is tested with a real
// window under Xvfb in vktrain/viz/watch; these tests need no display.

func TestOpenWithSwapchainExtension(t *testing.T) {
	d := openTest(t, func(o *Options) {
		o.InstanceExtensions = []string{"VK_KHR_surface"} // VK_KHR_swapchain requires it
		o.DeviceExtensions = []string{SwapchainExtension}
	})
	if d.InstanceHandle() == 0 {
		t.Fatal("no instance handle")
	}
	if _, err := d.NewPresenter(Surface{}, 64, 64); err == nil {
		t.Fatal("NewPresenter without a surface succeeded")
	}
}

func TestOpenWithUnknownExtensions(t *testing.T) {
	for _, o := range []Options{
		{InstanceExtensions: []string{"VK_KHR_no_such_extension"}},
		{DeviceExtensions: []string{"VK_KHR_no_such_extension\x00"}},
	} {
		o.PipelineCacheDir = "-"
		d, err := Open(o)
		if err == nil {
			d.Close()
			t.Fatalf("Open(%+v) succeeded", o)
		}
		var re *ResultError
		if !errors.As(err, &re) || re.Result != -7 { // VK_ERROR_EXTENSION_NOT_PRESENT
			t.Errorf("Open with a missing extension: %v, want VK_ERROR_EXTENSION_NOT_PRESENT", err)
		}
	}
}

func TestSurfaceHandles(t *testing.T) {
	if (Surface{}).Valid() || SurfaceFromPointer(0).Valid() {
		t.Error("zero surface is valid")
	}
	hp := new(uint64)
	*hp = 0x1234
	if !SurfaceFromHandle(*hp).Valid() {
		t.Error("SurfaceFromHandle lost the handle")
	}
	var pin runtime.Pinner // a fixed address, as glfw's is
	pin.Pin(hp)
	defer pin.Unpin()
	if got := SurfaceFromPointer(uintptr(unsafe.Pointer(hp))); got != SurfaceFromHandle(*hp) {
		t.Error("SurfaceFromPointer does not read the handle at the address")
	}
}

// fillPresenter is a Presenter without a device, for testing fill.
func fillPresenter(w, h int, bgra bool) *Presenter {
	return &Presenter{extent: image.Pt(w, h), bgra: bgra, mapped: make([]byte, w*h*4), Background: color.RGBA{1, 2, 3, 255}}
}

func TestFillSwizzlesAndLetterboxes(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 2, 1))
	src.SetRGBA(0, 0, color.RGBA{10, 20, 30, 255})
	src.SetRGBA(1, 0, color.RGBA{40, 50, 60, 255})

	// Same size, RGBA: a plain copy.
	p := fillPresenter(2, 1, false)
	p.fill(src)
	if got := p.mapped; string(got) != string(src.Pix) {
		t.Errorf("RGBA copy: %v, want %v", got, src.Pix)
	}
	// Same size, BGRA: red and blue swap.
	p = fillPresenter(2, 1, true)
	p.fill(src)
	if want := []byte{30, 20, 10, 255, 60, 50, 40, 255}; string(p.mapped) != string(want) {
		t.Errorf("BGRA swizzle: %v, want %v", p.mapped, want)
	}
	// 2x1 into 4x4: scaled to 4x2, centred vertically, background above and below.
	p = fillPresenter(4, 4, false)
	p.fill(src)
	px := func(x, y int) color.RGBA {
		o := (y*4 + x) * 4
		b := p.mapped[o : o+4]
		return color.RGBA{b[0], b[1], b[2], b[3]}
	}
	bg := color.RGBA{1, 2, 3, 255}
	for x := range 4 {
		if px(x, 0) != bg || px(x, 3) != bg {
			t.Errorf("column %d: letterbox rows %v %v, want background", x, px(x, 0), px(x, 3))
		}
		want := src.RGBAAt(x/2, 0)
		if px(x, 1) != want || px(x, 2) != want {
			t.Errorf("column %d: picture rows %v %v, want %v", x, px(x, 1), px(x, 2), want)
		}
	}
	// 1x2 into 4x2: pillarboxed.
	tall := image.NewRGBA(image.Rect(0, 0, 1, 2))
	tall.SetRGBA(0, 0, color.RGBA{9, 9, 9, 255})
	tall.SetRGBA(0, 1, color.RGBA{7, 7, 7, 255})
	p = fillPresenter(4, 2, false)
	p.fill(tall)
	if px(0, 0) != bg || px(3, 1) != bg || px(1, 0) != (color.RGBA{9, 9, 9, 255}) || px(1, 1) != (color.RGBA{7, 7, 7, 255}) {
		t.Errorf("pillarbox: row 0 %v %v, row 1 %v %v", px(0, 0), px(1, 0), px(1, 1), px(3, 1))
	}
}
