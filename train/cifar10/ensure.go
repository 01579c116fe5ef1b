package cifar10

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"vktrain/train/fetch"
)

// Options tunes Ensure and Open. The zero value downloads the official
// archive with a default client and no progress or logging.
type Options struct {
	// URL of the binary archive; "" means the official URL. Tests and
	// mirrors override it.
	URL string
	// MD5 the archive must have (hex); "" means the official digest.
	MD5 string
	// Client makes the requests; nil means a default client.
	Client *http.Client
	// Logger receives progress events; nil discards them.
	Logger *slog.Logger
	// Progress, when not nil, is called with (bytes so far, total or -1)
	// during the download; fetch.Progress.Update fits.
	Progress func(done, total int64)
	// Retries is how many times a broken-off download is resumed at once
	// (see fetch.Options.Retries).
	Retries int
	// KeepArchive keeps the downloaded .tar.gz in the cache after it has
	// been unpacked; by default it is deleted to save 163 MiB.
	KeepArchive bool
}

// Open returns the training (train) or test split. With dataDir set it
// reads the batch files there (or in dataDir/cifar-10-batches-bin when
// dataDir itself holds none) and never downloads. Otherwise it calls
// Ensure(ctx, cacheDir, opts) and reads the folder it returns; cacheDir ""
// means fetch.CacheDir().
func Open(ctx context.Context, dataDir, cacheDir string, train bool, opts Options) (*Dataset, error) {
	if dataDir != "" {
		sub := filepath.Join(dataDir, DirName)
		if have, err := present(dataDir, batchFiles(train)); err == nil && len(have) == 0 {
			if fi, err := os.Stat(sub); err == nil && fi.IsDir() {
				dataDir = sub
			}
		}
		return LoadDir(dataDir, train)
	}
	dir, err := Ensure(ctx, cacheDir, opts)
	if err != nil {
		return nil, err
	}
	return LoadDir(dir, train)
}

// Ensure makes sure cacheDir/cifar-10-batches-bin holds the data set and
// returns that folder's path; cacheDir "" means fetch.CacheDir().
//
// A folder that already holds test_batch.bin and at least one
// data_batch_N.bin is used as it is. Otherwise the archive is downloaded
// (resumably, verified by md5) to cacheDir/cifar-10-binary.tar.gz, or taken
// from there if it is already present and verifies, and unpacked: only the
// expected regular files under cifar-10-batches-bin/, their sizes and labels
// checked, into a temporary folder renamed into place when complete.
// Offline, the error says where to put the archive or the unpacked files.
// Ensure is not safe to run from two processes on one cache at once.
func Ensure(ctx context.Context, cacheDir string, opts Options) (string, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cacheDir == "" {
		d, err := fetch.CacheDir()
		if err != nil {
			return "", fmt.Errorf("cifar10: %w", err)
		}
		cacheDir = d
	}
	dir := filepath.Join(cacheDir, DirName)
	have, err := present(dir, append(batchFiles(true), TestFile))
	if err != nil {
		return "", err
	}
	if complete(have) {
		log.Debug("CIFAR-10 found", "dir", dir, "files", have)
		return dir, nil
	}
	if len(have) > 0 {
		return "", fmt.Errorf("cifar10: %s is incomplete (it has %s; it needs %s and at least one data_batch_N.bin): complete it by hand or remove it to download the data set again",
			dir, strings.Join(have, ", "), TestFile)
	}

	url, sum := opts.URL, opts.MD5
	if url == "" {
		url = URL
	}
	if sum == "" {
		sum = MD5
	}
	archive := filepath.Join(cacheDir, ArchiveName)
	err = fetch.Download(ctx, url, archive, fetch.Options{
		Checksum: fetch.MD5(sum),
		Progress: opts.Progress,
		Client:   opts.Client,
		Logger:   log,
		Retries:  opts.Retries,
		Hint: fmt.Sprintf("(or unpack it so that %s holds %s and %s, or pass --data DIR naming a folder with those files)",
			dir, "data_batch_1.bin .. data_batch_5.bin", TestFile),
	})
	if err != nil {
		return "", fmt.Errorf("cifar10: %w", err)
	}
	if err := extract(archive, cacheDir, log); err != nil {
		return "", err
	}
	if !opts.KeepArchive {
		if err := os.Remove(archive); err != nil {
			log.Warn("could not delete the unpacked archive", "path", archive, "err", err)
		}
	}
	return dir, nil
}

func complete(have []string) bool {
	test, train := false, false
	for _, h := range have {
		if h == TestFile {
			test = true
		} else {
			train = true
		}
	}
	return test && train
}

// Limits on the files taken from the archive.
const (
	maxBatchBytes = MaxRecords * RecordBytes
	maxOtherBytes = 1 << 20
)

// archiveMembers are the files extracted from DirName/ in the archive.
func archiveMembers() map[string]bool {
	m := map[string]bool{TestFile: true, "batches.meta.txt": true, "readme.html": true}
	for i := 1; i <= NumTrain; i++ {
		m[TrainFile(i)] = true
	}
	return m
}

func isBatch(name string) bool { return strings.HasSuffix(name, ".bin") }

// extract unpacks the expected files of archive into parent/DirName. It
// writes into a temporary folder in parent and renames it into place only
// when every file has been read, checked and synced.
func extract(archive, parent string, log *slog.Logger) (err error) {
	dir := filepath.Join(parent, DirName)
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("cifar10: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("cifar10: %s is not a gzip file: %w", archive, err)
	}
	tmp, err := os.MkdirTemp(parent, ".cifar-10-unpack-*")
	if err != nil {
		return fmt.Errorf("cifar10: unpacking %s: %w", archive, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()

	want := archiveMembers()
	got := map[string]bool{}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("cifar10: archive %s is corrupt or truncated: %w", archive, err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if !filepath.IsLocal(name) || strings.Contains(hdr.Name, `\`) {
			return fmt.Errorf("cifar10: archive %s: entry %q points outside the folder it unpacks into; refusing to unpack", archive, hdr.Name)
		}
		if name == DirName && hdr.Typeflag == tar.TypeDir {
			continue
		}
		sub, base := path.Split(name)
		if sub != DirName+"/" || !want[base] {
			log.Debug("skipping unexpected archive entry", "archive", archive, "entry", hdr.Name)
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("cifar10: archive %s: entry %q is not a regular file (tar type %q)", archive, hdr.Name, hdr.Typeflag)
		}
		if got[base] {
			return fmt.Errorf("cifar10: archive %s: entry %q appears twice", archive, hdr.Name)
		}
		limit := int64(maxOtherBytes)
		if isBatch(base) {
			limit = maxBatchBytes
			if err := checkSize(archive+": "+hdr.Name, hdr.Size); err != nil {
				return err
			}
		}
		if hdr.Size < 0 || hdr.Size > limit {
			return fmt.Errorf("cifar10: archive %s: entry %q has size %d, more than the %d bytes allowed", archive, hdr.Name, hdr.Size, limit)
		}
		data := make([]byte, hdr.Size)
		if _, err := io.ReadFull(tr, data); err != nil {
			return fmt.Errorf("cifar10: archive %s is truncated inside %q: %w", archive, hdr.Name, err)
		}
		if isBatch(base) {
			if err := checkLabels(archive+": "+hdr.Name, data); err != nil {
				return err
			}
		}
		if err := fetch.WriteFileAtomic(filepath.Join(tmp, base), func(w io.Writer) error {
			_, err := w.Write(data)
			return err
		}); err != nil {
			return fmt.Errorf("cifar10: unpacking %s: %w", archive, err)
		}
		got[base] = true
	}
	// Read the gzip stream to its end so that its CRC and length are checked.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return fmt.Errorf("cifar10: archive %s is corrupt or truncated: %w", archive, err)
	}
	if !complete(namesOf(got)) {
		return fmt.Errorf("cifar10: archive %s lacks the data: want %s/%s and at least one %s/data_batch_N.bin, found %d of the expected files",
			archive, DirName, TestFile, DirName, len(got))
	}
	fetch.SyncDir(tmp)
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cifar10: cannot replace %s: %w", dir, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("cifar10: unpacking %s: %w", archive, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("cifar10: unpacking %s: %w", archive, err)
	}
	fetch.SyncDir(parent)
	log.Info("unpacked CIFAR-10", "archive", archive, "dir", dir)
	return nil
}

// namesOf returns the batch file names among got.
func namesOf(got map[string]bool) []string {
	var out []string
	for name := range got {
		if isBatch(name) && got[name] {
			out = append(out, name)
		}
	}
	return out
}

// checkLabels reports the first record of a batch whose label is not 0..9.
func checkLabels(name string, data []byte) error {
	for r := 0; r*RecordBytes < len(data); r++ {
		if l := data[r*RecordBytes]; l >= NumClasses {
			return fmt.Errorf("cifar10: %s: record %d has label %d, want 0..%d", name, r, l, NumClasses-1)
		}
	}
	return nil
}
