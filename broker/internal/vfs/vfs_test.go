package vfs_test

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sluicehq/sluice/broker/internal/vfs"
)

func TestFaultFS(t *testing.T) {
	ffs := vfs.NewFaultFS(vfs.Default)
	name := filepath.Join(t.TempDir(), "f")
	f, err := ffs.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ffs.FailWritesAfter(5, syscall.ENOSPC)
	if n, err := f.WriteAt([]byte("abc"), 0); n != 3 || err != nil {
		t.Fatalf("first write: %d %v", n, err)
	}
	if n, err := f.WriteAt([]byte("defg"), 3); n != 2 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("short write: %d %v", n, err)
	}
	if n, err := f.Write([]byte("x")); n != 0 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write at budget 0: %d %v", n, err)
	}
	ffs.FailSync(syscall.EIO)
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("sync: %v", err)
	}
	ffs.FailCreate(syscall.EROFS)
	if _, err := ffs.Create(name + "2"); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("create: %v", err)
	}
	ffs.Reset()
	if _, err := f.WriteAt([]byte("hij"), 5); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, _ := f.ReadAt(buf, 0); string(buf[:n]) != "abcdehij" {
		t.Fatalf("content %q", buf[:n])
	}
	if err := ffs.SyncDir(filepath.Dir(name)); err != nil {
		t.Fatal(err)
	}
}
