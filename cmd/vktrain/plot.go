package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"vktrain/train/metrics"
	"vktrain/viz"
)

// runPlot redraws the figures of one or more run directories from their
// metrics.jsonl; with several runs it also draws their test accuracy side by side.
func runPlot(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("plot", e)
	out := fs.String("out", "", "where to write compare.png when several runs are given (default: the first run's directory)")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: vktrain plot [--out DIR] RUN_DIR [RUN_DIR...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no run directory given")
	}
	var runs []*metrics.Run
	for _, dir := range fs.Args() {
		run, err := metrics.Read(dir, e.log)
		if err != nil {
			return err
		}
		paths, err := viz.SaveAll(dir, run)
		if err != nil {
			return err
		}
		if len(paths) == 0 {
			fmt.Fprintf(e.stdout, "%s: no data to plot yet\n", dir)
		}
		for _, p := range paths {
			fmt.Fprintln(e.stdout, p)
		}
		runs = append(runs, run)
	}
	if len(runs) < 2 {
		return nil
	}
	p, err := viz.Compare(runs)
	if err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		dir = fs.Arg(0)
	}
	path := filepath.Join(dir, "compare.png")
	if err := viz.Save(p, path, viz.Width, viz.Height); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, path)
	return nil
}
