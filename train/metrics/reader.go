package metrics

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
)

// Run is everything a metrics file holds about one training run.
type Run struct {
	// Name is the run's name: the base name of its run directory.
	Name string
	// Path is the metrics file the run was read from.
	Path string
	// Config is the last config record in the file; nil if there is none
	// yet.
	Config *Config
	// Steps holds the step records in step order.
	Steps []Step
	// Epochs holds the epoch records in epoch order.
	Epochs []Epoch
	// Warnings lists the lines that were skipped.
	Warnings []Warning
}

// Warning describes a line of a metrics file that Read skipped.
type Warning struct {
	// Line is the 1-based line number.
	Line int
	// Err says what was wrong with it.
	Err error
}

// Error implements the error interface.
func (w Warning) Error() string { return "line " + strconv.Itoa(w.Line) + ": " + w.Err.Error() }

// Unwrap returns the underlying error.
func (w Warning) Unwrap() error { return w.Err }

// Reasons for skipping a line, found in Warning.Err with errors.Is.
var (
	// ErrTruncated marks a last line without its newline that does not
	// parse: a record still being written, or cut short by a crash.
	ErrTruncated = errors.New("truncated last line")
	// ErrMalformed marks a line that is not a JSON object.
	ErrMalformed = errors.New("malformed JSON")
	// ErrUnknownKind marks a record whose "kind" is missing or unknown.
	ErrUnknownKind = errors.New("unknown record kind")
)

// Read reads a run from path, which is either a metrics file or a run
// directory holding one named FileName. Lines that cannot be used are
// skipped, logged as warnings through logger (nil = discard) and listed in
// Run.Warnings; they never make Read fail. Unknown fields are ignored. Read
// fails only when the file cannot be opened or read.
//
// When the step or epoch numbers go backwards (a run resumed from an earlier
// checkpoint appends to the same file), the later records replace the
// earlier ones from that point on, so Steps and Epochs stay in order.
func Read(path string, logger *slog.Logger) (*Run, error) {
	file := path
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		file = filepath.Join(path, FileName)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer f.Close()
	name := filepath.Base(filepath.Dir(file))
	if abs, err := filepath.Abs(file); err == nil {
		name = filepath.Base(filepath.Dir(abs))
	}
	run, err := Parse(f, name, logger)
	if err != nil {
		return nil, fmt.Errorf("metrics: read %s: %w", file, err)
	}
	run.Path = file
	return run, nil
}

// Parse reads the records of a metrics file from r, as Read does, and names
// the run name. It fails only when r fails.
func Parse(r io.Reader, name string, logger *slog.Logger) (*Run, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	run := &Run{Name: name}
	br := bufio.NewReader(r)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, err
		}
		eof := err == io.EOF
		if len(line) > 0 {
			complete := line[len(line)-1] == '\n'
			if werr := run.add(bytes.TrimSpace(line), logger); werr != nil {
				if eof && !complete && errors.Is(werr, ErrMalformed) {
					werr = fmt.Errorf("%w (still being written?): %w", ErrTruncated, werr)
				}
				w := Warning{Line: lineNo, Err: werr}
				run.Warnings = append(run.Warnings, w)
				logger.LogAttrs(context.Background(), slog.LevelWarn, "metrics: skipped line",
					slog.String("run", name), slog.Int("line", lineNo), slog.String("reason", werr.Error()))
			}
		}
		if eof {
			return run, nil
		}
	}
}

// add parses one trimmed line and adds its record to run. It returns why
// the line was skipped, or nil.
func (run *Run) add(line []byte, logger *slog.Logger) error {
	if len(line) == 0 {
		return nil
	}
	var head struct {
		Kind *string `json:"kind"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if head.Kind == nil {
		return fmt.Errorf("%w: no \"kind\" field", ErrUnknownKind)
	}
	switch *head.Kind {
	case KindConfig:
		var c Config
		if err := json.Unmarshal(line, &c); err != nil {
			return fmt.Errorf("%w: config: %w", ErrMalformed, err)
		}
		run.Config = &c
	case KindStep:
		var s Step
		if err := json.Unmarshal(line, &s); err != nil {
			return fmt.Errorf("%w: step: %w", ErrMalformed, err)
		}
		run.Steps = appendRestarting(run.Steps, s, func(x Step) int { return x.Step }, "step", run.Name, logger)
	case KindEpoch:
		var e Epoch
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("%w: epoch: %w", ErrMalformed, err)
		}
		run.Epochs = appendRestarting(run.Epochs, e, func(x Epoch) int { return x.Epoch }, "epoch", run.Name, logger)
	default:
		return fmt.Errorf("%w %q", ErrUnknownKind, *head.Kind)
	}
	return nil
}

// ClassNames returns the class names from the config. Without them it
// returns "0", "1", ... for as many classes as the last epoch record shows,
// or nil when there is nothing to count.
func (run *Run) ClassNames() []string {
	if run.Config != nil && len(run.Config.Classes) > 0 {
		return run.Config.Classes
	}
	n := 0
	if len(run.Epochs) > 0 {
		e := run.Epochs[len(run.Epochs)-1]
		n = max(len(e.PerClassAcc), len(e.Confusion))
	}
	if n == 0 {
		return nil
	}
	names := make([]string, n)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	return names
}

// StepsPerEpoch returns the number of mini-batches per epoch: from the
// config's steps_per_epoch, else from its train_images and batch, else from
// the step count at the end of the first epoch record; 0 when unknown.
func (run *Run) StepsPerEpoch() int {
	if c := run.Config; c != nil {
		if c.StepsPerEpoch > 0 {
			return c.StepsPerEpoch
		}
		if c.TrainImages > 0 && c.Batch > 0 {
			return (c.TrainImages + c.Batch - 1) / c.Batch
		}
	}
	if len(run.Epochs) > 0 && run.Epochs[0].Epoch == 1 && run.Epochs[0].Step > 0 {
		return run.Epochs[0].Step
	}
	return 0
}

// Epoch returns the record of epoch n (from 1), or, for n < 0, the last
// epoch record; ok is false if there is no such record.
func (run *Run) Epoch(n int) (e *Epoch, ok bool) {
	if len(run.Epochs) == 0 {
		return nil, false
	}
	if n < 0 {
		return &run.Epochs[len(run.Epochs)-1], true
	}
	for i := range run.Epochs {
		if run.Epochs[i].Epoch == n {
			return &run.Epochs[i], true
		}
	}
	return nil, false
}

// appendRestarting appends rec to recs. A record numbered (by num) no higher than
// the last one means the run was resumed from an earlier point: the records from
// that number on are dropped first, so the later ones replace them.
func appendRestarting[T any](recs []T, rec T, num func(T) int, what, run string, logger *slog.Logger) []T {
	k := num(rec)
	if n := len(recs); n > 0 && k <= num(recs[n-1]) {
		i := 0
		for i < n && num(recs[i]) < k {
			i++
		}
		logger.Info("metrics: "+what+" numbers restart; dropping later "+what+"s",
			slog.String("run", run), slog.Int(what, k), slog.Int("dropped", n-i))
		recs = recs[:i]
	}
	return append(recs, rec)
}
