package weights

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// pickleSource is a stream of bytes whose remaining length is known, so that no
// length field in a pickle can make a reader allocate more than the file holds.
type pickleSource struct {
	r         *bufio.Reader
	remaining int64
}

func newPickleSource(r io.Reader, size int64) *pickleSource {
	return &pickleSource{r: bufio.NewReader(r), remaining: size}
}

// errTruncated reports that the file ends before the data it describes.
var errTruncated = errors.New("file is truncated")

// Read implements io.Reader, never reading past the known end.
func (s *pickleSource) Read(p []byte) (int, error) {
	if s.remaining <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.remaining {
		p = p[:s.remaining]
	}
	n, err := s.r.Read(p)
	s.remaining -= int64(n)
	return n, err
}

// take reads exactly n bytes, failing with errTruncated if fewer remain.
func (s *pickleSource) take(n int64) ([]byte, error) {
	if n < 0 || n > s.remaining {
		return nil, errTruncated
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(s, buf); err != nil {
		return nil, fmt.Errorf("%w: %w", errTruncated, err)
	}
	return buf, nil
}

// Pickle opcodes grouped by the shape of their argument (see Python's pickletools).
const (
	argNone    = iota
	argFixed1  // 1 byte
	argFixed2  // 2 bytes
	argFixed4  // 4 bytes
	argFixed8  // 8 bytes
	argLen1    // 1-byte length, then that many bytes
	argLen4    // 4-byte little-endian length, then that many bytes
	argLen8    // 8-byte little-endian length, then that many bytes
	argLine    // text up to a newline
	argTwoLine // two newline-terminated lines
)

// opArg returns the argument shape of a pickle opcode, and false for unknown opcodes.
func opArg(op byte) (int, bool) {
	switch op {
	case '(', '.', '0', '1', '2', 'N', 0x88, 0x89, 'R', 'b', 'a', 'e', 'd', '}', 's', 'u',
		'l', ']', 't', ')', 0x85, 0x86, 0x87, 'o', 'Q', 0x81, 0x92, 0x93, 0x94, 0x8f, 0x90,
		0x91, 0x97, 0x98:
		return argNone, true
	case 0x80, 'K', 'h', 'q', 0x82:
		return argFixed1, true
	case 'M', 0x83:
		return argFixed2, true
	case 'J', 'j', 'r', 0x84:
		return argFixed4, true
	case 'G', 0x95:
		return argFixed8, true
	case 'U', 'C', 0x8c, 0x8a:
		return argLen1, true
	case 'T', 'B', 'X', 0x8b:
		return argLen4, true
	case 0x8d, 0x8e, 0x96:
		return argLen8, true
	case 'I', 'L', 'F', 'S', 'V', 'P', 'g', 'p':
		return argLine, true
	case 'c', 'i':
		return argTwoLine, true
	}
	return 0, false
}

// maxLine bounds the text arguments of protocol-0 opcodes.
const maxLine = 1 << 16

// nextPickle reads one pickle, up to and including its STOP opcode, and returns its
// bytes. It walks the opcode stream and checks that every length field fits in what
// remains of the source, so the unpickler never sees a length it cannot satisfy.
func nextPickle(s *pickleSource) ([]byte, error) {
	var out []byte
	take := func(n int64) ([]byte, error) {
		b, err := s.take(n)
		out = append(out, b...)
		return b, err
	}
	for {
		b, err := take(1)
		if err != nil {
			return nil, fmt.Errorf("pickle: %w", err)
		}
		op := b[0]
		kind, ok := opArg(op)
		if !ok {
			return nil, fmt.Errorf("pickle: unknown opcode 0x%02x at byte %d", op, len(out)-1)
		}
		switch kind {
		case argFixed1:
			_, err = take(1)
		case argFixed2:
			_, err = take(2)
		case argFixed4:
			_, err = take(4)
		case argFixed8:
			var arg []byte
			if arg, err = take(8); err == nil && op == 0x95 && binary.LittleEndian.Uint64(arg) > uint64(s.remaining) {
				err = errTruncated // a FRAME longer than the file
			}
		case argLen1, argLen4, argLen8:
			err = takeCounted(kind, take)
		case argLine:
			err = takeLine(s, &out)
		case argTwoLine:
			if err = takeLine(s, &out); err == nil {
				err = takeLine(s, &out)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("pickle: opcode 0x%02x: %w", op, err)
		}
		if op == '.' {
			return out, nil
		}
	}
}

// takeCounted reads a length prefix of the size kind names and then that many bytes.
func takeCounted(kind int, take func(int64) ([]byte, error)) error {
	width := int64(1)
	switch kind {
	case argLen4:
		width = 4
	case argLen8:
		width = 8
	}
	prefix, err := take(width)
	if err != nil {
		return err
	}
	var n uint64
	switch width {
	case 1:
		n = uint64(prefix[0])
	case 4:
		n = uint64(binary.LittleEndian.Uint32(prefix))
		if n >= 1<<31 { // BINSTRING and LONG4 lengths are signed
			return fmt.Errorf("length %d out of range", n)
		}
	case 8:
		n = binary.LittleEndian.Uint64(prefix)
	}
	if n > 1<<62 {
		return errTruncated
	}
	_, err = take(int64(n))
	return err
}

// takeLine reads a newline-terminated line of at most maxLine bytes into out.
func takeLine(s *pickleSource, out *[]byte) error {
	for i := 0; i < maxLine; i++ {
		b, err := s.take(1)
		if err != nil {
			return err
		}
		*out = append(*out, b[0])
		if b[0] == '\n' {
			return nil
		}
	}
	return fmt.Errorf("line longer than %d bytes", maxLine)
}
