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
// metrics.jsonl. With several runs it also draws compare.png: when some runs
// differ only in a -seed<N> suffix (vktrain-seed1, vktrain-seed2, ...), each
// such group's training loss and test accuracy as the mean and min-max over
// its seeds (viz.SaveCompareGroups); otherwise every run's test accuracy
// (viz.Compare).
func runPlot(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("plot", e)
	out := fs.String("out", "", "where to write compare.png when several runs are given (default: the first run's directory)")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: vktrain plot [--out DIR] RUN_DIR [RUN_DIR...]")
		fmt.Fprintln(e.stderr, "Redraws each run's figures. With several runs, also writes compare.png: runs named")
		fmt.Fprintln(e.stderr, "NAME-seedN are grouped by NAME and drawn as the mean and min-max over the seeds")
		fmt.Fprintln(e.stderr, "(training loss and test accuracy); without such groups, each run's test accuracy.")
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
	dir := *out
	if dir == "" {
		dir = fs.Arg(0)
	}
	path := filepath.Join(dir, "compare.png")
	if groups := viz.GroupBySeed(runs); hasSeeds(groups) {
		if err := viz.SaveCompareGroups(path, groups); err != nil {
			return err
		}
	} else {
		p, err := viz.Compare(runs)
		if err != nil {
			return err
		}
		if err := viz.Save(p, path, viz.Width, viz.Height); err != nil {
			return err
		}
	}
	fmt.Fprintln(e.stdout, path)
	return nil
}

// hasSeeds reports whether a group holds several runs (seeds).
func hasSeeds(groups []viz.RunGroup) bool {
	for _, g := range groups {
		if len(g.Runs) > 1 {
			return true
		}
	}
	return false
}
