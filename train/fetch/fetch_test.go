package fetch

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// payload returns n deterministic, non-repeating-looking bytes.
func payload(n int) []byte {
	b := make([]byte, n)
	x := uint32(12345)
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// recorder is an http.Handler serving data with Range support and counting
// requests; mode changes its behaviour.
type recorder struct {
	mu       sync.Mutex
	data     []byte
	requests int
	ranges   []string
	// dropAfter > 0: the first request sends this many bytes of a full
	// response and then drops the connection.
	dropAfter int
	// ignoreRange: always answer 200 with the whole body.
	ignoreRange bool
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests++
	n := r.requests
	r.ranges = append(r.ranges, req.Header.Get("Range"))
	drop, ignore := r.dropAfter, r.ignoreRange
	r.mu.Unlock()
	if drop > 0 && n == 1 {
		w.Header().Set("Content-Length", fmt.Sprint(len(r.data)))
		w.WriteHeader(http.StatusOK)
		w.Write(r.data[:drop])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // closes the connection mid-body
	}
	if ignore {
		w.Header().Set("Content-Length", fmt.Sprint(len(r.data)))
		w.Write(r.data)
		return
	}
	http.ServeContent(w, req, "f.bin", time.Time{}, bytes.NewReader(r.data))
}

func (r *recorder) stats() (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, append([]string(nil), r.ranges...)
}

func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func quietOpts(c Checksum) Options {
	return Options{Checksum: c, Logger: slog.New(slog.DiscardHandler), RetryWait: time.Millisecond, StallTimeout: 5 * time.Second}
}

func TestDownloadPlainWithChecksums(t *testing.T) {
	data := payload(300_000)
	for _, c := range []Checksum{SHA256(sha(data)), SHA256(sha(data)[:8]), MD5(md5hex(data)), MD5(strings.ToUpper(md5hex(data))), {}} {
		t.Run(c.String(), func(t *testing.T) {
			rec := &recorder{data: data}
			srv := newServer(t, rec)
			dest := filepath.Join(t.TempDir(), "sub", "f.bin")
			var calls int
			var last, lastTotal int64
			opts := quietOpts(c)
			opts.Progress = func(done, total int64) { calls++; last, lastTotal = done, total }
			if err := Download(context.Background(), srv.URL+"/f.bin", dest, opts); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(dest)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("dest content wrong (err %v)", err)
			}
			if _, err := os.Stat(dest + ".part"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf(".part left behind: %v", err)
			}
			if calls < 2 || last != int64(len(data)) || lastTotal != int64(len(data)) {
				t.Errorf("progress: %d calls, last (%d,%d)", calls, last, lastTotal)
			}
		})
	}
}

func TestDownloadWrongChecksum(t *testing.T) {
	data := payload(50_000)
	srv := newServer(t, &recorder{data: data})
	dir := t.TempDir()
	dest := filepath.Join(dir, "f.bin")
	want := sha(payload(10))
	err := Download(context.Background(), srv.URL+"/f.bin", dest, quietOpts(SHA256(want)))
	var ce *ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("want *ChecksumError, got %v", err)
	}
	msg := err.Error()
	for _, s := range []string{srv.URL + "/f.bin", want, sha(data)} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not mention %q", msg, s)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Errorf("files left behind: %v", ents)
	}
}

func TestDownloadResumesAfterDrop(t *testing.T) {
	data := payload(200_000)
	rec := &recorder{data: data, dropAfter: 70_000}
	srv := newServer(t, rec)
	dest := filepath.Join(t.TempDir(), "f.bin")
	opts := quietOpts(SHA256(sha(data)))

	err := Download(context.Background(), srv.URL+"/f.bin", dest, opts)
	var de *DownloadError
	if !errors.As(err, &de) || de.Partial != 70_000 || de.Offline {
		t.Fatalf("first call: want *DownloadError with 70000 bytes kept, got %#v (%v)", de, err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dest exists after a failed download")
	}
	var firstDone int64 = -1
	opts.Progress = func(done, total int64) {
		if firstDone < 0 {
			firstDone = done
		}
	}
	if err := Download(context.Background(), srv.URL+"/f.bin", dest, opts); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	if !bytes.Equal(got, data) {
		t.Fatal("resumed file differs")
	}
	n, ranges := rec.stats()
	if n != 2 || ranges[0] != "" || ranges[1] != "bytes=70000-" {
		t.Errorf("requests %d, Range headers %q; want 2 with the second bytes=70000-", n, ranges)
	}
	if firstDone != 70_000 {
		t.Errorf("progress on resume started at %d, want 70000", firstDone)
	}
}

func TestDownloadRetriesWithinOneCall(t *testing.T) {
	data := payload(100_000)
	rec := &recorder{data: data, dropAfter: 1000}
	srv := newServer(t, rec)
	dest := filepath.Join(t.TempDir(), "f.bin")
	opts := quietOpts(MD5(md5hex(data)))
	opts.Retries = 2
	if err := Download(context.Background(), srv.URL, dest, opts); err != nil {
		t.Fatal(err)
	}
	if n, ranges := rec.stats(); n != 2 || ranges[1] != "bytes=1000-" {
		t.Errorf("requests %d, ranges %q", n, ranges)
	}
}

func TestDownloadServerIgnoresRange(t *testing.T) {
	data := payload(80_000)
	rec := &recorder{data: data, ignoreRange: true}
	srv := newServer(t, rec)
	dest := filepath.Join(t.TempDir(), "f.bin")
	// A stale, wrong .part: it must be discarded, not appended to.
	if err := os.WriteFile(dest+".part", []byte("garbage that is not a prefix"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Download(context.Background(), srv.URL, dest, quietOpts(SHA256(sha(data)))); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	if !bytes.Equal(got, data) {
		t.Fatal("content differs after restart")
	}
	if _, ranges := rec.stats(); len(ranges) != 1 || !strings.HasPrefix(ranges[0], "bytes=28-") {
		t.Errorf("Range headers %q; want one request asking bytes=28-", ranges)
	}
}

func TestDownloadPartAlreadyComplete416(t *testing.T) {
	data := payload(40_000)
	rec := &recorder{data: data}
	srv := newServer(t, rec)
	dest := filepath.Join(t.TempDir(), "f.bin")
	os.WriteFile(dest+".part", data, 0o644)
	if err := Download(context.Background(), srv.URL, dest, quietOpts(SHA256(sha(data)))); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	if n, _ := rec.stats(); n != 1 {
		t.Errorf("%d requests, want 1 (answered 416)", n)
	}

	// A .part at full length but wrong: 416, fails verification, fetched again.
	bad := append([]byte(nil), data...)
	bad[5] ^= 0xff
	dest2 := filepath.Join(t.TempDir(), "g.bin")
	os.WriteFile(dest2+".part", bad, 0o644)
	if err := Download(context.Background(), srv.URL, dest2, quietOpts(SHA256(sha(data)))); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest2); !bytes.Equal(got, data) {
		t.Fatal("content differs after re-fetch")
	}
}

func TestDownloadDestPresentNoRequest(t *testing.T) {
	data := payload(1000)
	rec := &recorder{data: data}
	srv := newServer(t, rec)
	dest := filepath.Join(t.TempDir(), "f.bin")
	os.WriteFile(dest, data, 0o644)
	if err := Download(context.Background(), srv.URL, dest, quietOpts(SHA256(sha(data)[:8]))); err != nil {
		t.Fatal(err)
	}
	if n, _ := rec.stats(); n != 0 {
		t.Errorf("%d requests for a file already present", n)
	}
	// Present but corrupt: downloaded again.
	os.WriteFile(dest, []byte("corrupt"), 0o644)
	if err := Download(context.Background(), srv.URL, dest, quietOpts(SHA256(sha(data)))); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Fatal("corrupt dest not replaced")
	}
}

func TestDownloadUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/cifar.tar.gz"
	srv.Close() // nothing listens there now: connection refused
	dest := filepath.Join(t.TempDir(), "cifar.tar.gz")
	opts := quietOpts(MD5(md5hex([]byte("x"))))
	opts.Hint = "or pass --data DIR"
	err := Download(context.Background(), url, dest, opts)
	var de *DownloadError
	if !errors.As(err, &de) || !de.Offline {
		t.Fatalf("want offline *DownloadError, got %v", err)
	}
	for _, s := range []string{"download of " + url + " failed", dest, "by hand", "or pass --data DIR"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Error("dest created")
	}
}

func TestDownloadHTTPErrorAndBadInput(t *testing.T) {
	srv := newServer(t, http.NotFoundHandler())
	dest := filepath.Join(t.TempDir(), "f")
	err := Download(context.Background(), srv.URL, dest, quietOpts(Checksum{}))
	var de *DownloadError
	if !errors.As(err, &de) || de.Offline || !strings.Contains(err.Error(), "404") {
		t.Fatalf("want 404 *DownloadError, got %v", err)
	}
	if err := Download(context.Background(), srv.URL, dest, quietOpts(Checksum{"crc32", "abcd"})); err == nil || !strings.Contains(err.Error(), "unknown algorithm") {
		t.Errorf("bad algorithm: %v", err)
	}
	if err := Download(context.Background(), srv.URL, dest, quietOpts(MD5("1234"))); err == nil {
		t.Error("short md5 accepted")
	}
	if err := Download(context.Background(), "", dest, quietOpts(Checksum{})); err == nil {
		t.Error("empty URL accepted")
	}
}

func TestDownloadContextCancelKeepsPart(t *testing.T) {
	data := payload(100_000)
	ctx, cancel := context.WithCancel(context.Background())
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data[:5000])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	dest := filepath.Join(t.TempDir(), "f")
	opts := quietOpts(Checksum{})
	opts.Progress = func(done, total int64) {
		if done >= 5000 {
			cancel()
		}
	}
	err := Download(ctx, srv.URL, dest, opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if fi, err := os.Stat(dest + ".part"); err != nil || fi.Size() != 5000 {
		t.Errorf(".part after cancel: %v %v", fi, err)
	}
}

func TestDownloadStall(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write(make([]byte, 10))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer close(release)
	dest := filepath.Join(t.TempDir(), "f")
	opts := quietOpts(Checksum{})
	opts.StallTimeout = 100 * time.Millisecond
	err := Download(context.Background(), srv.URL, dest, opts)
	var de *DownloadError
	if !errors.As(err, &de) || de.Partial != 10 || !errors.Is(err, errStalled) {
		t.Fatalf("want stalled *DownloadError with 10 bytes, got %v", err)
	}
}

func TestParseContentRange(t *testing.T) {
	for _, c := range []struct {
		in          string
		start, size int64
		ok          bool
	}{
		{"bytes 0-99/100", 0, 100, true},
		{"bytes 50-99/*", 50, -1, true},
		{"bytes 50-99/60", 0, 0, false},
		{"bytes -1-5/9", 0, 0, false},
		{"items 0-1/2", 0, 0, false},
		{"", 0, 0, false},
	} {
		s, n, err := parseContentRange(c.in)
		if (err == nil) != c.ok || (c.ok && (s != c.start || n != c.size)) {
			t.Errorf("%q: got %d %d %v", c.in, s, n, err)
		}
	}
}

func TestParseChecksum(t *testing.T) {
	c, err := ParseChecksum("sha256:7be5be79")
	if err != nil || c != SHA256("7be5be79") {
		t.Errorf("got %v %v", c, err)
	}
	for _, bad := range []string{"7be5be79", "sha256:7be5", "sha256:xyzxyzxyz", "md5:abc", "sha1:" + strings.Repeat("a", 40)} {
		if _, err := ParseChecksum(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if c, err := ParseChecksum(""); err != nil || !c.IsZero() {
		t.Errorf("empty: %v %v", c, err)
	}
}

func TestCacheDir(t *testing.T) {
	t.Setenv(CacheEnv, "/tmp/vk-cache-test")
	if d, err := CacheDir(); err != nil || d != "/tmp/vk-cache-test" {
		t.Errorf("got %q %v", d, err)
	}
	t.Setenv(CacheEnv, "")
	t.Setenv("XDG_CACHE_HOME", "/tmp/xdg")
	d, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("/tmp/xdg", "vktrain"); d != want {
		t.Errorf("got %q want %q", d, want)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt.bin")
	if err := WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write([]byte("v1")); return err }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := WriteFileAtomic(path, func(w io.Writer) error { w.Write([]byte("half")); return boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "v1" {
		t.Errorf("old content replaced by a failed write: %q", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
	if err := WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write([]byte("v2")); return err }); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if string(got) != "v2" || fi.Mode().Perm() != 0o644 {
		t.Errorf("content %q mode %v", got, fi.Mode())
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x"), func(io.Writer) error { return nil }); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}
