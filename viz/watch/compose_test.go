package watch

import (
	"os"
	"path/filepath"
	"testing"

	"vktrain/train/metrics"
)

// These tests need no display.

func TestLoadAndChanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, metrics.FileName)
	s := Load(dir)
	if s.Run != nil || s.Err != nil || s.Path != path {
		t.Fatalf("missing file: %+v", s)
	}
	if s.changed() {
		t.Fatal("a still-missing file changed")
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !s.changed() {
		t.Fatal("creating the file is no change")
	}
	s = Load(dir)
	if s.Run != nil || s.Err != nil {
		t.Fatalf("empty file: %+v", s)
	}
	writeEpoch(t, path, 1, true)
	if !s.changed() {
		t.Fatal("writing records is no change")
	}
	s = Load(path) // the file itself works too
	if s.Run == nil || len(s.Run.Epochs) != 1 || s.changed() {
		t.Fatalf("after one epoch: %+v", s)
	}
	writeEpoch(t, path, 2, false)
	if !s.changed() {
		t.Fatal("appending an epoch is no change")
	}
	if s = Load(dir); len(s.Run.Epochs) != 2 {
		t.Fatalf("after the append: %d epochs", len(s.Run.Epochs))
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if !s.changed() {
		t.Fatal("removing the file is no change")
	}
}

func TestCompose(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, metrics.FileName)
	waiting := Compose(Load(dir), 400, 300)
	if waiting.Rect.Dx() != 400 || waiting.Rect.Dy() != 300 {
		t.Fatalf("size %v", waiting.Rect)
	}
	if n := distinctColours(waiting, 50); n < 3 {
		t.Fatalf("waiting picture has %d colours: no message", n)
	}
	writeEpoch(t, path, 1, true)
	one := Compose(Load(dir), 1000, 700)
	writeEpoch(t, path, 2, false)
	two := Compose(Load(dir), 1000, 700)
	if n := distinctColours(two, 50); n < 20 {
		t.Fatalf("figures have only %d colours", n)
	}
	if n := mismatch(one, two, one.Rect.Min); n < 1000 {
		t.Fatalf("a new epoch changes only %d pixels", n)
	}
	// Narrow and tiny windows draw without panicking.
	for _, sz := range [][2]int{{500, 900}, {50, 50}, {1, 1}} {
		if img := Compose(Load(dir), sz[0], sz[1]); img.Rect.Dx() != sz[0] || img.Rect.Dy() != sz[1] {
			t.Errorf("Compose at %v gave %v", sz, img.Rect)
		}
	}
}
