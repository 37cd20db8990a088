package vfs

import (
	"io/fs"
	"os"
	"sync"
)

// FaultFS wraps an FS and injects errors that tests switch on and off at
// run time: a write budget after which writes fail (ENOSPC-like, with the
// write that crosses it left short), failing Syncs (EIO-like), and failing
// file creation. Everything else passes through. The zero configuration
// injects nothing.
type FaultFS struct {
	inner FS

	mu struct {
		sync.Mutex
		writeBudget int64 // bytes that may still be written; < 0 = unlimited
		writeErr    error
		syncErr     error
		createErr   error
	}
}

// NewFaultFS returns a FaultFS over inner that injects nothing yet.
func NewFaultFS(inner FS) *FaultFS {
	f := &FaultFS{inner: inner}
	f.mu.writeBudget = -1
	return f
}

// FailWritesAfter makes writes fail with err once n more bytes have been
// written through any file of f. The write that crosses the budget writes
// the bytes that fit, then fails (a short write). n < 0 or a nil err
// removes the fault.
func (f *FaultFS) FailWritesAfter(n int64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n < 0 || err == nil {
		f.mu.writeBudget, f.mu.writeErr = -1, nil
		return
	}
	f.mu.writeBudget, f.mu.writeErr = n, err
}

// FailSync makes every File.Sync and SyncDir fail with err; nil removes
// the fault.
func (f *FaultFS) FailSync(err error) {
	f.mu.Lock()
	f.mu.syncErr = err
	f.mu.Unlock()
}

// FailCreate makes Create and OpenFile with os.O_CREATE fail with err; nil
// removes the fault.
func (f *FaultFS) FailCreate(err error) {
	f.mu.Lock()
	f.mu.createErr = err
	f.mu.Unlock()
}

// Reset removes every fault.
func (f *FaultFS) Reset() {
	f.FailWritesAfter(-1, nil)
	f.FailSync(nil)
	f.FailCreate(nil)
}

// allow returns how many of n bytes may be written and the error to return
// after writing them.
func (f *FaultFS) allow(n int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.writeBudget < 0 {
		return n, nil
	}
	if int64(n) <= f.mu.writeBudget {
		f.mu.writeBudget -= int64(n)
		return n, nil
	}
	ok := int(f.mu.writeBudget)
	f.mu.writeBudget = 0
	return ok, f.mu.writeErr
}

func (f *FaultFS) syncErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.syncErr
}

func (f *FaultFS) wrap(file File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

// OpenFile implements FS.
func (f *FaultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	if flag&os.O_CREATE != 0 {
		f.mu.Lock()
		err := f.mu.createErr
		f.mu.Unlock()
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
	}
	return f.wrap(f.inner.OpenFile(name, flag, perm))
}

// Create implements FS.
func (f *FaultFS) Create(name string) (File, error) {
	f.mu.Lock()
	err := f.mu.createErr
	f.mu.Unlock()
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return f.wrap(f.inner.Create(name))
}

// Open implements FS.
func (f *FaultFS) Open(name string) (File, error) { return f.wrap(f.inner.Open(name)) }

// Remove implements FS.
func (f *FaultFS) Remove(name string) error { return f.inner.Remove(name) }

// RemoveAll implements FS.
func (f *FaultFS) RemoveAll(path string) error { return f.inner.RemoveAll(path) }

// Rename implements FS.
func (f *FaultFS) Rename(oldpath, newpath string) error { return f.inner.Rename(oldpath, newpath) }

// MkdirAll implements FS.
func (f *FaultFS) MkdirAll(path string, perm fs.FileMode) error { return f.inner.MkdirAll(path, perm) }

// ReadDir implements FS.
func (f *FaultFS) ReadDir(name string) ([]fs.DirEntry, error) { return f.inner.ReadDir(name) }

// Stat implements FS.
func (f *FaultFS) Stat(name string) (fs.FileInfo, error) { return f.inner.Stat(name) }

// SyncDir implements FS.
func (f *FaultFS) SyncDir(name string) error {
	if err := f.syncErr(); err != nil {
		return &fs.PathError{Op: "sync", Path: name, Err: err}
	}
	return f.inner.SyncDir(name)
}

type faultFile struct {
	File
	fs *FaultFS
}

func (f *faultFile) Write(p []byte) (int, error) {
	n, ferr := f.fs.allow(len(p))
	w, err := f.File.Write(p[:n])
	if err != nil {
		return w, err
	}
	return w, ferr
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	n, ferr := f.fs.allow(len(p))
	w, err := f.File.WriteAt(p[:n], off)
	if err != nil {
		return w, err
	}
	return w, ferr
}

func (f *faultFile) Sync() error {
	if err := f.fs.syncErr(); err != nil {
		return err
	}
	return f.File.Sync()
}
