// Package vfs is the small filesystem seam the broker's storage goes
// through: the operating system in production (Default), and wrappers that
// inject faults in tests (NewFaultFS).
//
// Implementations are safe for concurrent use. A File is safe for
// concurrent ReadAt calls alongside one writer, like *os.File.
package vfs

import (
	"io"
	"io/fs"
	"os"
)

// File is an open file. ReadAt and WriteAt follow io.ReaderAt and
// io.WriterAt: a short write always comes with an error.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Writer
	io.Closer
	// Truncate changes the size of the file.
	Truncate(size int64) error
	// Sync commits the file's contents to stable storage (fsync).
	Sync() error
	// Stat returns the file's metadata.
	Stat() (fs.FileInfo, error)
}

// FS is the set of filesystem operations the log needs. Paths are OS
// paths. Errors are those of package os (match them with errors.Is against
// fs.ErrNotExist and the like).
type FS interface {
	// OpenFile opens name with os.OpenFile flags and permissions.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Create creates or truncates name for reading and writing.
	Create(name string) (File, error)
	// Open opens name read-only.
	Open(name string) (File, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// RemoveAll removes path and everything below it.
	RemoveAll(path string) error
	// Rename atomically renames oldpath to newpath, replacing it.
	Rename(oldpath, newpath string) error
	// MkdirAll creates a directory and its parents.
	MkdirAll(path string, perm fs.FileMode) error
	// ReadDir lists a directory sorted by name.
	ReadDir(name string) ([]fs.DirEntry, error)
	// Stat returns a file's metadata.
	Stat(name string) (fs.FileInfo, error)
	// SyncDir fsyncs a directory so that creations, renames and removals
	// in it are durable.
	SyncDir(name string) error
}

// Default is the operating system's filesystem.
var Default FS = osFS{}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (o osFS) Create(name string) (File, error) {
	return o.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}

func (o osFS) Open(name string) (File, error)             { return o.OpenFile(name, os.O_RDONLY, 0) }
func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) RemoveAll(path string) error                  { return os.RemoveAll(path) }
func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) Stat(name string) (fs.FileInfo, error)        { return os.Stat(name) }

func (osFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
