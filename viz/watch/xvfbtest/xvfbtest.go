// Package xvfbtest starts a private X server (Xvfb) for window tests.
package xvfbtest

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Start starts Xvfb on a free display (1024x768x24), stopped when the test ends,
// and returns the display name (":N"). It skips the test where Xvfb is missing.
func Start(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("Xvfb")
	if err != nil {
		t.Skip("Xvfb not installed (apt-get install xvfb, or run .ci/setup.sh): skipping the window test")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// -displayfd makes Xvfb pick a free display and write its number to fd 3.
	cmd := exec.Command(bin, "-displayfd", "3", "-screen", "0", "1024x768x24", "-nolisten", "tcp", "-br")
	cmd.ExtraFiles = []*os.File{w}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting Xvfb: %v", err)
	}
	w.Close()
	t.Cleanup(func() { stop(cmd) })
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		got <- strings.TrimSpace(line)
	}()
	select {
	case n := <-got:
		if n == "" {
			t.Fatalf("Xvfb reported no display: %s", stderr.String())
		}
		return ":" + n
	case <-time.After(10 * time.Second):
		t.Fatalf("Xvfb did not start in 10 s: %s", stderr.String())
	}
	return ""
}

// stop ends Xvfb with SIGTERM, so that it removes its lock file and socket, and
// kills it if it lingers.
func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}
