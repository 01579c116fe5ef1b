package fetch

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
)

// Checksum names the digest a downloaded file must have.
//
// Algorithm is "md5" or "sha256". Hex is the digest in hexadecimal (case
// does not matter). For sha256, Hex may also be a prefix of the digest of at
// least 8 hex digits, as torchvision puts in its file names
// ("alexnet-owt-7be5be79.pth" -> SHA256("7be5be79")). The zero Checksum means
// "do not verify".
type Checksum struct {
	Algorithm string
	Hex       string
}

// MD5 returns a Checksum that expects the full md5 digest hexDigest.
func MD5(hexDigest string) Checksum { return Checksum{Algorithm: "md5", Hex: hexDigest} }

// SHA256 returns a Checksum that expects a full sha256 digest, or a prefix of
// at least 8 hex digits of one.
func SHA256(hexDigest string) Checksum { return Checksum{Algorithm: "sha256", Hex: hexDigest} }

// ParseChecksum parses "md5:HEX" or "sha256:HEX" (a sha256 prefix allowed).
// The empty string gives the zero Checksum.
func ParseChecksum(s string) (Checksum, error) {
	if s == "" {
		return Checksum{}, nil
	}
	algo, digest, ok := strings.Cut(s, ":")
	if !ok {
		return Checksum{}, fmt.Errorf("fetch: checksum %q: want ALGORITHM:HEX (md5 or sha256)", s)
	}
	c := Checksum{Algorithm: strings.ToLower(algo), Hex: digest}
	if err := c.Validate(); err != nil {
		return Checksum{}, err
	}
	return c, nil
}

// IsZero reports whether c is the zero Checksum (no verification).
func (c Checksum) IsZero() bool { return c.Algorithm == "" && c.Hex == "" }

// String returns "algorithm:hex", or "none" for the zero Checksum.
func (c Checksum) String() string {
	if c.IsZero() {
		return "none"
	}
	return c.Algorithm + ":" + strings.ToLower(c.Hex)
}

// Validate reports whether c is usable: a known algorithm and a well-formed
// digest of the right length (or a sha256 prefix of 8 to 64 hex digits).
func (c Checksum) Validate() error {
	if c.IsZero() {
		return nil
	}
	if _, err := hex.DecodeString(padEven(c.Hex)); err != nil || c.Hex == "" {
		return fmt.Errorf("fetch: checksum %q: digest is not hexadecimal", c.String())
	}
	switch c.Algorithm {
	case "md5":
		if len(c.Hex) != 2*md5.Size {
			return fmt.Errorf("fetch: checksum %q: md5 digest must have %d hex digits, has %d", c.String(), 2*md5.Size, len(c.Hex))
		}
	case "sha256":
		if len(c.Hex) < 8 || len(c.Hex) > 2*sha256.Size {
			return fmt.Errorf("fetch: checksum %q: sha256 digest or prefix must have 8 to %d hex digits, has %d", c.String(), 2*sha256.Size, len(c.Hex))
		}
	default:
		return fmt.Errorf("fetch: checksum %q: unknown algorithm %q (want md5 or sha256)", c.String(), c.Algorithm)
	}
	return nil
}

func padEven(s string) string {
	if len(s)%2 == 1 {
		return s + "0"
	}
	return s
}

func (c Checksum) newHash() hash.Hash {
	if c.Algorithm == "md5" {
		return md5.New()
	}
	return sha256.New()
}

// matches reports whether the full hex digest got satisfies c.
func (c Checksum) matches(got string) bool {
	want := strings.ToLower(c.Hex)
	if c.Algorithm == "sha256" {
		return strings.HasPrefix(got, want)
	}
	return got == want
}

// FileDigest returns the hex digest of the file at path under algorithm
// ("md5" or "sha256").
func FileDigest(path, algorithm string) (string, error) {
	c := Checksum{Algorithm: algorithm}
	if algorithm != "md5" && algorithm != "sha256" {
		return "", fmt.Errorf("fetch: digest of %s: unknown algorithm %q (want md5 or sha256)", path, algorithm)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("fetch: digest: %w", err)
	}
	defer f.Close()
	h := c.newHash()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("fetch: digest of %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// VerifyFile checks the file at path against c. It returns the file's full
// hex digest, whether it matches, and an error only when the file cannot be
// read or c is malformed. The zero Checksum matches any readable file.
func VerifyFile(path string, c Checksum) (got string, ok bool, err error) {
	if err := c.Validate(); err != nil {
		return "", false, err
	}
	if c.IsZero() {
		f, err := os.Open(path)
		if err != nil {
			return "", false, fmt.Errorf("fetch: verify: %w", err)
		}
		f.Close()
		return "", true, nil
	}
	got, err = FileDigest(path, c.Algorithm)
	if err != nil {
		return "", false, err
	}
	return got, c.matches(got), nil
}
