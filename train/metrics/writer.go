package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Writer appends records to a metrics file, one JSON object per line. Each
// record goes out in a single write followed by a sync (for files) or a
// flush (for writers that have one), so a reader polling the file during
// training sees whole records, and at most the last line can be cut short
// by a crash. A Writer is safe for concurrent use.
type Writer struct {
	mu   sync.Mutex
	w    io.Writer
	f    *os.File // non-nil when the Writer opened the file itself
	name string   // for error messages
	buf  []byte
	err  error // sticky close state
}

// NewWriter returns a Writer that appends records to w. If w has a
// Sync() error method (like *os.File) it is called after every record,
// otherwise a Flush() error method, if any. The caller keeps ownership of w;
// Close does not close it.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, name: "metrics writer"}
}

// OpenFile opens (creating it if needed, with mode 0644) the metrics file at
// path for appending and returns a Writer on it. If the file ends in a
// partial line, from an earlier run that crashed mid-write, a newline is
// written first so that the next record starts on a line of its own.
func OpenFile(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metrics: open %s: %w", path, err)
	}
	if err := terminateLastLine(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("metrics: open %s: %w", path, err)
	}
	return &Writer{w: f, f: f, name: path}, nil
}

// terminateLastLine writes a newline to f (opened for appending) when f is
// not empty and does not end in one.
func terminateLastLine(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() == 0 {
		return nil
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], st.Size()-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	if _, err := f.Write([]byte{'\n'}); err != nil {
		return err
	}
	return nil
}

// WriteConfig appends a "config" record. A zero Schema is written as
// SchemaVersion.
func (w *Writer) WriteConfig(c Config) error {
	if c.Schema == 0 {
		c.Schema = SchemaVersion
	}
	return w.write(c)
}

// WriteStep appends a "step" record.
func (w *Writer) WriteStep(s Step) error { return w.write(s) }

// WriteEpoch appends an "epoch" record.
func (w *Writer) WriteEpoch(e Epoch) error { return w.write(e) }

// ErrClosed is returned by the Write methods of a closed Writer.
var ErrClosed = errors.New("metrics: writer is closed")

func (w *Writer) write(rec json.Marshaler) error {
	if w == nil {
		return ErrClosed
	}
	b, err := rec.MarshalJSON()
	if err != nil {
		return fmt.Errorf("metrics: %s: encode record: %w", w.name, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.buf = append(append(w.buf[:0], b...), '\n')
	if _, err := w.w.Write(w.buf); err != nil {
		return fmt.Errorf("metrics: write %s: %w", w.name, err)
	}
	switch s := w.w.(type) {
	case interface{ Sync() error }:
		if err := s.Sync(); err != nil {
			return fmt.Errorf("metrics: sync %s: %w", w.name, err)
		}
	case interface{ Flush() error }:
		if err := s.Flush(); err != nil {
			return fmt.Errorf("metrics: flush %s: %w", w.name, err)
		}
	}
	return nil
}

// Close closes the file if the Writer opened it (OpenFile); for a Writer
// from NewWriter it only stops further writes. Closing twice is harmless.
func (w *Writer) Close() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return nil
	}
	w.err = ErrClosed
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			return fmt.Errorf("metrics: close %s: %w", w.name, err)
		}
	}
	return nil
}
