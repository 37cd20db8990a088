package table

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
)

// Checkpoint file format (all integers big-endian), 20 bytes:
//
//	+--------+---------+----------+--------------------+--------------+
//	| "SLCP" | version | reserved | offset (int64)     | crc32c       |
//	| 4 B    | 1 B (1) | 3 B (0)  | 8 B                | 4 B          |
//	+--------+---------+----------+--------------------+--------------+
//
// offset is the changelog offset from which restoration must resume: every
// changelog record below it is in the store's flushed state. The CRC-32C
// (Castagnoli) covers the first 16 bytes. Anything else (wrong size, magic,
// version or checksum) is corruption, and the store is restored from
// scratch.
const (
	checkpointMagic   = "SLCP"
	checkpointVersion = 1
	checkpointSize    = 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendCheckpoint appends the encoding of a checkpoint at offset to dst.
func AppendCheckpoint(dst []byte, offset int64) []byte {
	start := len(dst)
	dst = append(dst, checkpointMagic...)
	dst = append(dst, checkpointVersion, 0, 0, 0)
	dst = binary.BigEndian.AppendUint64(dst, uint64(offset))
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// ParseCheckpoint decodes a checkpoint file's contents. It returns an error
// wrapping ErrCorruption if b is not exactly one valid checkpoint.
func ParseCheckpoint(b []byte) (int64, error) {
	if len(b) != checkpointSize {
		return 0, fmt.Errorf("%w: checkpoint is %d bytes, want %d", ErrCorruption, len(b), checkpointSize)
	}
	if string(b[:4]) != checkpointMagic || b[4] != checkpointVersion {
		return 0, fmt.Errorf("%w: checkpoint has bad magic or version", ErrCorruption)
	}
	if got, want := crc32.Checksum(b[:16], castagnoli), binary.BigEndian.Uint32(b[16:]); got != want {
		return 0, fmt.Errorf("%w: checkpoint crc %08x, want %08x", ErrCorruption, got, want)
	}
	off := int64(binary.BigEndian.Uint64(b[8:16]))
	if off < 0 {
		return 0, fmt.Errorf("%w: negative checkpoint offset %d", ErrCorruption, off)
	}
	return off, nil
}

// ReadCheckpoint reads the checkpoint file at path. ok is false when there
// is no file; err wraps ErrCorruption when the file is not a valid
// checkpoint (treat both as "restore everything").
func ReadCheckpoint(path string) (offset int64, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("table: read checkpoint: %w", err)
	}
	off, err := ParseCheckpoint(b)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", path, err)
	}
	return off, true, nil
}

// WriteCheckpoint atomically replaces the checkpoint file at path with one
// at offset: it writes a temporary file in the same directory, syncs it,
// renames it over path and syncs the directory. A crash leaves either the
// old checkpoint or the new one, never a torn file.
func WriteCheckpoint(path string, offset int64) error {
	if offset < 0 {
		return fmt.Errorf("table: negative checkpoint offset %d", offset)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("table: write checkpoint: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(AppendCheckpoint(make([]byte, 0, checkpointSize), offset))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("table: write checkpoint: %w", err)
	}
	return syncDir(dir)
}

// RemoveCheckpoint deletes the checkpoint file at path, durably; a missing
// file is not an error.
func RemoveCheckpoint(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("table: remove checkpoint: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("table: sync dir: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("table: sync dir: %w", err)
	}
	return nil
}
