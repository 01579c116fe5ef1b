// Package fetch downloads files robustly: into a ".part" file that a later
// call resumes with an HTTP Range request, verified by checksum, and moved
// into place atomically. It also holds the cache-directory rule, an atomic
// file writer and a text progress bar that vktrain's other packages share.
//
// Nothing here prints: progress goes to a callback and logs to a
// *slog.Logger, both supplied by the caller.
package fetch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CacheEnv is the environment variable that overrides the cache directory.
const CacheEnv = "VKTRAIN_CACHE"

// CacheDir returns the directory vktrain caches downloads in: $VKTRAIN_CACHE
// when set, else os.UserCacheDir()/vktrain (on Linux $XDG_CACHE_HOME/vktrain
// or ~/.cache/vktrain). It does not create the directory.
func CacheDir() (string, error) {
	if d := os.Getenv(CacheEnv); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("fetch: no cache directory (set %s): %w", CacheEnv, err)
	}
	return filepath.Join(base, "vktrain"), nil
}

// Options tunes Download. The zero value downloads without verification,
// progress or logging, with a default HTTP client.
type Options struct {
	// Checksum the whole file must have; the zero value skips verification.
	Checksum Checksum
	// Progress, when not nil, is called as bytes arrive with the bytes held
	// so far (a resumed prefix included) and the total size, -1 if unknown.
	Progress func(done, total int64)
	// Client makes the requests; nil means a client with no overall timeout
	// (a stalled transfer is caught by StallTimeout instead).
	Client *http.Client
	// Logger receives progress events and warnings; nil discards them.
	Logger *slog.Logger
	// Hint is appended to download errors to say how to get the file by hand,
	// e.g. "or pass --data DIR". The error already names the URL and dest.
	Hint string
	// Retries is how many more times Download resumes at once, within this
	// call, after a transfer breaks off mid-body. Zero means the call fails
	// and leaves the .part for the next call to resume.
	Retries int
	// RetryWait is the pause before the first retry, doubled for each
	// further one; zero means one second.
	RetryWait time.Duration
	// StallTimeout aborts a transfer (keeping the .part) when no byte has
	// arrived for this long; zero means one minute.
	StallTimeout time.Duration
}

// DownloadError reports a download that did not complete: the server could
// not be reached, answered with an error status, or broke off mid-body.
type DownloadError struct {
	URL  string // what was requested
	Dest string // where the file belongs
	Hint string // the caller's hint for getting the file by hand
	// Offline is true when no connection could be made (DNS, refused,
	// unreachable network, TLS handshake): the machine is likely offline.
	Offline bool
	// Partial is the number of bytes kept in Dest+".part" for a later call to
	// resume from; 0 if none.
	Partial int64
	Err     error // the underlying cause
}

// Error says what failed and how to put the file in place by hand.
func (e *DownloadError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fetch: download of %s failed: %v", e.URL, e.Err)
	if e.Partial > 0 {
		fmt.Fprintf(&b, "; %d bytes are kept in %s.part and the next attempt resumes from there", e.Partial, e.Dest)
	}
	if e.Offline {
		b.WriteString("; this machine looks offline")
	}
	fmt.Fprintf(&b, "; to install it by hand, download %s elsewhere and put it at %s", e.URL, e.Dest)
	if e.Hint != "" {
		b.WriteString(" ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *DownloadError) Unwrap() error { return e.Err }

// ChecksumError reports a file whose digest is not the expected one.
type ChecksumError struct {
	URL      string // where the file came from ("" for a local file)
	Path     string // the file that was checked
	Expected Checksum
	Got      string // the full hex digest found
	Removed  bool   // whether Path was deleted
}

// Error names the file, the expected and the actual digest.
func (e *ChecksumError) Error() string {
	src := e.Path
	if e.URL != "" {
		src = e.URL + " (saved as " + e.Path + ")"
	}
	s := fmt.Sprintf("fetch: checksum mismatch for %s: expected %s, got %s:%s", src, e.Expected, e.Expected.Algorithm, e.Got)
	if e.Removed {
		s += "; the bad file was deleted"
	}
	return s
}

func discardIfNil(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Download fetches url into dest, verified by opts.Checksum.
//
// If dest already exists and verifies, Download does nothing (no request).
// Otherwise the body goes into dest+".part"; when a .part exists the request
// asks for the rest with a Range header: a 206 answer appends, a 200 answer
// (the server ignores Range) starts over, a 416 answer means the .part is
// already whole (or bad) and it is verified as it stands. The whole file is
// then verified; on a mismatch the .part is deleted and a *ChecksumError
// returned. On success the .part is synced and renamed to dest atomically.
//
// Network failures return a *DownloadError whose message names the URL, dest
// and opts.Hint. A transfer that breaks off keeps the .part for the next call
// (or retries at once, see Options.Retries). Concurrent downloads to the same
// dest, from goroutines or processes, are not supported.
func Download(ctx context.Context, url, dest string, opts Options) error {
	log := discardIfNil(opts.Logger)
	if url == "" {
		return fmt.Errorf("fetch: no URL given for %s", dest)
	}
	if dest == "" {
		return fmt.Errorf("fetch: no destination given for %s", url)
	}
	if err := opts.Checksum.Validate(); err != nil {
		return fmt.Errorf("fetch: %s: %w", url, err)
	}

	fi, err := os.Stat(dest)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return fmt.Errorf("fetch: %s: destination %s exists and is not a regular file", url, dest)
	case err == nil:
		got, ok, err := VerifyFile(dest, opts.Checksum)
		if err != nil {
			return fmt.Errorf("fetch: %s: checking existing %s: %w", url, dest, err)
		}
		if ok {
			log.Debug("already downloaded", "path", dest, "checksum", opts.Checksum.String())
			return nil
		}
		log.Warn("existing file does not match its checksum; downloading it again",
			"path", dest, "expected", opts.Checksum.String(), "got", got)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("fetch: %s: %w", url, err)
	}

	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("fetch: %s: creating the destination directory: %w", url, err)
	}
	part := dest + ".part"
	d := downloader{ctx: ctx, url: url, dest: dest, part: part, opts: opts, log: log}
	if d.opts.Client == nil {
		d.opts.Client = &http.Client{}
	}
	restartedAfter416 := false
	wait := opts.RetryWait
	if wait <= 0 {
		wait = time.Second
	}
	for attempt := 0; ; {
		got416, err := d.once()
		if err != nil {
			var de *DownloadError
			if errors.As(err, &de) && de.Partial > 0 && attempt < opts.Retries && ctx.Err() == nil {
				attempt++
				log.Warn("download interrupted; resuming", "url", url, "have", de.Partial, "attempt", attempt, "of", opts.Retries, "err", de.Err)
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return fmt.Errorf("fetch: download of %s: %w", url, ctx.Err())
				}
				wait *= 2
				continue
			}
			return err
		}
		got, ok, err := VerifyFile(part, opts.Checksum)
		if err != nil {
			return fmt.Errorf("fetch: %s: %w", url, err)
		}
		if !ok {
			rmErr := os.Remove(part)
			if got416 && !restartedAfter416 && rmErr == nil {
				// The server said the .part was already complete, yet it
				// does not verify: it was bad. Fetch it once more whole.
				restartedAfter416 = true
				log.Warn("partial file was complete but does not verify; downloading again", "url", url, "got", got)
				continue
			}
			return &ChecksumError{URL: url, Path: part, Expected: opts.Checksum, Got: got, Removed: rmErr == nil}
		}
		if err := syncAndRename(part, dest); err != nil {
			return fmt.Errorf("fetch: %s: %w", url, err)
		}
		log.Info("downloaded", "url", url, "path", dest, "checksum", opts.Checksum.String())
		return nil
	}
}

type downloader struct {
	ctx  context.Context
	url  string
	dest string
	part string
	opts Options
	log  *slog.Logger
}

func (d *downloader) fail(err error, offline bool) *DownloadError {
	var have int64
	if fi, e := os.Stat(d.part); e == nil {
		have = fi.Size()
	}
	return &DownloadError{URL: d.url, Dest: d.dest, Hint: d.opts.Hint, Offline: offline, Partial: have, Err: err}
}

// once makes one request and stores the body in the .part. It reports whether
// the server answered 416 (the .part is taken as complete).
func (d *downloader) once() (got416 bool, err error) {
	for restart := 0; restart < 2; restart++ {
		var offset int64
		if fi, err := os.Stat(d.part); err == nil {
			offset = fi.Size()
		} else if !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("fetch: %s: %w", d.url, err)
		}
		if restart > 0 {
			offset = 0
		}
		done, got416, err := d.request(offset)
		if err != nil || done {
			return got416, err
		}
		// The server's answer cannot extend the .part: start over.
		if err := os.Remove(d.part); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("fetch: %s: %w", d.url, err)
		}
	}
	return false, fmt.Errorf("fetch: %s: the server's Content-Range does not match the request", d.url)
}

var errStalled = errors.New("no data received within the stall timeout")

// request asks for the bytes from offset on. done=false with no error means
// the answer could not be used and the caller should start over from 0.
func (d *downloader) request(offset int64) (done, got416 bool, err error) {
	stall := d.opts.StallTimeout
	if stall <= 0 {
		stall = time.Minute
	}
	ctx, cancel := context.WithCancelCause(d.ctx)
	defer cancel(nil)
	timer := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer timer.Stop()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.url, nil)
	if err != nil {
		return false, false, fmt.Errorf("fetch: bad URL %q: %w", d.url, err)
	}
	req.Header.Set("User-Agent", "vktrain-fetch/1")
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		d.log.Info("resuming download", "url", d.url, "from", offset)
	} else {
		d.log.Info("downloading", "url", d.url, "to", d.dest)
	}
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		if d.ctx.Err() != nil {
			return false, false, fmt.Errorf("fetch: download of %s: %w", d.url, d.ctx.Err())
		}
		if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
			err = cause
		}
		return false, false, d.fail(err, isOffline(err))
	}
	defer resp.Body.Close()

	total := int64(-1)
	flag := os.O_WRONLY | os.O_CREATE
	switch resp.StatusCode {
	case http.StatusOK:
		if offset > 0 {
			d.log.Info("server ignored the Range request; starting over", "url", d.url)
		}
		offset = 0
		flag |= os.O_TRUNC
		total = resp.ContentLength
	case http.StatusPartialContent:
		start, size, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != offset {
			d.log.Warn("unusable Content-Range; starting over", "url", d.url, "content-range", resp.Header.Get("Content-Range"), "want-start", offset)
			return false, false, nil
		}
		total = size
		if total < 0 && resp.ContentLength >= 0 {
			total = offset + resp.ContentLength
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if offset == 0 {
			return false, false, d.fail(fmt.Errorf("HTTP %s", resp.Status), false)
		}
		d.log.Info("server says the partial file is complete; verifying", "url", d.url, "size", offset)
		return true, true, nil
	default:
		return false, false, d.fail(fmt.Errorf("HTTP %s", resp.Status), false)
	}

	f, err := os.OpenFile(d.part, flag, 0o644)
	if err != nil {
		return false, false, fmt.Errorf("fetch: %s: %w", d.url, err)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return false, false, fmt.Errorf("fetch: %s: seeking %s: %w", d.url, d.part, err)
	}
	n := offset
	progress := d.opts.Progress
	if progress != nil {
		progress(n, total)
	}
	buf := make([]byte, 64<<10)
	var readErr error
	for {
		k, rerr := resp.Body.Read(buf)
		if k > 0 {
			timer.Reset(stall)
			if _, werr := f.Write(buf[:k]); werr != nil {
				f.Close()
				return false, false, fmt.Errorf("fetch: %s: writing %s: %w", d.url, d.part, werr)
			}
			n += int64(k)
			if progress != nil {
				progress(n, total)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			readErr = rerr
			break
		}
	}
	if err := f.Close(); err != nil {
		return false, false, fmt.Errorf("fetch: %s: writing %s: %w", d.url, d.part, err)
	}
	if readErr != nil {
		if d.ctx.Err() != nil {
			return false, false, fmt.Errorf("fetch: download of %s interrupted (partial file %s kept): %w", d.url, d.part, d.ctx.Err())
		}
		if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
			readErr = cause
		}
		return false, false, d.fail(fmt.Errorf("transfer broke off after %d bytes: %w", n, readErr), false)
	}
	if total >= 0 && n != total {
		return false, false, d.fail(fmt.Errorf("transfer ended after %d of %d bytes", n, total), false)
	}
	return true, false, nil
}

// parseContentRange parses "bytes START-END/SIZE" (SIZE may be "*", -1).
func parseContentRange(s string) (start, size int64, err error) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	rng, sz, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	size = -1
	if sz != "*" {
		size, err = strconv.ParseInt(sz, 10, 64)
		if err != nil || size <= end {
			return 0, 0, fmt.Errorf("bad Content-Range %q", s)
		}
	}
	return start, size, nil
}

// syncAndRename flushes src to disk, renames it to dst and syncs the
// directory so the rename survives a crash.
func syncAndRename(src, dst string) error {
	f, err := os.OpenFile(src, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", src, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", src, err)
	}
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	syncDir(filepath.Dir(dst))
	return nil
}

// syncDir fsyncs a directory; failures are ignored (some file systems and
// platforms do not support it, and the data itself is already synced).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// SyncDir fsyncs the directory dir so that renames and creations in it are
// durable. Errors are ignored where the platform cannot sync directories.
func SyncDir(dir string) { syncDir(dir) }

// WriteFileAtomic writes a file through write and then moves it to path in
// one step: readers see either the old file or the whole new one, never a
// partial one. The data goes to a temporary file in path's directory, which
// is synced, given mode 0644 and renamed over path; on any error (from write
// included) the temporary file is removed and path is left untouched.
func WriteFileAtomic(path string, write func(w io.Writer) error) (err error) {
	if write == nil {
		return fmt.Errorf("fetch: writing %s: nil write function", path)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("fetch: writing %s: %w", path, err)
	}
	name := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(name)
		}
	}()
	bw := bufio.NewWriterSize(tmp, 256<<10)
	if err := write(bw); err != nil {
		return fmt.Errorf("fetch: writing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("fetch: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("fetch: writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fetch: writing %s: syncing: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("fetch: writing %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("fetch: writing %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// isOffline reports whether err means no connection could be made at all.
func isOffline(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}
