package cifar10

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"vktrain/train/fetch"
)

type tarEntry struct {
	name     string
	data     []byte
	typeflag byte // 0 means tar.TypeReg
	link     string
}

func buildTarGz(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: e.typeflag, Linkname: e.link}
		switch e.typeflag {
		case 0:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		case tar.TypeDir:
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// goodEntries is a small archive shaped like the official one: two tiny
// training batches, a test batch, the meta file and an entry to skip.
func goodEntries() []tarEntry {
	return []tarEntry{
		{name: DirName + "/", typeflag: tar.TypeDir},
		{name: DirName + "/data_batch_1.bin", data: makeBatch(3, 0, 1)},
		{name: DirName + "/data_batch_2.bin", data: makeBatch(2, 3, 2)},
		{name: DirName + "/batches.meta.txt", data: []byte("airplane\nautomobile\n")},
		{name: DirName + "/test_batch.bin", data: makeBatch(4, 5, 3)},
		{name: DirName + "/notes.sh", data: []byte("echo skipped")},
		{name: "other/readme.txt", data: []byte("skipped too")},
	}
}

func md5Hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// serve serves body at /cifar-10-binary.tar.gz and counts requests.
func serve(t *testing.T, body []byte) (url string, requests *atomic.Int32) {
	t.Helper()
	requests = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.ServeContent(w, r, "a.tar.gz", time.Time{}, bytes.NewReader(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/cifar-10-binary.tar.gz", requests
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// onlyEntries lists a directory's names.
func onlyEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestEnsureDownloadsAndUnpacks(t *testing.T) {
	archive := buildTarGz(t, goodEntries())
	url, requests := serve(t, archive)
	cache := t.TempDir()
	var progressed int64
	opts := Options{URL: url, MD5: md5Hex(archive), Logger: quiet(), Progress: func(done, total int64) { progressed = done }}
	ctx := context.Background()
	dir, err := Ensure(ctx, cache, opts)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(cache, DirName) {
		t.Errorf("dir %q", dir)
	}
	if progressed != int64(len(archive)) {
		t.Errorf("progress reached %d of %d", progressed, len(archive))
	}
	if got := strings.Join(onlyEntries(t, dir), ","); got != "batches.meta.txt,data_batch_1.bin,data_batch_2.bin,test_batch.bin" {
		t.Errorf("unpacked %s", got)
	}
	if got := onlyEntries(t, cache); len(got) != 1 || got[0] != DirName {
		t.Errorf("cache holds %v, want only %s (archive deleted, no temp dirs)", got, DirName)
	}
	train, err := Open(ctx, "", cache, true, opts)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 5 || train.Labels[3] != 3 || train.Image(4)[0] != makeBatch(2, 3, 2)[RecordBytes+1] {
		t.Errorf("training split: %d records, labels %v", train.Len(), train.Labels)
	}
	test, err := Open(ctx, "", cache, false, opts)
	if err != nil || test.Len() != 4 {
		t.Fatalf("test split: %v, %v", test, err)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1 (later calls use the cache)", n)
	}
	// An explicit data folder is read and the cache not consulted.
	other, err := Open(ctx, dir, filepath.Join(cache, "nowhere"), false, Options{URL: "http://127.0.0.1:1/x"})
	if err != nil || other.Len() != 4 {
		t.Errorf("Open with dataDir: %v", err)
	}
	// The parent of the batch folder works too.
	if other, err := Open(ctx, cache, "", true, Options{URL: "http://127.0.0.1:1/x"}); err != nil || other.Len() != 5 {
		t.Errorf("Open with the batch folder's parent: %v", err)
	}
	if _, err := Open(ctx, t.TempDir(), "", true, Options{}); err == nil || !strings.Contains(err.Error(), "data_batch_1.bin") {
		t.Errorf("Open with an empty dataDir: %v", err)
	}
}

func TestEnsureKeepArchiveAndPlacedByHand(t *testing.T) {
	archive := buildTarGz(t, goodEntries())
	cache := t.TempDir()
	// The archive put in the cache by hand: verified and unpacked, no request.
	writeFile(t, filepath.Join(cache, ArchiveName), archive)
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	dir, err := Ensure(context.Background(), cache, Options{URL: url, MD5: md5Hex(archive), KeepArchive: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, TestFile)); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(cache, ArchiveName)); err != nil {
		t.Errorf("archive not kept: %v", err)
	}
}

func TestEnsureWrongChecksum(t *testing.T) {
	archive := buildTarGz(t, goodEntries())
	url, _ := serve(t, archive)
	cache := t.TempDir()
	_, err := Ensure(context.Background(), cache, Options{URL: url, Logger: quiet()}) // the official md5
	var ce *fetch.ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("want a checksum error, got %v", err)
	}
	for _, s := range []string{url, MD5, md5Hex(archive)} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	if got := onlyEntries(t, cache); len(got) != 0 {
		t.Errorf("cache holds %v after a bad download", got)
	}
}

func TestEnsureOffline(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/cifar-10-binary.tar.gz"
	srv.Close()
	cache := t.TempDir()
	_, err := Ensure(context.Background(), cache, Options{URL: url})
	var de *fetch.DownloadError
	if !errors.As(err, &de) || !de.Offline {
		t.Fatalf("want an offline download error, got %v", err)
	}
	for _, s := range []string{url, filepath.Join(cache, ArchiveName), filepath.Join(cache, DirName), "--data DIR", TestFile} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
}

func TestEnsureUsesPresentFolder(t *testing.T) {
	cache := t.TempDir()
	dir := filepath.Join(cache, DirName)
	writeFile(t, filepath.Join(dir, TrainFile(3)), makeBatch(1, 0, 0))
	// Incomplete: no test batch. Ensure must not download over it.
	_, err := Ensure(context.Background(), cache, Options{URL: "http://127.0.0.1:1/never"})
	if err == nil || !strings.Contains(err.Error(), "incomplete") || !strings.Contains(err.Error(), dir) {
		t.Errorf("incomplete folder: %v", err)
	}
	writeFile(t, filepath.Join(dir, TestFile), makeBatch(2, 0, 0))
	got, err := Ensure(context.Background(), cache, Options{URL: "http://127.0.0.1:1/never"})
	if err != nil || got != dir {
		t.Errorf("complete folder: %q %v", got, err)
	}
}

// extractErr writes archive bytes into a fresh cache and unpacks them.
func extractErr(t *testing.T, archive []byte) (cache string, err error) {
	t.Helper()
	cache = t.TempDir()
	path := filepath.Join(cache, ArchiveName)
	writeFile(t, path, archive)
	err = extract(path, cache, quiet())
	return cache, err
}

func assertNothingUnpacked(t *testing.T, cache string) {
	t.Helper()
	if got := onlyEntries(t, cache); len(got) != 1 || got[0] != ArchiveName {
		t.Errorf("cache holds %v after a failed unpack, want only the archive", got)
	}
}

func TestExtractTruncated(t *testing.T) {
	archive := buildTarGz(t, goodEntries())
	for _, cut := range []int{len(archive) - 4, len(archive) / 2, 30, 5} {
		cache, err := extractErr(t, archive[:cut])
		if err == nil || !strings.Contains(err.Error(), ArchiveName) {
			t.Errorf("cut at %d of %d: %v", cut, len(archive), err)
		}
		assertNothingUnpacked(t, cache)
	}
	// Through Ensure: the archive's md5 matches, yet it is truncated.
	bad := archive[:len(archive)/2]
	url, _ := serve(t, bad)
	cache := t.TempDir()
	_, err := Ensure(context.Background(), cache, Options{URL: url, MD5: md5Hex(bad), Logger: quiet()})
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("Ensure on a truncated archive: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cache, DirName)); !errors.Is(err, os.ErrNotExist) {
		t.Error("data folder created from a truncated archive")
	}
}

func TestExtractRejectsUnsafeEntries(t *testing.T) {
	for _, evil := range []tarEntry{
		{name: "../evil.bin", data: []byte("x")},
		{name: DirName + "/../../evil.bin", data: []byte("x")},
		{name: "/tmp/evil.bin", data: []byte("x")},
		{name: `..\evil.bin`, data: []byte("x")},
	} {
		entries := append(goodEntries()[:2], evil)
		entries = append(entries, goodEntries()[2:]...)
		cache, err := extractErr(t, buildTarGz(t, entries))
		if err == nil || !strings.Contains(err.Error(), "outside") || !strings.Contains(err.Error(), fmt.Sprintf("%q", evil.name)) {
			t.Errorf("entry %q: %v", evil.name, err)
		}
		assertNothingUnpacked(t, cache)
		if _, err := os.Stat(filepath.Join(filepath.Dir(cache), "evil.bin")); err == nil {
			t.Fatalf("entry %q escaped", evil.name)
		}
	}
	for _, c := range []struct {
		entry tarEntry
		want  string
	}{
		{tarEntry{name: DirName + "/" + TestFile, typeflag: tar.TypeSymlink, link: "/etc/passwd"}, "not a regular file"},
		{tarEntry{name: DirName + "/" + TestFile, typeflag: tar.TypeLink, link: DirName + "/data_batch_1.bin"}, "not a regular file"},
		{tarEntry{name: DirName + "/" + TestFile, data: makeBatch(2, 0, 0)[:RecordBytes+7]}, "size"},
		{tarEntry{name: DirName + "/" + TrainFile(1), data: makeBatch(1, 0, 0)}, "twice"},
		{tarEntry{name: DirName + "/readme.html", data: make([]byte, maxOtherBytes+1)}, "more than"},
	} {
		entries := append(goodEntries()[:4], c.entry)
		cache, err := extractErr(t, buildTarGz(t, entries))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("entry %q type %q: want %q, got %v", c.entry.name, c.entry.typeflag, c.want, err)
		}
		assertNothingUnpacked(t, cache)
	}
	bad := makeBatch(3, 0, 0)
	bad[RecordBytes] = 200
	cache, err := extractErr(t, buildTarGz(t, []tarEntry{
		{name: DirName + "/" + TestFile, data: makeBatch(1, 0, 0)},
		{name: DirName + "/" + TrainFile(1), data: bad},
	}))
	if err == nil || !strings.Contains(err.Error(), "record 1 has label 200") {
		t.Errorf("bad label: %v", err)
	}
	assertNothingUnpacked(t, cache)
	cache, err = extractErr(t, buildTarGz(t, []tarEntry{{name: DirName + "/" + TrainFile(1), data: makeBatch(1, 0, 0)}}))
	if err == nil || !strings.Contains(err.Error(), "lacks") {
		t.Errorf("archive without a test batch: %v", err)
	}
	assertNothingUnpacked(t, cache)
	if _, err := extractErr(t, []byte("not gzip at all")); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("not gzip: %v", err)
	}
}
